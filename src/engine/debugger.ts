/**
 * The engine for one debug session: breakpoints of every kind, run control, the call stack
 * and the inspector, over one KernelTarget. Each job lives in its own class; this one wires
 * them together and is what the adapter talks to. Emits 'stopped' (StopEvent), 'running',
 * 'exited', 'breakpoint-changed', 'warning' and 'output' (logpoints).
 */
import { EventEmitter } from 'node:events';
import * as P from '../rsp/packets';
import type { StopReply } from '../rsp/stop';
import type { SymbolLookup } from '../symbols/symtab';
import { BreakpointTable } from './breakpoints';
import { Behaviours, BreakpointBehaviour, decide, expressionHost } from './bpconditions';
import type { FaultFilterResult, FaultFilterSetting } from './faults';
import type { BreakpointHost, BreakpointResult, FunctionBreakpointRequest, SourceBreakpointRequest } from './bptypes';
import { FunctionBreakpoints } from './functionbps';
import { Inspector } from './inspect';
import type { ModuleFileOptions } from './modulefiles';
import type { ModuleTracker } from './moduletracker';
import { KernelAwareness } from './awareness';
import { isTaskThread } from './ktasks';
import { InstructionBreakpoints, type InstructionBreakpointRequest } from './instbreakpoints';
import { RunControl } from './runcontrol';
import type { SourceInfo } from './sourceinfo';
import { SourceBreakpoints } from './sourcebps';
import { Stepper, type StepKind } from './stepping';
import type { StopReason } from './stopreason';
import type { KernelTarget } from './target';
import { Unwinder, type UnwoundFrame } from './unwind';
import { WatchTable, type WatchRequest, type WatchResult } from './watchpoints';

export type { StopEvent, StopReason } from './stopreason';
export type { BreakpointResult, FunctionBreakpointRequest, SourceBreakpointRequest } from './bptypes';

export class Debugger extends EventEmitter {
  private nextId = 1;
  private readonly bps: BreakpointTable;
  /** Conditions, hit counts and log messages by breakpoint id (plain breakpoints have none). */
  private readonly behaviours = new Behaviours();
  private readonly watches: WatchTable;
  private readonly functions: FunctionBreakpoints;
  private readonly lines: SourceBreakpoints;
  private readonly instructionBps: InstructionBreakpoints;
  private readonly run: RunControl;
  private inspectorInstance: Inspector | undefined;
  readonly kernel: KernelAwareness;
  private readonly stackCache = new Map<number, UnwoundFrame[]>();
  readonly unwinder: Unwinder;

  constructor(
    readonly target: KernelTarget,
    readonly symbols: SymbolLookup | undefined,
    readonly source?: SourceInfo,
  ) {
    super();
    this.bps = new BreakpointTable(target.rsp, target.arch.breakpointKind, () => target.breakpointsInMemory, target.arch.name === 'x86_64' ? 4 : undefined);
    this.watches = new WatchTable(target.rsp);
    const isCode = (pc: bigint): boolean => this.symbols?.locate(pc) !== undefined || source?.lineAt(pc) !== undefined;
    this.unwinder = new Unwinder(
      target.arch,
      (pc) => source?.cfiRow(pc),
      isCode,
      (addr, size) => target.readMemory(addr, size).catch(() => undefined),
      (pc) => source !== undefined && (source.isFunctionEntry(pc) || source.patchableEntry(pc) !== undefined),
    );
    const stepper = source
      ? new Stepper({
          target,
          arch: target.arch,
          bps: this.bps,
          source,
          unwinder: this.unwinder,
          pauseRequested: () => this.run.pausing,
          dwarfRegisters: (tid) => this.dwarfRegisters(tid),
        })
      : undefined;
    this.run = new RunControl({
      target,
      bps: this.bps,
      watches: this.watches,
      stepper,
      source,
      instructionHit: (ids) => this.instructionBps.ownsAll(ids),
      shouldStop: (ids, data, tid) => this.shouldStop(ids, data, tid),
      forget: () => {
        this.stackCache.clear();
        this.inspectorInstance?.reset();
        this.kernel.forget();
      },
      beforeStop: (reason) => this.kernel.atStop(reason, this.run.thread),
      hiddenStop: (stop, tid) => this.kernel.base?.takeHidden(stop, tid) ?? Promise.resolve(false),
      stopped: (e) => this.emit('stopped', this.kernel.faults?.decorate(e) ?? e),
      running: () => this.emit('running'),
      exited: (why) => this.emit('exited', why),
    });
    const run = this.run;
    const host: BreakpointHost = {
      bps: this.bps,
      newId: () => this.nextId++,
      withOptions: (r, o) => this.behaviours.attach(r, o),
      stoppedTurn: (fn) => this.stoppedTurn(fn),
      get isExited() {
        return run.isExited;
      },
      warn: (m) => this.emit('warning', m),
      changed: (r) => this.emit('breakpoint-changed', r),
      pendingReason: (what) => this.kernel.tracker?.files.pendingReason(what),
      addressesUnknown: () => this.kernel.base?.unknownReason(),
      candidateShifts: () => this.kernel.base?.candidateShifts(),
    };
    this.functions = new FunctionBreakpoints(host, symbols, source);
    this.lines = new SourceBreakpoints(host, source);
    this.instructionBps = new InstructionBreakpoints(host);
    const faults = { condition: (c: string, tid: number) => this.holds(c, tid), unwind: (r: Map<number, bigint>) => this.unwinder.unwind(r, 64) };
    this.kernel = new KernelAwareness({ target, source, bps: this.bps, host, functions: this.functions, lines: this.lines, events: this, program: () => this.inspector.program, newId: () => this.nextId++, thread: () => this.run.thread, forgetStop: () => this.forgetStop(), faults });
    target.rsp.on('unsolicited-stop', (s: StopReply) => this.run.onUnsolicitedStop(s));
    target.rsp.on('close', () => this.run.markExited('the gdbstub connection closed'));
  }

