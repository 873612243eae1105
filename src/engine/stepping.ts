/**
 * Source-line stepping (next, step in, step out) built from single steps inside the current
 * line's address range and temporary breakpoints to run over calls and out of frames. Every
 * temporary stop is checked against the frame it was meant for (its stack pointer), so a
 * recursive call or another task running the same code doesn't end the step early.
 * Single steps keep interrupts and timers masked (QEMU's default sstep flags).
 */
import type { ArchInfo } from '../arch';
import * as P from '../rsp/packets';
import type { StopReply } from '../rsp/stop';
import { rangesContain } from '../symbols/dwarf/cu';
import type { Range } from '../symbols/dwarf/ranges';
import { stepPast, type BreakpointTable } from './breakpoints';
import { Disassembler } from './disasm';
import { cheaperToSingleStep, rangeExits } from './rangestep';
import type { FlowStep } from './disasm';
import type { SourceInfo, StepLine } from './sourceinfo';
import { leToBigInt, type KernelTarget } from './target';
import type { Unwinder } from './unwind';

export type StepKind = 'over' | 'into' | 'out';

export interface StepOutcome {
  stop: StopReply;
  reason: 'step' | 'breakpoint' | 'pause';
  /** The stop's PC when the step knows it without reading registers (after NOPs). */
  pc?: bigint;
}

/** A run over the rest of a line: temporary breakpoints on its exits, accepted in this frame (CFA). */
interface RangePlan {
  exits: bigint[];
  frame: bigint;
}

/** Where a source step starts (see Stepper.lineStart). */
interface LineStart {
  tid: number;
  pc: bigint;
  line: StepLine;
  fn: readonly Range[];
  /** Inline depth at pc. */
  depth: number;
  sp: bigint;
  /** The step range around pc and its instructions, when they could be read. */
  first?: { span: [bigint, bigint]; insns: FlowStep[] };
  /** How to run the rest of the line at once, when that beats single steps. */
  plan?: RangePlan;
}

export interface StepContext {
  target: KernelTarget;
  arch: ArchInfo;
  bps: BreakpointTable;
  source: SourceInfo;
  unwinder: Unwinder;
  /** True once the user asked to pause; the step ends at the next stop. */
  pauseRequested(): boolean;
  dwarfRegisters(tid: number): Promise<Map<number, bigint>>;
}

const SIGINT = 2;
const SIGTRAP = 5;
/** Stop-reply keys of a watchpoint hit. */
const WATCH_KEYS = ['watch', 'rwatch', 'awatch'];
const TEMP_ID = -1;
/** A runaway step (a loop with no line change) ends here rather than spin forever. */
const MAX_STEPS = 20000;
/** Patchable-entry NOPs before a function's DWARF start: arm64 has 2, riscv up to 8 halfword ones. */
const MAX_ENTRY_PADDING = 16;

export class Stepper {
  /** The current line's instructions, decoded while the user looks at a stop (see prepare). */
  private ready = new Map<string, FlowStep[] | undefined>();
  /** What `ready` was read under: the guest must not have run, nor memory been written, since. */
  private readyAt = { resumes: 0, writes: 0 };
  private resumes = 0;
  /** The stub refused a temporary breakpoint during this step: single-step the rest. */
  private rangeRefused = false;
  /** The next step's start, planned by prepare(). */
  private planned: LineStart | undefined;

  constructor(private readonly ctx: StepContext) {
    ctx.target.rsp.on('resumed', () => this.resumes++);
  }

  /**
   * Plan the next `next` from `tid`'s stop now, while the client shows the stop, so the step
   * itself only sends packets: the line and its range, its decoded instructions, the exits to
   * catch and this frame's CFA, and the lookups of where it can land (see lineStart). It only
   * reads the target.
   */
  async prepare(tid: number): Promise<void> {
    this.rangeRefused = false;
    const at = { resumes: this.resumes, writes: this.t.writes };
    const found = new Map<string, FlowStep[] | undefined>();
    const start = await this.lineStart(tid, found);
    // The first CFA at a new PC looks up and parses its FDE: do that now too.
    if (!start?.plan) await this.cfa(tid);
    this.ready = found;
    this.readyAt = at;
    this.planned = start;
  }

