/**
 * Run control and breakpoints over a KernelTarget. Emits 'stopped' (StopEvent), 'running',
 * and 'exited'. QEMU's stub reports no swbreak/hwbreak, so a breakpoint is told from a step
 * or a pause by comparing the stop PC with the inserted addresses.
 */
import { EventEmitter } from 'node:events';
import * as P from '../rsp/packets';
import { StopReply } from '../rsp/stop';
import { SymbolTable } from '../symbols/symtab';
import { errors } from '../util/errors';
import { BreakpointTable, stepPast } from './breakpoints';
import { BreakpointBehaviour, decide, expressionHost, type BreakpointOptions } from './bpconditions';
import { Inspector } from './inspect';
import { WatchTable, type WatchRequest, type WatchResult } from './watchpoints';
import type { CodeLocation, SourceInfo, SourceLocation } from './sourceinfo';
import { Stepper, type StepKind } from './stepping';
import { KernelTarget } from './target';
import { Unwinder, type UnwoundFrame } from './unwind';
import { describeReason, isBreakpointReason, type StopEvent, type StopReason } from './stopreason';
import { InstructionBreakpoints, type InstructionBreakpointRequest } from './instbreakpoints';
import { callReturnAddress } from './disasm';
import { readAhead } from './readahead';

export type { StopEvent, StopReason } from './stopreason';

export interface FunctionBreakpointRequest extends BreakpointOptions {
  name: string;
}

export interface BreakpointResult {
  id: number;
  verified: boolean;
  address?: bigint;
  message?: string;
  /** Where the breakpoint really is, when a source location is known. */
  location?: SourceLocation;
}

export interface SourceBreakpointRequest extends BreakpointOptions {
  line: number;
}

type RunKind = 'continue' | 'step';

/** QEMU reports an interrupt (0x03 or a VM pause) as SIGINT and breakpoints/steps as SIGTRAP. */
const SIGINT = 2;
/** How long a step runs before the client is told the guest is running. */
const STEP_ANNOUNCE_MS = 100;