  get isRunning(): boolean {
    return this.run.isRunning;
  }

  get isExited(): boolean {
    return this.run.isExited;
  }

  get currentThread(): number {
    return this.run.thread;
  }

  get lastStopReason(): StopReason | undefined {
    return this.run.lastStopReason;
  }

  /** Learn the initial stop state after connecting (the stub stops the VM on connect). */
  async init(): Promise<void> {
    const s = await this.target.haltReason();
    if (s.kind === 'signal' && s.thread !== undefined && s.thread > 0) this.run.thread = s.thread;
    else this.run.thread = (await this.target.threads())[0] ?? 1;
  }

  /** Loaded modules, once enableModules has run. */
  get modules(): ModuleTracker | undefined {
    return this.kernel.tracker;
  }

  /** Load the symbols of the modules the guest has, and follow loads and unloads. Emits 'module' (reason, ModuleView). */
  enableModules(opts: ModuleFileOptions): Promise<void> {
    return this.stoppedTurn(() => this.kernel.enableModules(opts)).catch((e: unknown) => void this.emit('warning', `Module symbols will not load by themselves: ${(e as Error).message}`));
  }

  /** Where vmlinux runs: at its link addresses ('fixed', nokaslr), or found at the first stop in the kernel ('find'). */
  followKernelBase(mode: 'fixed' | 'find', bootImage?: () => Buffer | undefined): Promise<void> {
    return this.stoppedTurn(() => this.kernel.followKernelBase(mode, bootImage));
  }

  /** The guest is about to be reset: a KASLR kernel's breakpoints wait for the next boot's offset. */
  rebooting(): Promise<void> {
    return this.stoppedTurn(() => this.kernel.rebooting());
  }

  /** Work that only reads the guest (the task list, the kernel log): stopped for it, with no module bookkeeping around it. */
  readTurn<T>(fn: () => Promise<T>): Promise<T> {
    return this.run.serialize(() => this.run.whileStopped(fn));
  }

  /** Breakpoint changes, in turn with other engine work, with the guest stopped and its module list read; the module hooks then follow. */
  stoppedTurn<T>(fn: () => Promise<T>): Promise<T> {
    return this.readTurn(async () => {
      await this.kernel.beforeChange();
      const out = await fn();
      await this.kernel.afterChange();
      return out;
    });
  }

  /** Replace the set of function breakpoints; each gets every address its name resolves to. */
  setFunctionBreakpoints(requests: FunctionBreakpointRequest[]): Promise<BreakpointResult[]> {
    return this.stoppedTurn(() => this.functions.set(requests));
  }

  /** Replace the breakpoints of one source file. */
  setSourceBreakpoints(clientPath: string, requests: SourceBreakpointRequest[]): Promise<BreakpointResult[]> {
    return this.stoppedTurn(() => this.lines.set(clientPath, requests));
  }