  /** Whether what prepare() read still describes the target: the guest hasn't run, nor memory been written. */
  private get fresh(): boolean {
    return this.readyAt.resumes === this.resumes && this.readyAt.writes === this.t.writes;
  }

  /** What prepare() decoded, if it still describes the target. */
  private prepared(): Map<string, FlowStep[] | undefined> {
    return new Map(this.fresh ? this.ready : undefined);
  }

  /** prepare()'s start of a step from `tid`, once; undefined if stale or for another vCPU. */
  private takePlanned(tid: number): LineStart | undefined {
    const p = this.planned;
    this.planned = undefined;
    return p && p.tid === tid && this.fresh ? p : undefined;
  }

  /** Where a source step from `tid`'s PC starts, with the first run over its line planned when it can be. */
  private async lineStart(tid: number, decoded: Map<string, FlowStep[] | undefined>): Promise<LineStart | undefined> {
    const src = this.ctx.source;
    const pc = await this.t.pc(tid);
    const line = src.lineAt(pc);
    if (!line) return undefined;
    const fn = src.functionRanges(pc);
    const start: LineStart = { tid, pc, line, fn, depth: src.inlineStop(pc).depth, sp: await this.sp(tid) };
    const span = src.stepRange(pc, line.line, line.file);
    const insns = span && (await this.decodeRange(tid, span, decoded));
    if (!span || !insns) return start;
    start.first = { span, insns };
    start.plan = await this.planRange(tid, pc, span, fn, insns);
    // Where the first run can land: look those up now (line tables, inline scopes, CFI rows).
    const straight = insns.find((i) => i.address === pc);
    for (const to of start.plan?.exits ?? (straight ? [pc + BigInt(straight.size)] : [])) {
      src.lineAt(to);
      src.inlineStop(to);
      this.ctx.unwinder.warm(to);
    }
    return start;
  }

  private get t(): KernelTarget {
    return this.ctx.target;
  }

  private async sp(tid: number): Promise<bigint> {
    return this.t.readRegister(tid, this.ctx.arch.spRegister);
  }

  private async singleStep(tid: number): Promise<StopReply> {
    return stepPast(this.t, this.ctx.bps, tid, await this.t.pc(tid));
  }

  /**
   * Run all vCPUs until `tid` reaches `addr` and `accept` agrees it is the right frame.
   * Returns a stop to report instead when a user breakpoint or a pause gets there first.
   */
  private async runTo(tid: number, addr: bigint, accept: () => Promise<boolean>): Promise<{ arrived: boolean; outcome: StepOutcome }> {
    await this.ctx.bps.add(addr, TEMP_ID);
    try {
      for (;;) {
        // Leave the current PC with a single step so a breakpoint there doesn't fire at once.
        const first = await this.singleStep(tid);
        if (first.kind !== 'signal') return { arrived: false, outcome: { stop: first, reason: 'step' } };
        this.t.invalidate();
        let stop: StopReply = first;
        let pc = await this.t.pc(tid);
        if (pc !== addr && !this.ctx.bps.has(pc)) {
          if (this.ctx.pauseRequested()) return { arrived: false, outcome: { stop, reason: 'pause' } };
          stop = await P.continueThreads(this.t.rsp, undefined, this.t.vcont);
          if (stop.kind !== 'signal') return { arrived: false, outcome: { stop, reason: 'step' } };
          this.t.invalidate();
          if (stop.signal === SIGINT) return { arrived: false, outcome: { stop, reason: 'pause' } };
        }
        const thread = stop.thread && stop.thread > 0 ? stop.thread : tid;
        pc = await this.t.pc(thread);
        if (thread === tid && pc === addr && (await accept())) return { arrived: true, outcome: { stop, reason: 'step' } };
        if (this.ctx.bps.idsAt(pc).some((id) => id !== TEMP_ID)) return { arrived: false, outcome: { stop, reason: 'breakpoint' } };
        if (this.ctx.pauseRequested()) return { arrived: false, outcome: { stop, reason: 'pause' } };
      }
    } finally {
      await this.ctx.bps.retire([addr], TEMP_ID);
    }
  }