export class Debugger extends EventEmitter {
  private state: 'stopped' | 'running' | 'exited' = 'stopped';
  private thread = 1;
  private nextId = 1;
  private readonly bps: BreakpointTable;
  private functionBps = new Map<string, { id: number; addresses: bigint[]; result: BreakpointResult }>();
  /** Source breakpoints per client path, keyed by requested line. */
  private sourceBps = new Map<string, Map<number, { id: number; addresses: bigint[]; result: BreakpointResult }>>();
  /** Conditions, hit counts and log messages by breakpoint id (plain breakpoints have none). */
  private behaviours = new Map<number, BreakpointBehaviour>();
  private readonly watches: WatchTable;
  private readonly instructionBps: InstructionBreakpoints;
  private inspectorInstance: Inspector | undefined;
  /** Breakpoint addresses whose DWARF has been read ahead while the guest ran. */
  private readonly warmed = new Set<bigint>();
  /** Why the guest last stopped: a data breakpoint's PC is already past the writing instruction. */
  lastStopReason: StopReason | undefined;
  private stackCache = new Map<number, UnwoundFrame[]>();
  readonly unwinder: Unwinder;
  private readonly stepper: Stepper | undefined;
  private stepReason?: StopReason;
  /** The PC a step ended at, when it knows it without reading registers. */
  private stepPc?: bigint;
  private pauseRequested = false;
  private interruptedForUpdate?: (s: StopReply) => void;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    readonly target: KernelTarget,
    readonly symbols: SymbolTable | undefined,
    readonly source?: SourceInfo,
  ) {
    super();
    this.bps = new BreakpointTable(target.rsp, target.arch.breakpointKind, () => target.breakpointsInMemory);
    this.watches = new WatchTable(target.rsp);
    this.instructionBps = new InstructionBreakpoints({ bps: this.bps, newId: () => this.nextId++, withOptions: (r, o) => this.withOptions(r, o) });
    const isCode = (pc: bigint): boolean => this.symbols?.locate(pc) !== undefined || source?.lineAt(pc) !== undefined;
    this.unwinder = new Unwinder(target.arch, source?.dwarf?.frames(), isCode, async (addr, size) => {
      try {
        return await target.readMemory(addr, size);
      } catch {
        return undefined;
      }
    });
    if (source) {
      this.stepper = new Stepper({
        target,
        arch: target.arch,
        bps: this.bps,
        source,
        unwinder: this.unwinder,
        pauseRequested: () => this.pauseRequested,
        dwarfRegisters: (tid) => this.dwarfRegisters(tid),
      });
    }
    target.rsp.on('unsolicited-stop', (s: StopReply) => void this.onUnsolicitedStop(s));
    target.rsp.on('close', () => this.markExited('the gdbstub connection closed'));
  }

  get isRunning(): boolean {
    return this.state === 'running';
  }

  get isExited(): boolean {
    return this.state === 'exited';
  }

  get currentThread(): number {
    return this.thread;
  }

  /** Learn the initial stop state after connecting (the stub stops the VM on connect). */
  async init(): Promise<void> {
    const s = await this.target.haltReason();
    if (s.kind === 'signal' && s.thread !== undefined && s.thread > 0) this.thread = s.thread;
    else this.thread = (await this.target.threads())[0] ?? 1;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.lock.then(fn, fn);
    this.lock = p.catch(() => undefined);
    return p;
  }

  /** Replace the set of function breakpoints; each gets every address its name resolves to. */
  setFunctionBreakpoints(requests: FunctionBreakpointRequest[]): Promise<BreakpointResult[]> {
    return this.serialize(() =>
      this.whileStopped(async () => {
        const old = this.functionBps;
        this.functionBps = new Map();
        const results: BreakpointResult[] = [];
        for (const req of requests) {
          const name = req.name.trim();
          const prev = old.get(name);
          if (prev) {
            old.delete(name);
            this.functionBps.set(name, prev);
            results.push(this.withOptions(prev.result, req));
            continue;
          }
          results.push(this.withOptions(await this.addFunctionBreakpoint(name), req));
        }
        for (const gone of old.values()) for (const a of gone.addresses) await this.bps.remove(a, gone.id);
        return results;
      }),
    );
  }

  private async addFunctionBreakpoint(name: string): Promise<BreakpointResult> {
    const id = this.nextId++;
    if (!this.symbols) return { id, verified: false, message: 'No vmlinux was given, so function names cannot be resolved. Set "vmlinux".' };
    const source = this.source;
    let locations: CodeLocation[];
    let completeLater = false;
    if (source) {
      locations = source.functionEntries(name);
      // Inlined copies come from the background index: wait for it only when there is
      // nothing else to offer (an inline-only function) or when it is already built.
      if (locations.length === 0 || source.index?.functionsReady) locations = await this.withInlined(name, locations);
      else completeLater = source.index !== undefined;
    } else {
      locations = this.symbols
        .lookup(name)
        .filter((s) => s.type === 'func')
        .map((s) => ({ address: s.value, location: undefined, function: name }));
    }
    if (locations.length === 0) {
      return { id, verified: false, message: `No function '${name}' in vmlinux${name === 'do_fork' ? " (since Linux 5.10 it is called 'kernel_clone')" : ''}.` };
    }
    const { addresses, failure } = await this.insertAll(locations.map((l) => l.address), id);
    const result: BreakpointResult =
      addresses.length === 0
        ? { id, verified: false, message: `Could not insert a breakpoint at '${name}': ${failure}` }
        : { id, verified: true, address: addresses[0], location: locations.find((l) => l.address === addresses[0])?.location, message: locationsNote(addresses.length) };
    this.functionBps.set(name, { id, addresses, result });
    if (completeLater && addresses.length) void this.addInlinedCopies(name, id);
    return result;
  }

  private async withInlined(name: string, entries: CodeLocation[]): Promise<CodeLocation[]> {
    try {
      return (await this.source?.functionLocations(name)) ?? entries;
    } catch (e) {
      this.emit('warning', `Inlined copies of '${name}' are not included: ${(e as Error).message}`);
      return entries;
    }
  }

  /**
   * Once the function index is built, add a breakpoint's inlined copies and tell the client
   * (a 'breakpoint-changed' event) how many locations it now has.
   */
  private async addInlinedCopies(name: string, id: number): Promise<void> {
    let extra: CodeLocation[];
    try {
      extra = (await this.source?.inlinedLocations(name)) ?? [];
    } catch (e) {
      this.emit('warning', `Inlined copies of '${name}' are not included: ${(e as Error).message}`);
      return;
    }
    if (!extra.length || this.isExited) return;
    await this.serialize(() =>
      this.whileStopped(async () => {
        const bp = this.functionBps.get(name);
        if (!bp || bp.id !== id) return;
        const fresh = extra.filter((l) => !bp.addresses.includes(l.address));
        const ins = await this.insertAll(fresh.map((l) => l.address), id);
        if (!ins.addresses.length) return;
        bp.addresses.push(...ins.addresses);
        bp.result = { ...bp.result, message: locationsNote(bp.addresses.length) };
        this.emit('breakpoint-changed', bp.result);
      }),
    ).catch((e: unknown) => this.emit('warning', `Inlined copies of '${name}' could not be inserted: ${(e as Error).message}`));
  }

  private async insertAll(addrs: bigint[], id: number): Promise<{ addresses: bigint[]; failure: string }> {
    const addresses: bigint[] = [];
    let failure = '';
    for (const a of addrs) {
      try {
        await this.bps.add(a, id);
        addresses.push(a);
      } catch (e) {
        failure = (e as Error).message;
      }
    }
    return { addresses, failure };
  }

  /**
   * Replace the breakpoints of one source file. Each line maps through the line tables to
   * every address that starts it (inlined copies included); a line without code moves to
   * the next line that has some, and the result says which line was used.
   */
  setSourceBreakpoints(clientPath: string, requests: SourceBreakpointRequest[]): Promise<BreakpointResult[]> {
    return this.serialize(() =>
      this.whileStopped(async () => {
        const old = this.sourceBps.get(clientPath) ?? new Map();
        const now = new Map<number, { id: number; addresses: bigint[]; result: BreakpointResult }>();
        const results: BreakpointResult[] = [];
        for (const req of requests) {
          const prev = old.get(req.line);
          if (prev) {
            old.delete(req.line);
            now.set(req.line, prev);
            results.push(this.withOptions(prev.result, req));
            continue;
          }
          const id = this.nextId++;
          let result: BreakpointResult;
          let addresses: bigint[] = [];
          const resolved = await this.source?.lineLocations(clientPath, req.line);
          if (!this.source || !resolved) {
            result = { id, verified: false, message: 'This vmlinux has no DWARF line tables, so source lines cannot be mapped. Build the kernel with CONFIG_DEBUG_INFO_DWARF5 (or DWARF4).' };
          } else if (resolved.locations.length === 0) {
            result = { id, verified: false, message: `No code for line ${req.line} or any later line of ${clientPath} in vmlinux. Is the file compiled into this kernel (check its CONFIG_ option), or does 'sourceMap' need an entry?` };
          } else {
            const ins = await this.insertAll(resolved.locations.map((l) => l.address), id);
            addresses = ins.addresses;
            const first = resolved.locations.find((l) => l.address === addresses[0]);
            result = addresses.length
              ? { id, verified: true, address: addresses[0], location: { path: clientPath, line: resolved.line, column: first?.location?.line === resolved.line ? first.location.column : 0 }, message: locationsNote(addresses.length) }
              : { id, verified: false, message: `Could not insert a breakpoint for line ${resolved.line}: ${ins.failure}` };
          }
          now.set(req.line, { id, addresses, result });
          results.push(this.withOptions(result, req));
        }
        for (const gone of old.values()) for (const a of gone.addresses) await this.bps.remove(a, gone.id);
        this.sourceBps.set(clientPath, now);
        return results;
      }),
    );
  }

  /**
   * Attach a condition, hit count or log message to a breakpoint. A bad one leaves the
   * breakpoint unverified with the reason, so the user sees it on the gutter.
   */
  private withOptions(result: BreakpointResult, opts: BreakpointOptions): BreakpointResult {
    const prev = this.behaviours.get(result.id);
    if (prev?.same(opts)) return result;
    let b: BreakpointBehaviour;
    try {
      b = new BreakpointBehaviour(opts);
    } catch (e) {
      this.behaviours.set(result.id, new BreakpointBehaviour({ condition: '0' }));
      return { ...result, verified: false, message: (e as Error).message };
    }
    if (b.plain) this.behaviours.delete(result.id);
    else this.behaviours.set(result.id, b);
    return result;
  }

  /** The engine's view of values and expressions at the current stop. */
  get inspector(): Inspector {
    this.inspectorInstance ??= new Inspector(this, this.source, this.symbols);
    return this.inspectorInstance;
  }

  /** Registers or memory were written: drop what this stop had read. */
  forgetStop(): void {
    this.stackCache.clear();
    this.target.invalidate();
    this.inspectorInstance?.reset();
  }

  /** Replace the instruction breakpoints (the disassembly view's). */
  setInstructionBreakpoints(requests: InstructionBreakpointRequest[]): Promise<BreakpointResult[]> {
    return this.serialize(() => this.whileStopped(() => this.instructionBps.set(requests)));
  }

  /** Replace the data breakpoints (watchpoints). */
  setDataBreakpoints(requests: WatchRequest[]): Promise<WatchResult[]> {
    return this.serialize(() => this.whileStopped(() => this.watches.set(requests, () => this.nextId++)));
  }

  /** Names of the function breakpoints placed at pc (a stop there shows that function's frame). */
  functionBreakpointsAt(pc: bigint): Set<string> {
    const out = new Set<string>();
    for (const [name, bp] of this.functionBps) if (bp.addresses.includes(pc)) out.add(name);
    return out;
  }

  /**
   * Registers by DWARF number, for CFI and the expression evaluator: the core registers of the
   * `g` block (arm64's v0-v31 and riscv's f0-f31 would cost 32 `p` packets a stop, for values
   * the kernel, built without FP, never keeps there).
   */
  dwarfRegisters(tid: number): Promise<Map<number, bigint>> {
    return this.target.readDwarfRegisters(tid);
  }

  /** The physical frames of a stopped vCPU, innermost first; cached until the guest runs. */
  async stack(tid: number): Promise<UnwoundFrame[]> {
    let frames = this.stackCache.get(tid);
    if (!frames) {
      frames = await this.unwinder.unwind(await this.dwarfRegisters(tid), 64);
      this.stackCache.set(tid, frames);
    }
    return frames;
  }

  /** Source-level step: over or into calls, or out of the current (possibly inlined) frame. */
  stepSource(tid: number, kind: StepKind, inlineDepth = 0): Promise<void> {
    return this.serialize(async () => {
      this.requireStopped('step');
      if (!this.stepper) throw errors.unsupported('Line stepping needs DWARF line tables; this vmlinux has none. Use instruction stepping (granularity "instruction").');
      // The vCPU that stopped exists; asking the stub would cost a round trip per step.
      if (tid !== this.thread && !(await this.target.threads()).includes(tid)) throw errors.unknownThread(tid);
      this.thread = tid;
      const stepper = this.stepper;
      this.launchRun(async () => {
        const out = await stepper.run(tid, kind, inlineDepth);
        this.stepReason = out.reason;
        this.stepPc = out.pc;
        return out.stop;
      }, 'step');
    });
  }

  /**
   * Run `fn` with the guest stopped. When it is running, interrupt it, do the work, and
   * resume it without telling the client it ever stopped (as gdb does in all-stop mode).
   */
  private async whileStopped<T>(fn: () => Promise<T>): Promise<T> {
    if (this.state !== 'running') return fn();
    const stopped = new Promise<StopReply>((resolve) => (this.interruptedForUpdate = resolve));
    this.target.rsp.interrupt();
    const stop = await stopped;
    // QEMU reports our 0x03 as SIGINT; a SIGTRAP means a breakpoint or watchpoint won the race.
    const realStop = stop.kind !== 'signal' || stop.signal !== SIGINT;
    try {
      return await fn();
    } finally {
      if (realStop) await this.report(stop, 'continue');
      else if (!this.isExited) this.launchRun(() => this.continuePacket(), 'continue', undefined, true);
    }
  }

  /** Resume every vCPU. Steps the current one off a breakpoint first, as gdb does. */
  continue(): Promise<void> {
    return this.serialize(async () => {
      this.requireStopped('continue');
      const stepped = await this.stepOffBreakpoint();
      if (stepped) return;
      this.launchRun(() => this.continuePacket(), 'continue');
      const fresh = this.bps.addresses().filter((a) => !this.warmed.has(a));
      for (const a of fresh) this.warmed.add(a);
      // Read ahead what a stop there needs once the resume is on the wire, not before it.
      if (fresh.length) readAhead(this.source, this.target.arch, fresh);
    });
  }

  /**
   * Execute one instruction on `tid`; the others stay stopped. Pause can break a step that
   * hangs (hlt). With `overCalls` (gdb's nexti), a call runs until it returns to this frame.
   */
  stepInstruction(tid: number, overCalls = false): Promise<void> {
    return this.serialize(async () => {
      this.requireStopped('step');
      if (!(await this.target.threads()).includes(tid)) throw errors.unknownThread(tid);
      this.thread = tid;
      const pc = await this.target.pc(tid);
      const stepper = this.stepper;
      const ret = overCalls && stepper ? await callReturnAddress(this.target.arch.disassembler, (a, n) => this.target.readMemoryPartial(a, n, tid), pc) : undefined;
      if (stepper && ret !== undefined) {
        return this.launchRun(async () => {
          const out = await stepper.stepOverCall(tid, ret);
          this.stepReason = out.reason;
          return out.stop;
        }, 'step');
      }
      this.launchRun(() => stepPast(this.target, this.bps, tid, pc), 'step');
    });
  }

  /** Ask the running guest to stop; the 'stopped' event follows with reason 'pause'. */
  pause(): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    this.pauseRequested = true;
    this.target.rsp.interrupt();
    return Promise.resolve();
  }

  /** Report the current stop to the client without running (stopOnEntry, attach). */
  async reportCurrent(reason: StopReason): Promise<void> {
    const pc = await this.target.pc(this.thread);
    this.emit('stopped', { reason, threadId: this.thread, pc, hitBreakpointIds: [], description: describeReason(reason) } satisfies StopEvent);
  }

  private requireStopped(what: string): void {
    if (this.state === 'exited') throw errors.qemuExited(`cannot ${what}: the guest is gone`);
    if (this.state === 'running') throw errors.targetRunning(what);
  }

  /** When the current PC holds a breakpoint, step past it with it lifted; true when that step already stopped. */
  private async stepOffBreakpoint(): Promise<boolean> {
    const pc = await this.target.pc(this.thread);
    if (!this.bps.has(pc)) return false;
    const stop = await stepPast(this.target, this.bps, this.thread, pc);
    if (stop.kind !== 'signal') {
      await this.report(stop, 'continue');
      return true;
    }
    // The step may itself land on another breakpoint: that is a real hit.
    const tid = stop.thread && stop.thread > 0 ? stop.thread : this.thread;
    const newPc = await this.target.pc(tid);
    if (this.bps.has(newPc)) {
      await this.report(stop, 'continue');
      return true;
    }
    return false;
  }

  private continuePacket(): Promise<StopReply> {
    return P.continueThreads(this.target.rsp, undefined, this.target.vcont);
  }

  private launchRun(start: () => Promise<StopReply>, kind: RunKind, beforeReport?: () => Promise<void>, silent = false): void {
    // A step reads registers after each resume (the target drops them then); other runs may end in stops we didn't ask for.
    if (kind !== 'step') this.target.invalidate();
    this.stepPc = undefined;
    this.state = 'running';
    // A step is usually over within milliseconds: telling the client it runs, then that it
    // stopped, only costs messages (and flickers the status bar). A long one (over a call
    // that blocks) is announced once it takes a while.
    let announce: NodeJS.Timeout | undefined;
    if (!silent && kind === 'step') announce = setTimeout(() => this.emit('running'), STEP_ANNOUNCE_MS);
    else if (!silent) this.emit('running');
    start().then(
      (stop) => {
        clearTimeout(announce);
        const update = this.interruptedForUpdate;
        if (update) {
          this.interruptedForUpdate = undefined;
          this.state = 'stopped';
          update(stop);
          return;
        }
        void this.serialize(async () => {
          await beforeReport?.();
          await this.report(stop, kind);
        });
      },
      (err: Error) => {
        clearTimeout(announce);
        this.markExited(err.message);
      },
    );
  }

  private async report(stop: StopReply, kind: RunKind): Promise<void> {
    if (kind !== 'step') this.target.invalidate();
    this.stackCache.clear();
    const forced = this.stepReason;
    this.stepReason = undefined;
    if (stop.kind !== 'signal') {
      this.markExited(stop.kind === 'exited' ? `the guest exited (code ${stop.code})` : `the guest was terminated (signal ${stop.signal})`);
      return;
    }
    this.state = 'stopped';
    if (stop.thread !== undefined && stop.thread > 0) this.thread = stop.thread;
    this.inspectorInstance?.reset();
    const known = this.stepPc;
    this.stepPc = undefined;
    const pc = known ?? (await this.target.pc(this.thread));
    const watched = this.watches.hitBy(stop);
    const hit = watched.length ? watched.map((w) => w.id) : this.bps.idsAt(pc);
    let reason: StopReason;
    const bpReason = this.instructionBps.ownsAll(hit) ? 'instruction breakpoint' : 'breakpoint';
    if (this.pauseRequested) reason = hit.length && kind !== 'step' ? bpReason : 'pause';
    else if (forced) reason = forced === 'breakpoint' ? bpReason : forced;
    else if (kind === 'step') reason = 'step';
    else if (watched.length) reason = 'data breakpoint';
    else if (hit.length) reason = bpReason;
    else reason = stop.signal === SIGINT ? 'pause' : 'exception';
    if (isBreakpointReason(reason) && !this.pauseRequested && !(await this.shouldStop(hit, watched.length > 0))) {
      await this.resumeQuietly();
      return;
    }
    this.pauseRequested = false;
    let description = describeReason(reason, stop.signal);
    if (watched.length) description = `Data breakpoint: ${watched.map((w) => w.req.label).join(', ')} ${watched[0].req.access === 'read' ? 'read' : 'accessed'}`;
    const ev: StopEvent = { reason, threadId: this.thread, pc, hitBreakpointIds: isBreakpointReason(reason) ? hit : [], description };
    this.lastStopReason = reason;
    this.emit('stopped', ev);
    void this.stepper?.prepare(this.thread).catch(() => undefined);
  }

  /** Run the conditions, hit counts and log messages of the breakpoints hit; false to go on. */
  private async shouldStop(ids: number[], data: boolean): Promise<boolean> {
    const found = ids.map((id) => (data ? this.watches.all.find((w) => w.id === id)?.behaviour : this.behaviours.get(id)));
    if (found.some((b) => !b || b.plain)) return true;
    const d = await decide(found as BreakpointBehaviour[], expressionHost(this.inspector, this.thread));
    for (const line of d.logs) this.emit('output', line);
    for (const p of d.problems) this.emit('warning', p);
    return d.stop;
  }

  /** Go on after a breakpoint that decided not to stop, without the client seeing a stop. */
  private async resumeQuietly(): Promise<void> {
    this.state = 'stopped';
    const pc = await this.target.pc(this.thread);
    if (this.bps.has(pc)) {
      const stop = await stepPast(this.target, this.bps, this.thread, pc);
      // Stepping off can land on another breakpoint or end the guest: judge that stop afresh.
      const tid = stop.kind === 'signal' && stop.thread && stop.thread > 0 ? stop.thread : this.thread;
      if (stop.kind !== 'signal' || this.bps.has(await this.target.pc(tid)) || this.watches.hitBy(stop).length) {
        await this.report(stop, 'continue');
        return;
      }
    }
    this.launchRun(() => this.continuePacket(), 'continue', undefined, true);
  }

  private async onUnsolicitedStop(stop: StopReply): Promise<void> {
    // The VM was stopped by someone else (QMP, the monitor) while we believed it stopped too.
    if (stop.kind !== 'signal') this.markExited('the guest is gone');
  }

  private markExited(why: string): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    this.emit('exited', why);
  }

  /** Leave the guest running and drop the connection. */
  async detach(): Promise<void> {
    await this.serialize(async () => {
      if (this.state === 'exited') return;
      if (this.state === 'running') {
        const stopped = new Promise<StopReply>((resolve) => (this.interruptedForUpdate = resolve));
        this.target.rsp.interrupt();
        await stopped;
      }
      for (const f of this.functionBps.values()) for (const a of f.addresses) await this.bps.remove(a, f.id).catch(() => undefined);
      for (const file of this.sourceBps.values()) for (const f of file.values()) for (const a of f.addresses) await this.bps.remove(a, f.id).catch(() => undefined);
      await this.watches.removeAll();
      await this.instructionBps.removeAll();
      await this.bps.flushStale().catch(() => undefined);
      await P.detach(this.target.rsp).catch(() => undefined);
    });
    this.markExited('detached');
    this.target.close();
  }
}

function locationsNote(n: number): string | undefined {
  return n > 1 ? `${n} locations` : undefined;
}