  /** Replace the exception filters (panic, Oops, BUG, …): one result per setting. */
  setExceptionFilters(settings: FaultFilterSetting[]): Promise<FaultFilterResult[]> {
    return this.stoppedTurn(async () => (this.kernel.faults ? this.kernel.faults.set(settings) : settings.map(() => ({ verified: false, message: 'Exception filters need vmlinux with DWARF (set "vmlinux").' }))));
  }

  /** Replace the instruction breakpoints (the disassembly view's). */
  setInstructionBreakpoints(requests: InstructionBreakpointRequest[]): Promise<BreakpointResult[]> {
    return this.stoppedTurn(() => this.instructionBps.set(requests));
  }

  /** Replace the data breakpoints (watchpoints). */
  setDataBreakpoints(requests: WatchRequest[]): Promise<WatchResult[]> {
    return this.stoppedTurn(() => this.watches.set(requests, () => this.nextId++));
  }

  /** Names of the function breakpoints placed at pc (a stop there shows that function's frame). */
  functionBreakpointsAt(pc: bigint): Set<string> {
    return this.functions.namesAt(pc);
  }

  /** Run the conditions, hit counts and log messages of the breakpoints hit; false to go on. */
  private async shouldStop(hit: number[], data: boolean, tid: number): Promise<boolean> {
    const ids = data ? hit : await this.kernel.userHits(hit, tid);
    if (!ids.length) return false;
    const found = ids.map((id) => (data ? this.watches.all.find((w) => w.id === id)?.behaviour : this.behaviours.get(id)));
    if (found.some((b) => !b || b.plain)) return true;
    const d = await decide(found as BreakpointBehaviour[], expressionHost(this.inspector, tid));
    for (const line of d.logs) this.emit('output', line);
    for (const p of d.problems) this.emit('warning', p);
    return d.stop;
  }

  /** Whether a C condition holds at this stop (an exception filter's): evaluated as a breakpoint's is. */
  private async holds(condition: string, tid: number): Promise<boolean> {
    const d = await decide([new BreakpointBehaviour({ condition })], expressionHost(this.inspector, tid));
    for (const p of d.problems) this.emit('warning', p);
    return d.stop;
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

  /**
   * Registers by DWARF number, for CFI and the expression evaluator: the core registers of the
   * `g` block (arm64's v0-v31 and riscv's f0-f31 would cost 32 `p` packets a stop, for values
   * the kernel, built without FP, never keeps there).
   */
  dwarfRegisters(tid: number): Promise<Map<number, bigint>> {
    return isTaskThread(tid) ? this.kernel.tasks.registers(tid) : this.target.readDwarfRegisters(tid);
  }

  /** The physical frames of a stopped vCPU, innermost first; cached until the guest runs. */
  async stack(tid: number): Promise<UnwoundFrame[]> {
    let frames = this.stackCache.get(tid);
    if (!frames) {
      frames = await this.unwinder.unwind(await this.dwarfRegisters(tid), 64);
      if (this.kernel.faults) frames = await this.kernel.faults.arrange(tid, frames);
      this.stackCache.set(tid, frames);
    }
    return frames;
  }

  stepSource(tid: number, kind: StepKind, inlineDepth = 0): Promise<void> {
    return this.run.stepSource(tid, kind, inlineDepth);
  }

  continue(): Promise<void> {
    return this.run.continue();
  }

  stepInstruction(tid: number, overCalls = false): Promise<void> {
    return this.run.stepInstruction(tid, overCalls);
  }

  pause(): Promise<void> {
    return this.run.pause();
  }

  reportCurrent(reason: StopReason): Promise<void> {
    return this.run.reportCurrent(reason);
  }

  /** Leave the guest running and drop the connection. */
  async detach(): Promise<void> {
    await this.run.serialize(async () => {
      if (this.run.isExited) return;
      await this.run.haltForDetach();
      await this.functions.removeAll(true);
      await this.lines.removeAll(true);
      await this.watches.removeAll();
      await this.instructionBps.removeAll();
      await this.kernel.removeAll();
      await this.bps.flushStale().catch(() => undefined);
      await P.detach(this.target.rsp).catch(() => undefined);
    });
    this.run.markExited('detached');
    this.target.close();
  }
}