  /** After a single step from (prevPc, prevSp): the return address if that step was a call. */
  private async calledFrom(tid: number, prevPc: bigint, prevSp: bigint, fn: readonly Range[]): Promise<bigint | undefined> {
    const pc = await this.t.pc(tid);
    if (rangesContain(fn, pc) && !this.ctx.source.isFunctionEntry(pc)) return undefined;
    const arch = this.ctx.arch;
    const ra = arch.returnAddress;
    // The return address follows the call instruction, which is at most this long.
    const follows = (ret: bigint): boolean => ret > prevPc && ret <= prevPc + BigInt(arch.disassembler.maxInstructionBytes);
    if (ra.kind === 'stack') {
      const sp = await this.sp(tid);
      if (sp !== prevSp - BigInt(ra.size)) return undefined;
      const word = await this.t.readMemory(sp, ra.size, tid).catch(() => undefined);
      if (!word || word.length !== ra.size) return undefined;
      const ret = leToBigInt(word);
      return follows(ret) ? ret : undefined;
    }
    // A link register (bl on arm64, jal/jalr ra on riscv): only that one register is needed.
    const lr = await this.t.readRegister(tid, arch.dwarfRegisters[ra.dwarf]).catch(() => undefined);
    return lr !== undefined && follows(lr) ? lr : undefined;
  }

  /** How far a call moves the stack pointer down: the pushed return address, or nothing with a link register. */
  private get callPush(): bigint {
    const ra = this.ctx.arch.returnAddress;
    return ra.kind === 'stack' ? BigInt(ra.size) : 0n;
  }

  /**
   * One instruction: the stop, the new PC, where it was before, and an outcome when the
   * step must end here (the guest is gone, or the user paused).
   */
  private async stepOne(tid: number, pc: bigint): Promise<{ stop: StopReply; pc: bigint; prevPc: bigint; prevSp: bigint; end?: StepOutcome }> {
    const prevSp = await this.sp(tid);
    const stop = await this.singleStep(tid);
    if (stop.kind !== 'signal') return { stop, pc, prevPc: pc, prevSp, end: { stop, reason: 'step' } };
    this.t.invalidate();
    const now = await this.t.pc(tid);
    return { stop, pc: now, prevPc: pc, prevSp, end: this.ctx.pauseRequested() ? { stop, reason: 'pause' } : undefined };
  }

  async run(tid: number, kind: StepKind, inlineDepth = 0): Promise<StepOutcome> {
    if (kind === 'out') return this.stepOut(tid, inlineDepth);
    return this.stepLine(tid, kind);
  }

  /**
   * gdb's nexti on a call: run until this frame reaches the instruction after the call, i.e.
   * the return address with the stack pointer back where it was before the call.
   */
  async stepOverCall(tid: number, returnAddress: bigint): Promise<StepOutcome> {
    const sp = await this.sp(tid);
    return (await this.runTo(tid, returnAddress, async () => (await this.sp(tid)) === sp)).outcome;
  }

  /** The CFA of the innermost frame: what tells this frame from a recursive call or another task's. */
  private async cfa(tid: number): Promise<bigint | undefined> {
    return this.ctx.unwinder.cfa(await this.ctx.dwarfRegisters(tid)).catch(() => undefined);
  }

