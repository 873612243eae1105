/**
 * Run control: continue, steps, pause, and turning each stop reply into a stop the client
 * sees (or a breakpoint that decided not to stop, which the client never sees). QEMU's stub
 * reports no swbreak/hwbreak, so a breakpoint is told from a step or a pause by comparing the
 * stop PC with the inserted addresses.
 */
import * as P from '../rsp/packets';
import type { StopReply } from '../rsp/stop';
import { errors } from '../util/errors';
import { stepPast, type BreakpointTable } from './breakpoints';
import { callReturnAddress } from './disasm';
import { readAhead } from './readahead';
import type { SourceInfo } from './sourceinfo';
import type { Stepper, StepKind } from './stepping';
import { describeReason, isBreakpointReason, type StopEvent, type StopReason } from './stopreason';
import type { KernelTarget } from './target';
import type { WatchTable } from './watchpoints';

type RunKind = 'continue' | 'step';

/** QEMU reports an interrupt (0x03 or a VM pause) as SIGINT and breakpoints/steps as SIGTRAP. */
const SIGINT = 2;
const SIGTRAP = 5;
/** Single steps tried past a breakpoint before an unmoved PC counts as a hit (see stepOff). */
const STEP_OFF_TRIES = 3;
/** How long a step runs before the client is told the guest is running. */
const STEP_ANNOUNCE_MS = 100;
/** How long an interrupt for engine work may wait for the stop before that work fails. */
const INTERRUPT_MS = 4000;

/** What run control needs of the rest of the engine. */
export interface RunHost {
  readonly target: KernelTarget;
  readonly bps: BreakpointTable;
  readonly watches: WatchTable;
  readonly stepper: Stepper | undefined;
  readonly source: SourceInfo | undefined;
  /** Whether every id hit is an instruction breakpoint's (the stop is reported as one). */
  instructionHit(ids: number[]): boolean;
  /** Conditions, hit counts and logpoints of the breakpoints hit: false to go on. */
  shouldStop(ids: number[], data: boolean, tid: number): Promise<boolean>;
  /** A new stop or a resume: what the last stop had read is stale. */
  forget(): void;
  /** Whether a stop nothing of the user's explains was the engine's own (a hidden watchpoint), to go on from. */
  hiddenStop?(stop: StopReply, tid: number): Promise<boolean>;
  /** Work a stop the client will see needs first (the module list when no hook follows it). */
  beforeStop?(reason: StopReason): Promise<void>;
  stopped(e: StopEvent): void;
  running(): void;
  exited(why: string): void;
}

/** How long a pause's step planning waits for the client's first requests (see prepareStep). */
const PREPARE_AFTER_PAUSE_MS = 50;