  /**
   * Whether the rest of the line is best run in one go from pc, and with what: temporary
   * breakpoints on the range's exits (see rangestep.ts) and this frame's CFA to accept a hit
   * by. Undefined when it can't be planned (no code, no CFA, a breakpoint or an exit at pc, a
   * line short enough to single-step): then the caller single-steps.
   */
  private async planRange(tid: number, pc: bigint, range: [bigint, bigint], fn: readonly Range[], insns: readonly FlowStep[]): Promise<RangePlan | undefined> {
    if (this.rangeRefused || this.ctx.bps.has(pc) || pc < range[0] || pc >= range[1] || cheaperToSingleStep(insns, pc)) return undefined;
    const exits = rangeExits(insns, range, fn);
    if (!exits || exits.includes(pc)) return undefined;
    const frame = await this.cfa(tid);
    return frame === undefined ? undefined : { exits, frame };
  }

  /**
   * Run the rest of the line: the exits go in with the continue, in one write, and a hit is
   * accepted only on `tid` in this same frame. Returns where execution left the range, or a
   * stop to report instead. An exit the stub refuses stops the guest at once, and the rest of
   * the line is single-stepped. Nothing is awaited before the continue is sent.
   */
  private async runRange(tid: number, pc: bigint, plan: RangePlan): Promise<{ stop: StopReply; pc: bigint; end?: StepOutcome }> {
    const { exits, frame } = plan;
    const armed = this.ctx.bps.arm(exits, TEMP_ID, () => this.t.rsp.interrupt());
    let prelude = armed.prelude;
    try {
      for (;;) {
        const stop = await P.continueThreads(this.t.rsp, undefined, this.t.vcont, prelude);
        prelude = [];
        this.t.invalidate();
        if (stop.kind !== 'signal') return { stop, pc, end: { stop, reason: 'step' } };
        const thread = stop.thread && stop.thread > 0 ? stop.thread : tid;
        if (armed.refused.length && !this.ctx.pauseRequested()) {
          this.rangeRefused = true;
          return { stop, pc: await this.t.pc(tid) };
        }
        if (stop.signal === SIGINT) return { stop, pc, end: { stop, reason: 'pause' } };
        const at = await this.t.pc(thread);
        if (thread === tid && exits.includes(at) && (await this.cfa(tid)) === frame) return { stop, pc: at };
        const user = this.ctx.bps.idsAt(at).some((id) => id !== TEMP_ID);
        const watch = WATCH_KEYS.some((k) => stop.pairs.has(k));
        if (user || watch) return { stop, pc: at, end: { stop, reason: 'breakpoint' } };
        if (this.ctx.pauseRequested()) return { stop, pc: at, end: { stop, reason: 'pause' } };
        // Another vCPU or frame (recursion, another task) ran into an exit: step it past and go on.
        const off = await this.singleStep(thread);
        if (off.kind !== 'signal') return { stop: off, pc, end: { stop: off, reason: 'step' } };
        this.t.invalidate();
      }
    } finally {
      await this.ctx.bps.retire(armed.addresses, TEMP_ID);
    }
  }

  /** The instructions of a step range, read live and decoded once per step command. */
  private async decodeRange(tid: number, range: [bigint, bigint], cache: Map<string, FlowStep[] | undefined>): Promise<FlowStep[] | undefined> {
    const key = `${range[0]}-${range[1]}`;
    if (cache.has(key)) return cache.get(key);
    const dis = await Disassembler.create(this.ctx.arch.disassembler, 'intel').catch(() => undefined);
    const insns = await dis?.flows((a, n) => this.t.readMemoryPartial(a, n, tid), range[0], range[1]).catch(() => undefined);
    cache.set(key, insns);
    return insns;
  }

  /**
   * One instruction that only falls through: its next PC is known, so nothing is read back.
   * A fault inside it would send the vCPU to the exception handler instead; the PC is read
   * when the step leaves the line's range, and the step goes on from wherever it really is.
   */
  private stepStraight(tid: number, pc: bigint): Promise<StopReply> {
    return stepPast(this.t, this.ctx.bps, tid, pc);
  }

  private async stepLine(tid: number, kind: 'over' | 'into'): Promise<StepOutcome> {
    this.rangeRefused = false;
    const src = this.ctx.source;
    const decoded = this.prepared();
    // A planned start lets the first packets go out before anything is awaited.
    const start = this.takePlanned(tid) ?? (await this.lineStart(tid, decoded));
    if (!start) return { stop: await this.singleStep(tid), reason: 'step' };
    let pc = start.pc;
    let line: StepLine | undefined = start.line;
    let curLine = line.line;
    let curFile = line.file;
    let range: [bigint, bigint] = [line.start, line.end];
    let fn = start.fn;
    const startFn = fn;
    const startDepth = start.depth;
    const startSp = start.sp;
    let first = start.first;
    let last: StopReply | undefined;
    // The stack pointer while only NOPs have run since it was read: a step over a line of NOPs
    // (the ftrace call site a function breakpoint stops on) then needs no register read.
    let knownSp: bigint | undefined = startSp;
    for (let n = 0; n < MAX_STEPS; n++) {
      let span: [bigint, bigint] | undefined;
      let insns: FlowStep[] | undefined;
      let plan: RangePlan | undefined;
      if (first) {
        ({ span, insns } = first);
        plan = kind === 'over' && !this.ctx.bps.has(pc) ? start.plan : undefined;
        first = undefined;
      } else {
        span = src.stepRange(pc, curLine, curFile);
        insns = span && (await this.decodeRange(tid, span, decoded));
        // Over a line with calls or loops, one continue to its exits (see rangestep.ts).
        plan = kind === 'over' && span && insns ? await this.planRange(tid, pc, span, fn, insns) : undefined;
      }
      const fast = plan ? await this.runRange(tid, pc, plan) : undefined;
      if (fast?.end) return fast.end;
      const straight = !fast ? insns?.find((i) => i.address === pc) : undefined;
      let one: Awaited<ReturnType<Stepper['stepOne']>> | undefined;
      if (fast) {
        knownSp = undefined;
        last = fast.stop;
        pc = fast.pc;
      } else if (straight && straight.flow === 'next' && !straight.repeats) {
        const next = pc + BigInt(straight.size);
        if (straight.nop && this.t.skipNop(tid, pc, next)) {
          // The vCPU didn't run: the stop to report is the one it is still in, now at `next`.
          last = { kind: 'signal', signal: SIGTRAP, thread: tid, pairs: new Map() };
        } else {
          last = await this.stepStraight(tid, pc);
          if (last.kind !== 'signal' || last.signal !== SIGTRAP || this.ctx.pauseRequested() || WATCH_KEYS.some((k) => last?.kind === 'signal' && last.pairs.has(k))) {
            this.t.invalidate();
            return { stop: last, reason: last.kind === 'signal' && this.ctx.pauseRequested() ? 'pause' : 'step' };
          }
        }
        pc = next;
        if (!straight.nop) knownSp = undefined;
        if (span && pc >= span[0] && pc < span[1]) continue;
        if (knownSp === undefined) pc = await this.t.pc(tid);
      } else {
        knownSp = undefined;
        one = await this.stepOne(tid, pc);
        if (one.end) return one.end;
        last = one.stop;
        pc = one.pc;
      }
      if ((pc >= range[0] && pc < range[1]) || (span && pc >= span[0] && pc < span[1])) continue;
      const ret = one && (await this.calledFrom(tid, one.prevPc, one.prevSp, fn));
      if (ret !== undefined) {
        if (kind === 'into' && src.hasLineInfo(pc)) return this.enterFunction(tid, pc, last);
        const entrySp = await this.sp(tid);
        const r = await this.runTo(tid, ret, async () => (await this.sp(tid)) === entrySp + this.callPush);
        if (!r.arrived) return r.outcome;
        last = r.outcome.stop;
        pc = ret;
        if (pc >= range[0] && pc < range[1]) continue;
      }
      if (this.ctx.bps.idsAt(pc).length) return { stop: last, reason: 'breakpoint' };
      line = src.lineAt(pc);
      if (!line) {
        // Code without line info: a step into it from a source line ends here (gdb would
        // step back out; the kernel's callers of such code are assembly stubs).
        return { stop: last, reason: 'step' };
      }
      const sp = knownSp ?? (await this.sp(tid));
      const returned = sp > startSp;
      const newLine = line.line !== curLine || line.file !== curFile;
      // Like gdb: entering an inlined call from another line stops at its entry (shown at the
      // call site); a next over it runs through its body, deeper than where the step began.
      const here = src.inlineStop(pc);
      const sameFn = !returned && rangesContain(startFn, pc);
      if (sameFn && here.entry && here.depth === startDepth && (here.entry.line !== curLine || here.entry.file !== curFile)) return { stop: last, reason: 'step' };
      const deeper = kind === 'over' && sameFn && here.depth > startDepth;
      if (pc === line.start && line.isStmt && newLine && !deeper) return { stop: last, reason: 'step', pc };
      if (returned) {
        // Back in the caller, mid-line: like gdb, finish that line and stop at the next one.
        fn = src.functionRanges(pc);
        curLine = line.line;
        curFile = line.file;
      } else if (line.isStmt && !rangesContain(fn, pc)) {
        fn = src.functionRanges(pc);
      }
      range = [line.start, line.end];
    }
    return { stop: last ?? (await this.t.haltReason()), reason: 'step' };
  }