export class RunControl {
  private state: 'stopped' | 'running' | 'exited' = 'stopped';
  thread = 1;
  /** Breakpoint addresses whose DWARF has been read ahead while the guest ran. */
  private readonly warmed = new Set<bigint>();
  /** Why the guest last stopped: a data breakpoint's PC is already past the writing instruction. */
  lastStopReason: StopReason | undefined;
  private stepReason?: StopReason;
  /** The PC a step ended at, when it knows it without reading registers. */
  private stepPc?: bigint;
  private pauseRequested = false;
  private interruptedForUpdate?: (s: StopReply) => void;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: RunHost) {}

  get isRunning(): boolean {
    return this.state === 'running';
  }

  get isExited(): boolean {
    return this.state === 'exited';
  }

  get pausing(): boolean {
    return this.pauseRequested;
  }

  /** Engine work runs one piece at a time, in the order asked. */
  serialize<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.lock.then(fn, fn);
    this.lock = p.catch(() => undefined);
    return p;
  }

  /**
   * Run `fn` with the guest stopped. When it is running, interrupt it, do the work, and
   * resume it without telling the client it ever stopped (as gdb does in all-stop mode).
   */
  async whileStopped<T>(fn: () => Promise<T>): Promise<T> {
    if (this.state !== 'running') return fn();
    const stop = await this.interrupt();
    // QEMU reports our 0x03 as SIGINT; a SIGTRAP means a breakpoint or watchpoint won the race.
    const realStop = stop.kind !== 'signal' || stop.signal !== SIGINT;
    try {
      return await fn();
    } finally {
      if (realStop) await this.report(stop, 'continue');
      else if (!this.isExited) this.launchRun(() => this.continuePacket(), 'continue', true);
    }
  }

  /**
   * Stop the running guest for engine work. A stub that never answers (QEMU stopped by a
   * signal) fails the work after a bound instead of holding every later request behind it;
   * a stop that comes later is then reported as a pause.
   */
  private interrupt(): Promise<StopReply> {
    const stopped = new Promise<StopReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.interruptedForUpdate !== done) return;
        this.interruptedForUpdate = undefined;
        this.pauseRequested = true;
        reject(errors.targetNotStopped(`the gdbstub did not stop the guest within ${INTERRUPT_MS / 1000} s of an interrupt`));
      }, INTERRUPT_MS);
      const done = (s: StopReply): void => {
        clearTimeout(timer);
        resolve(s);
      };
      this.interruptedForUpdate = done;
    });
    this.host.target.rsp.interrupt();
    return stopped;
  }

  /** Resume every vCPU. Steps the current one off a breakpoint first, as gdb does. */
  continue(): Promise<void> {
    return this.serialize(async () => {
      this.requireStopped('continue');
      if (await this.stepOffBreakpoint()) return;
      this.launchRun(() => this.continuePacket(), 'continue');
      const fresh = this.host.bps.addresses().filter((a) => !this.warmed.has(a));
      for (const a of fresh) this.warmed.add(a);
      // Read ahead what a stop there needs once the resume is on the wire, not before it.
      if (fresh.length) readAhead(this.host.source, this.host.target.arch, fresh);
    });
  }

  /** Source-level step: over or into calls, or out of the current (possibly inlined) frame. */
  stepSource(tid: number, kind: StepKind, inlineDepth = 0): Promise<void> {
    return this.serialize(async () => {
      this.requireStopped('step');
      const stepper = this.host.stepper;
      if (!stepper) throw errors.unsupported('Line stepping needs DWARF line tables; this vmlinux has none. Use instruction stepping (granularity "instruction").');
      // The vCPU that stopped exists; asking the stub would cost a round trip per step.
      if (tid !== this.thread && !(await this.host.target.threads()).includes(tid)) throw errors.unknownThread(tid);
      this.thread = tid;
      this.launchRun(async () => {
        const out = await stepper.run(tid, kind, inlineDepth);
        this.stepReason = out.reason;
        this.stepPc = out.pc;
        return out.stop;
      }, 'step');
    });
  }

  /**
   * Execute one instruction on `tid`; the others stay stopped. Pause can break a step that
   * hangs (hlt). With `overCalls` (gdb's nexti), a call runs until it returns to this frame.
   */
  stepInstruction(tid: number, overCalls = false): Promise<void> {
    return this.serialize(async () => {
      this.requireStopped('step');
      const target = this.host.target;
      if (!(await target.threads()).includes(tid)) throw errors.unknownThread(tid);
      this.thread = tid;
      const pc = await target.pc(tid);
      const stepper = this.host.stepper;
      const ret = overCalls && stepper ? await callReturnAddress(target.arch.disassembler, (a, n) => target.readMemoryPartial(a, n, tid), pc) : undefined;
      if (stepper && ret !== undefined) {
        return this.launchRun(async () => {
          const out = await stepper.stepOverCall(tid, ret);
          this.stepReason = out.reason;
          return out.stop;
        }, 'step');
      }
      this.launchRun(() => stepPast(target, this.host.bps, tid, pc), 'step');
    });
  }

  /** Ask the running guest to stop; the 'stopped' event follows with reason 'pause'. */
  pause(): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    this.pauseRequested = true;
    this.host.target.rsp.interrupt();
    return Promise.resolve();
  }

  /** Report the current stop to the client without running (stopOnEntry, attach). */
  async reportCurrent(reason: StopReason): Promise<void> {
    const pc = await this.host.target.pc(this.thread);
    this.host.stopped({ reason, threadId: this.thread, pc, hitBreakpointIds: [], description: describeReason(reason) });
  }

  requireStopped(what: string): void {
    if (this.state === 'exited') throw errors.qemuExited(`cannot ${what}: the guest is gone`);
    if (this.state === 'running') throw errors.targetRunning(what);
  }

  /** When the current PC holds a breakpoint, step past it with it lifted; true when that step already stopped. */
  private async stepOffBreakpoint(): Promise<boolean> {
    const { target, bps } = this.host;
    const pc = await target.pc(this.thread);
    if (!bps.has(pc)) return false;
    const { stop, landed } = await this.stepOff(pc);
    // The step may itself land on another breakpoint (or end the guest): that is a real stop.
    if (stop.kind !== 'signal' || (landed !== undefined && bps.has(landed))) {
      await this.report(stop, 'continue');
      return true;
    }
    return false;
  }

  /**
   * One instruction past the breakpoint at `pc`, on the way to a run. QEMU's TCG now and then
   * ends a single step with the instruction not executed (a SIGTRAP with every register as it
   * was, seen right after a module's init breakpoint): reported as is, that is the same
   * breakpoint hit a second time. The step is tried again; an instruction that really stays
   * put (a self-loop) ends the retries and counts as a hit, as gdb would show it.
   */
  private async stepOff(pc: bigint): Promise<{ stop: StopReply; landed?: bigint }> {
    const { target, bps } = this.host;
    for (let attempt = 1; ; attempt++) {
      const stop = await stepPast(target, bps, this.thread, pc);
      if (stop.kind !== 'signal') return { stop };
      const tid = stop.thread && stop.thread > 0 ? stop.thread : this.thread;
      const landed = await target.pc(tid);
      if (landed !== pc || tid !== this.thread || stop.signal !== SIGTRAP || attempt === STEP_OFF_TRIES) return { stop, landed };
    }
  }

  private continuePacket(): Promise<StopReply> {
    return P.continueThreads(this.host.target.rsp, undefined, this.host.target.vcont);
  }

  private launchRun(start: () => Promise<StopReply>, kind: RunKind, silent = false): void {
    // A step reads registers after each resume (the target drops them then); other runs may end in stops we didn't ask for.
    if (kind !== 'step') this.host.target.invalidate();
    this.stepPc = undefined;
    this.state = 'running';
    // A step is usually over within milliseconds: telling the client it runs, then that it
    // stopped, only costs messages (and flickers the status bar). A long one (over a call
    // that blocks) is announced once it takes a while.
    let announce: NodeJS.Timeout | undefined;
    if (!silent && kind === 'step') announce = setTimeout(() => this.host.running(), STEP_ANNOUNCE_MS);
    else if (!silent) this.host.running();
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
        void this.serialize(() => this.report(stop, kind));
      },
      (err: Error) => {
        clearTimeout(announce);
        this.markExited(err.message);
      },
    );
  }

  private async report(stop: StopReply, kind: RunKind): Promise<void> {
    const { target, bps, watches } = this.host;
    if (kind !== 'step') target.invalidate();
    this.host.forget();
    const forced = this.stepReason;
    this.stepReason = undefined;
    if (stop.kind !== 'signal') {
      this.markExited(stop.kind === 'exited' ? `the guest exited (code ${stop.code})` : `the guest was terminated (signal ${stop.signal})`);
      return;
    }
    this.state = 'stopped';
    if (stop.thread !== undefined && stop.thread > 0) this.thread = stop.thread;
    const known = this.stepPc;
    this.stepPc = undefined;
    const pc = known ?? (await target.pc(this.thread));
    if (kind !== 'step' && stop.signal !== SIGINT && (await this.host.hiddenStop?.(stop, this.thread)) && !this.pauseRequested) {
      await this.resumeQuietly();
      return;
    }
    const watched = watches.hitBy(stop);
    const hit = watched.length ? watched.map((w) => w.id) : bps.idsAt(pc);
    const bpReason = this.host.instructionHit(hit) ? 'instruction breakpoint' : 'breakpoint';
    let reason: StopReason;
    if (this.pauseRequested) reason = hit.length && kind !== 'step' ? bpReason : 'pause';
    else if (forced) reason = forced === 'breakpoint' ? bpReason : forced;
    else if (kind === 'step') reason = 'step';
    else if (watched.length) reason = 'data breakpoint';
    else if (hit.length) reason = bpReason;
    else reason = stop.signal === SIGINT ? 'pause' : 'exception';
    if (isBreakpointReason(reason) && !this.pauseRequested && !(await this.host.shouldStop(hit, watched.length > 0, this.thread))) {
      await this.resumeQuietly();
      return;
    }
    this.pauseRequested = false;
    let description = describeReason(reason, stop.signal);
    if (watched.length) description = `Data breakpoint: ${watched.map((w) => w.req.label).join(', ')} ${watched[0].req.access === 'read' ? 'read' : 'accessed'}`;
    this.lastStopReason = reason;
    await this.host.beforeStop?.(reason);
    this.host.stopped({ reason, threadId: this.thread, pc, hitBreakpointIds: isBreakpointReason(reason) ? hit : [], description });
    this.prepareStep(reason);
  }

  /** Stops reported so far: a deferred step plan is for the stop it was made at only. */
  private stops = 0;

  /**
   * Plan the next step while the user looks at the stop. After a breakpoint or a step the
   * next request is often another step: planned at once. After a pause (or an exception) the
   * user looks around first (the stack, variables, the Kernel Tasks view, the kernel log):
   * planning, which parses the stopped line's DWARF and decodes it, then waits until the
   * client's first requests are answered rather than competing with them for the one thread.
   */
  private prepareStep(reason: StopReason): void {
    const stepper = this.host.stepper;
    if (!stepper) return;
    const stop = ++this.stops;
    const tid = this.thread;
    if (reason !== 'pause' && reason !== 'exception') {
      void stepper.prepare(tid).catch(() => undefined);
      return;
    }
    setTimeout(() => {
      void this.serialize(async () => {
        if (stop === this.stops && this.state === 'stopped') await stepper.prepare(tid);
      }).catch(() => undefined);
    }, PREPARE_AFTER_PAUSE_MS);
  }

  /** Go on after a breakpoint that decided not to stop, without the client seeing a stop. */
  private async resumeQuietly(): Promise<void> {
    const { target, bps, watches } = this.host;
    this.state = 'stopped';
    const pc = await target.pc(this.thread);
    if (bps.has(pc)) {
      const { stop, landed } = await this.stepOff(pc);
      // Stepping off can land on another breakpoint or end the guest: judge that stop afresh.
      if (stop.kind !== 'signal' || (landed !== undefined && bps.has(landed)) || watches.hitBy(stop).length) {
        await this.report(stop, 'continue');
        return;
      }
    }
    this.launchRun(() => this.continuePacket(), 'continue', true);
  }

  /** The VM was stopped by someone else (QMP, the monitor) while we believed it stopped too. */
  onUnsolicitedStop(stop: StopReply): void {
    if (stop.kind !== 'signal') this.markExited('the guest is gone');
  }

  markExited(why: string): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    this.host.exited(why);
  }

  /** Stop a running guest for good (detach): no resume follows. */
  async haltForDetach(): Promise<void> {
    if (this.state === 'running') await this.interrupt();
  }
}