  /**
   * Stepped into a call at `pc`: stop where gdb does, at the function's start as DWARF gives
   * it. That is pc itself, except past the NOPs arm64 kernels put before DW_AT_low_pc for
   * ftrace, which the ELF symbol covers and no DWARF function does (a few instructions).
   */
  private async enterFunction(tid: number, pc: bigint, stop: StopReply): Promise<StepOutcome> {
    let last = stop;
    for (let n = 0; n < MAX_ENTRY_PADDING && !this.ctx.source.inDwarfFunction(pc); n++) {
      if (this.ctx.bps.idsAt(pc).length) return { stop: last, reason: 'breakpoint' };
      const one = await this.stepOne(tid, pc);
      if (one.end) return one.end;
      last = one.stop;
      pc = one.pc;
    }
    return { stop: last, reason: 'step' };
  }

  private async stepOut(tid: number, inlineDepth: number): Promise<StepOutcome> {
    let pc = await this.t.pc(tid);
    const inlined = this.ctx.source.inlinedRanges(pc, inlineDepth);
    if (inlined) {
      // Leaving an inlined call means running until the PC leaves its ranges, over calls.
      let last: StopReply | undefined;
      const fn = this.ctx.source.functionRanges(pc);
      for (let n = 0; n < MAX_STEPS; n++) {
        const one = await this.stepOne(tid, pc);
        if (one.end) return one.end;
        last = one.stop;
        pc = one.pc;
        const ret = await this.calledFrom(tid, one.prevPc, one.prevSp, fn);
        if (ret !== undefined) {
          const entrySp = await this.sp(tid);
          // Back in this frame: the call's push undone (x86), or the same sp (a link register).
          const r = await this.runTo(tid, ret, async () => (await this.sp(tid)) >= entrySp + this.callPush);
          if (!r.arrived) return r.outcome;
          last = r.outcome.stop;
          pc = ret;
        }
        if (!rangesContain(inlined, pc)) return { stop: last, reason: 'step' };
      }
      return { stop: last ?? (await this.t.haltReason()), reason: 'step' };
    }
    const regs = await this.ctx.dwarfRegisters(tid);
    const frames = await this.ctx.unwinder.unwind(regs, 2);
    const caller = frames[1];
    const cfa = frames[0]?.cfa;
    if (!caller || cfa === undefined) throw new Error('Cannot step out: the caller of this frame is unknown (no call-frame information and no frame pointer here).');
    const r = await this.runTo(tid, caller.pc, async () => (await this.sp(tid)) === cfa);
    return r.outcome;
  }
}
