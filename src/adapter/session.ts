/**
 * The DAP session: thin handlers over the engine. One dispatcher answers every request:
 * a handler returns a body or throws, and the throw becomes an error response with a code.
 */
import {
  BreakpointEvent,
  DebugSession,
  Event,
  InitializedEvent,
  OutputEvent,
  Response,
  StoppedEvent,
  TerminatedEvent,
  ContinuedEvent,
  ExitedEvent,
} from '@vscode/debugadapter';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { BreakpointResult, StopEvent } from '../engine/debugger';
import type { SourceInfo } from '../engine/sourceinfo';
import type { StepKind } from '../engine/stepping';
import { LaunchConfig } from '../qemu/config';
import { shellQuote } from '../qemu/argv';
import type { ExitInfo } from '../qemu/instance';
import { ErrorCode, errors, toUserError } from '../util/errors';
import { attachBackend, AttachConfig, Backend, launchBackend } from './backend';
import { COMMAND_LINE_REQUEST, CONSOLE_EVENT, type ConsoleEventBody, type LogLevel, RESTART_GUEST_REQUEST, SYMBOLS_EVENT } from './events';
import { BootProgress } from './bootprogress';
import { Feedback } from './feedback';
import { HeldResponse, inOneWrite } from './heldresponse';
import { commandLine, restartGuest } from './guestcontrol';
import { kernelRequests } from './kernelrequests';
import { capabilities, exceptionInfo, setExceptionFilters } from './exceptions';
import { TaskThreads } from './taskthreads';
import { StopHandles } from './handles';
import { FrameRef, stackFrames } from './stack';
import { parseDataId, VariablesView, type VarRef } from './variables';
import { DisassemblyView, instructionBreakpoint, instructionBreakpointRequests } from './disassemble';
import { readMemory, writeMemory } from './memory';
import { registersView, setRegisterValue, type RegistersArguments, type SetRegisterArguments } from './registers';
import { Teardown, type QemuEnd } from './teardown';
import { ANSWERED_AFTER_END, PendingRequests } from './pending';
import { watchStub } from './stubwatch';
import { modulesBody, wireModuleEvents } from './modules';
import type { FrameSelector } from '../engine/inspect';
import type { WatchAccess } from '../engine/watchpoints';

type Handler = (args: never) => Promise<object | undefined>;

export interface SessionOptions {
  /** Called after the disconnect response went out (the stdio entry exits the process). */
  onDisconnected?: () => void;
}

/** Requests whose response waits for the step's stop (see HeldResponse). */
const STEP_COMMANDS = new Set(['next', 'stepIn', 'stepOut']);
/** As long as the engine waits before telling the client a step runs (STEP_ANNOUNCE_MS). */
const STEP_RESPONSE_MAX_MS = 100;

export class QemuKernelSession extends DebugSession {
  private backend?: Backend;
  private clientCaps: DebugProtocol.InitializeRequestArguments = { adapterID: '' };
  private readonly frames = new StopHandles<FrameRef>();
  private readonly vars = new StopHandles<VarRef>();
  private variablesView?: VariablesView;
  private disassemblyView?: DisassemblyView;
  /** Raw-code documents: one stable reference per thread and function, refreshed at each stackTrace. */
  private readonly rawSourceRefs = new Map<string, number>();
  private readonly rawSources = new Map<number, string>();
  private lastThreads: number[] = [1];
  private taskThreads = new TaskThreads(false);
  private readonly feedback = new Feedback(
    (e) => this.sendEvent(e),
    () => this.clientCaps.supportsProgressReporting === true,
    (m) => this.sendEvent(new OutputEvent(m + '\n', 'console')),
  );
  /** Set while launch brings the backend up: configuration requests can come before it is. */
  private starting?: Promise<Backend>;
  /** The vmlinux while QEMU starts, to look breakpoint addresses up before they can be inserted. */
  private early?: SourceInfo;
  /** Configuration requests sent on an early 'initialized' fail with it: the launch error says why. */
  private launchFailed = false;
  private startMode: 'launch' | 'attach' = 'launch';
  private stopAtStart = false;
  private ended = false;
  /** Why the session ended, for requests that come after (or were waiting at) its end. */
  private endedWhy?: string;
  /** Everything the session holds, released once whichever way it ends. */
  private readonly teardown = new Teardown();
  private readonly pending = new PendingRequests();
  private readonly handlers: Record<string, Handler>;
  /** The client's end of the protocol, so a stop's messages can leave in one write. */
  private out?: NodeJS.WritableStream;
  private readonly heldStep = new HeldResponse(STEP_RESPONSE_MAX_MS);
  private bootProgress?: BootProgress;

  constructor(private readonly opts: SessionOptions = {}) {
    super();
    this.setDebuggerLinesStartAt1(true);
    this.setDebuggerColumnsStartAt1(true);
    this.handlers = {
      initialize: (a: DebugProtocol.InitializeRequestArguments) => this.initialize(a),
      launch: (a: LaunchConfig) => this.launch(a),
      attach: (a: AttachConfig) => this.attach(a),
      configurationDone: () => this.configurationDone(),
      setFunctionBreakpoints: (a: DebugProtocol.SetFunctionBreakpointsArguments) => this.setFunctionBreakpoints(a),
      setBreakpoints: (a: DebugProtocol.SetBreakpointsArguments) => this.setBreakpoints(a),
      setExceptionBreakpoints: async (a: DebugProtocol.SetExceptionBreakpointsArguments) => setExceptionFilters((await this.ready()).debugger, a, (m) => this.log(m)),
      exceptionInfo: async (a: DebugProtocol.ExceptionInfoArguments) => exceptionInfo(this.need().debugger, a),
      threads: () => this.threads(),
      modules: async (a: DebugProtocol.ModulesArguments) => modulesBody(this.need().debugger, a),
      stackTrace: (a: DebugProtocol.StackTraceArguments) => this.stackTrace(a),
      scopes: (a: DebugProtocol.ScopesArguments) => this.scopes(a),
      variables: (a: DebugProtocol.VariablesArguments) => this.variables(a),
      evaluate: (a: DebugProtocol.EvaluateArguments) => this.evaluate(a),
      setVariable: (a: DebugProtocol.SetVariableArguments) => this.view().setVariable(a),
      setExpression: (a: DebugProtocol.SetExpressionArguments) => this.view().setExpression(a, this.selector(a.frameId)),
      dataBreakpointInfo: (a: DebugProtocol.DataBreakpointInfoArguments) => this.view().dataBreakpointInfo(a, a.frameId !== undefined ? this.selector(a.frameId) : undefined),
      setDataBreakpoints: (a: DebugProtocol.SetDataBreakpointsArguments) => this.setDataBreakpoints(a),
      setInstructionBreakpoints: async (a: DebugProtocol.SetInstructionBreakpointsArguments) => ({
        breakpoints: (await (await this.ready()).debugger.setInstructionBreakpoints(instructionBreakpointRequests(a))).map(instructionBreakpoint),
      }),
      disassemble: (a: DebugProtocol.DisassembleArguments) => this.disassembly().disassemble(a),
      continue: () => this.continue(),
      next: (a: DebugProtocol.NextArguments) => this.step(a.threadId, 'over', a.granularity),
      stepIn: (a: DebugProtocol.StepInArguments) => this.step(a.threadId, 'into', a.granularity),
      stepOut: (a: DebugProtocol.StepOutArguments) => this.step(a.threadId, 'out', a.granularity),
      pause: () => this.pause(),
      readMemory: (a: DebugProtocol.ReadMemoryArguments) => readMemory(this.need().debugger, a),
      writeMemory: (a: DebugProtocol.WriteMemoryArguments) => this.writeMemory(a),
      'qemuKernel.registers': (a: RegistersArguments) => registersView(this.need().debugger, this.registerSelector(a), a.format ?? 'hex'),
      // The Variables pane's Registers scope and any value held in that register are stale after a write.
      'qemuKernel.setRegister': (a: SetRegisterArguments) => setRegisterValue(this.need().debugger, this.registerSelector(a), a).finally(() => this.sendEvent(new Event('invalidated', { areas: ['variables'] }))),
      source: (a: DebugProtocol.SourceArguments) => this.source(a),
      disconnect: (a: DebugProtocol.DisconnectArguments) => this.disconnect(a),
      terminate: () => this.terminate(),
      [RESTART_GUEST_REQUEST]: () => restartGuest(this.backend),
      [COMMAND_LINE_REQUEST]: async () => commandLine(this.backend),
      ...kernelRequests({ debugger: () => this.need().debugger, taskThreads: () => this.taskThreads, sendEvent: (e) => this.sendEvent(e) }),
    };
  }

  override start(inStream: NodeJS.ReadableStream, outStream: NodeJS.WritableStream): void {
    this.out = outStream;
    super.start(inStream, outStream);
  }

  protected override dispatchRequest(request: DebugProtocol.Request): void {
    this.backend?.indexGate?.activity();
    const handler = this.handlers[request.command];
    const response: DebugProtocol.Response = new Response(request);
    if (!handler) {
      this.sendErrorResponse(response, { id: ErrorCode.Unsupported, format: `Request '${request.command}' is not supported by qemu-kernel-debug.`, showUser: false });
      return;
    }
    const fail = (message: string): void => this.sendErrorResponse(response, { id: ErrorCode.QemuExited, format: message.replace(/[{}]/g, (c) => (c === '{' ? '(' : ')')), showUser: false });
    if (this.endedWhy !== undefined && !ANSWERED_AFTER_END.has(request.command)) return fail(`The debug session has ended: ${this.endedWhy}`);
    this.pending.add(request.seq, request.command, fail);
    let result: Promise<object | undefined>;
    try {
      result = (handler as (a: unknown) => Promise<object | undefined>)(request.arguments ?? {});
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(
      (body) => {
        if (!this.pending.settle(request.seq)) return;
        if (body) response.body = body;
        if (STEP_COMMANDS.has(request.command)) return this.heldStep.hold(() => this.sendResponse(response));
        this.sendResponse(response);
        if (request.command === 'disconnect') this.opts.onDisconnected?.();
      },
      (err: unknown) => {
        if (!this.pending.settle(request.seq)) return;
        const user = toUserError(err);
        const start = request.command === 'launch' || request.command === 'attach';
        if (start) this.feedback.log('error', user.message);
        this.sendErrorResponse(response, { id: user.code, format: user.message.replace(/[{}]/g, (c) => (c === '{' ? '(' : ')')), showUser: start || !this.launchFailed });
        if (request.command === 'disconnect') this.opts.onDisconnected?.();
      },
    );
  }

  /** The Debug Console, and the extension's log at `level`. */
  private log(text: string, category: 'console' | 'stderr' | 'important' = 'console', level: LogLevel = 'info'): void {
    this.sendEvent(new OutputEvent(text.endsWith('\n') ? text : text + '\n', category));
    this.feedback.log(level, text.trimEnd());
  }

  private async initialize(args: DebugProtocol.InitializeRequestArguments): Promise<DebugProtocol.Capabilities> {
    this.clientCaps = args;
    return capabilities();
  }

  private progress(message: string): void {
    this.feedback.progress(message);
  }

  private endProgress(): void {
    this.feedback.end();
  }

  private async launch(args: LaunchConfig): Promise<undefined> {
    this.startMode = 'launch';
    this.stopAtStart = args.stopOnEntry === true;
    if (args.sampleGuest === true && !args.kernel) this.feedback.state('building', 'sample guest');
    let initialized = false;
    try {
      this.starting = launchBackend(
        args,
        (m) => this.progress(m),
        (m, level) => this.log(m, 'console', level),
        (inst, cfg) => {
          this.teardown.adoptInstance(inst);
          this.feedback.state('booting', `QEMU pid ${inst.pid}`);
          this.log(`QEMU: ${shellQuote(inst.argv)}`);
          this.log(`Guest console log: ${cfg.consoleLog}`);
          inst.onStderr((line) => this.feedback.log('warn', `QEMU: ${line}`));
          const body: ConsoleEventBody = { log: cfg.consoleLog, logStart: inst.consoleLogStart, socket: inst.paths.consoleSocket, pid: inst.pid, monitor: inst.paths.monitorSocket };
          this.sendEvent(new Event(CONSOLE_EVENT, body));
          inst.on('exit', (info: ExitInfo) => {
            // An end the session began (disconnect, terminate) needs no telling.
            if (this.ended) return;
            const what = inst.describeExit(info);
            this.log(`${what}${inst.recentStderr ? ' ' + inst.recentStderr : ''}`, 'console', info.code === 0 ? 'info' : 'warn');
            this.sendEvent(new ExitedEvent(info.code ?? 0));
            void this.end(what);
          });
        },
        (indexing) => this.feedback.indexing(indexing),
        (source) => {
          // QEMU takes tens of ms to come up: the client sends its breakpoints meanwhile, and
          // their addresses are looked up while it does; they go in once the gdbstub answers.
          this.early = source;
          initialized = true;
          this.sendEvent(new InitializedEvent());
        },
      ).then((b) => {
        if (!this.teardown.adoptBackend(b)) throw errors.qemuExited(`the session ended while QEMU was starting (${this.endedWhy ?? 'ended'})`);
        this.backend = b;
        this.wireDebugger();
        return b;
      });
      await this.starting;
    } catch (e) {
      this.launchFailed = true;
      this.endProgress();
      throw e;
    } finally {
      this.starting = undefined;
      this.early = undefined;
    }
    this.progress('Waiting for breakpoints');
    if (!initialized) this.sendEvent(new InitializedEvent());
    return undefined;
  }

  private async attach(args: AttachConfig): Promise<undefined> {
    this.startMode = 'attach';
    this.stopAtStart = args.stopOnAttach === true;
    const b = await attachBackend(args, (m, level) => this.log(m, 'console', level));
    // The teardown detaches it (breakpoints and module hooks out, `D`) however the session ends.
    if (!this.teardown.adoptBackend(b)) throw errors.gdbstubConnect(args.target ?? 'the gdbstub', `the session ended while attaching (${this.endedWhy ?? 'ended'})`);
    this.backend = b;
    this.log(`Attached to ${args.target}.`);
    this.wireDebugger();
    this.sendEvent(new InitializedEvent());
    return undefined;
  }

  private wireDebugger(): void {
    const dbg = this.need().debugger;
    const files = this.need().symbolFiles;
    if (files) this.sendEvent(new Event(SYMBOLS_EVENT, files));
    this.taskThreads = new TaskThreads(this.need().tasksAsThreads === true);
    dbg.on('stopped', (ev: StopEvent) => {
      this.bootProgress?.stop();
      this.frames.reset();
      this.vars.reset();
      const e = new StoppedEvent(ev.reason, ev.threadId) as DebugProtocol.StoppedEvent;
      e.body.allThreadsStopped = true;
      e.body.description = ev.description;
      if (ev.hitBreakpointIds.length) e.body.hitBreakpointIds = ev.hitBreakpointIds;
      // The step's response, the progress's end, the status and the stop: one write, so the
      // client wakes once for all of them.
      inOneWrite(this.out, () => {
        this.heldStep.flush();
        this.endProgress();
        const fn = this.backend?.symbols?.locate(ev.pc)?.symbol.name;
        this.feedback.state('stopped', fn ?? `0x${ev.pc.toString(16)}`);
        this.sendEvent(e);
      });
    });
    dbg.on('breakpoint-changed', (r: BreakpointResult) => this.sendEvent(new BreakpointEvent('changed', functionBreakpoint(r) as DebugProtocol.Breakpoint)));
    dbg.on('warning', (m: string) => this.log(m, 'console', 'warn'));
    dbg.on('log', (m: string) => this.log(m));
    // An attach finds the kernel before these wires exist.
    for (const line of [dbg.kernel.base?.describe(), dbg.kernel.infoLine]) if (line) this.log(line);
    wireModuleEvents(dbg, (e) => this.sendEvent(e));
    // Logpoint messages: the Debug Console, as the user's own output.
    dbg.on('output', (m: string) => this.sendEvent(new OutputEvent(m.endsWith('\n') ? m : m + '\n', 'console')));
    dbg.on('running', () => {
      this.heldStep.flush();
      this.feedback.state('running');
      this.sendEvent(new ContinuedEvent(dbg.currentThread, true));
    });
    dbg.on('exited', (why: string) => {
      if (this.startMode === 'attach') this.log(`Debugging ended: ${why}.`);
      const inst = this.backend?.instance;
      if (!inst?.isRunning || this.ended) return void this.end(why);
      // QEMU's gdbstub goes as QEMU exits: let the exit, which says why, end the session.
      void Promise.race([inst.exited, new Promise((r) => setTimeout(r, 1000).unref())]).then(() => {
        if (!this.ended) this.log(`The gdbstub connection ended (${why}) while QEMU still ran; ending QEMU.`, 'console', 'warn');
        return this.end(why);
      });
    });
    watchStub(dbg, (m, level) => this.log(m, 'console', level), () => this.sendEvent(new Event('invalidated', { areas: ['stacks', 'variables'] })));
  }

  /**
   * The one way a session ends: requests still waiting are answered with `why`, everything
   * the session holds is released (teardown.ts), then the client hears 'terminated' unless
   * it asked for the end itself (disconnect, dispose).
   */
  private end(why = 'the debug session ended', how: QemuEnd = 'quit', announce = true): Promise<void> {
    if (this.ended) return this.teardown.run(how);
    this.ended = true;
    this.endedWhy = why;
    this.bootProgress?.stop();
    this.heldStep.flush();
    this.pending.failAll(`The debug session has ended: ${why}`);
    return this.teardown.run(how).then(() => {
      this.endProgress();
      if (!announce) return;
      this.feedback.state('exited');
      this.sendEvent(new TerminatedEvent());
    });
  }

  private need(): Backend {
    if (!this.backend) throw errors.unsupported('The session has not started: send launch or attach first.');
    return this.backend;
  }

  /** The backend for a configuration request, which may come while launch is still starting QEMU. */
  private async ready(): Promise<Backend> {
    if (!this.backend && this.starting) {
      try {
        await this.starting;
      } catch {
        throw errors.unsupported('The launch failed (see its error), so there is nothing to configure.');
      }
    }
    return this.need();
  }

  /** Look up early what a breakpoint request will resolve, while QEMU starts (the caches stay warm). */
  private lookAhead(fn: (s: SourceInfo) => unknown): void {
    if (this.backend || !this.early) return;
    try {
      void Promise.resolve(fn(this.early)).catch(() => undefined);
    } catch {
      // The real request reports it.
    }
  }

  private async configurationDone(): Promise<undefined> {
    const dbg = (await this.ready()).debugger;
    if (this.stopAtStart) await dbg.reportCurrent('entry');
    else {
      if (this.startMode === 'launch') this.progress('Booting the kernel');
      await dbg.continue();
      this.watchBoot();
    }
    return undefined;
  }

  /** Until the first stop: the console's last line as progress, and KVM's boot watchdog. */
  private watchBoot(): void {
    const b = this.backend;
    if (!b?.instance || !b.accel || !b.launch || this.ended) return;
    const inst = b.instance;
    const watch = new BootProgress(inst, b.launch.arch, b.accel, b.launch.qemuPath, {
      progress: (m) => this.progress(m),
      stalled: (m) => {
        this.log(m, 'stderr', 'error');
        void inst.stop().finally(() => this.end());
      },
    });
    this.bootProgress = watch;
    watch.start();
  }

  private async setFunctionBreakpoints(args: DebugProtocol.SetFunctionBreakpointsArguments): Promise<DebugProtocol.SetFunctionBreakpointsResponse['body']> {
    for (const bp of args.breakpoints) this.lookAhead((s) => readFunctionEntries(s, bp.name.trim()));
    const b = await this.ready();
    const results = await b.debugger.setFunctionBreakpoints(args.breakpoints.map((x) => ({ name: x.name, condition: x.condition, hitCondition: x.hitCondition })));
    return { breakpoints: results.map(functionBreakpoint) };
  }

  private async setBreakpoints(args: DebugProtocol.SetBreakpointsArguments): Promise<DebugProtocol.SetBreakpointsResponse['body']> {
    const file = args.source.path;
    const asked = args.breakpoints ?? (args.lines ?? []).map((line) => ({ line }));
    if (file) for (const bp of asked) this.lookAhead((s) => s.lineLocations(file, bp.line));
    const b = await this.ready();
    if (!file) {
      return { breakpoints: asked.map((bp) => ({ verified: false, line: bp.line, message: 'Breakpoints need a file on disk; this source has no path.' })) };
    }
    const results = await b.debugger.setSourceBreakpoints(
      file,
      asked.map((bp: DebugProtocol.SourceBreakpoint) => ({ line: bp.line, condition: bp.condition, hitCondition: bp.hitCondition, logMessage: bp.logMessage })),
    );
    return {
      breakpoints: results.map((r, i) => ({
        id: r.id,
        verified: r.verified,
        // The line actually used, in the client's file (the location may be an inlined copy's).
        line: r.verified && r.location ? r.location.line : asked[i].line,
        column: r.location?.column || undefined,
        source: args.source,
        message: r.message,
        instructionReference: r.address !== undefined ? `0x${r.address.toString(16)}` : undefined,
      })),
    };
  }

  private async threads(): Promise<DebugProtocol.ThreadsResponse['body']> {
    const dbg = this.backend?.debugger;
    const live = dbg && !dbg.isRunning && !dbg.isExited && !this.ended ? dbg : undefined;
    if (live) this.lastThreads = await live.target.threads();
    return { threads: await this.taskThreads.withVcpus(this.lastThreads, live) };
  }

  private async stackTrace(args: DebugProtocol.StackTraceArguments): Promise<DebugProtocol.StackTraceResponse['body']> {
    const b = this.need();
    if (b.debugger.isRunning) throw errors.targetRunning('show the call stack');
    return stackFrames(b.debugger, b.symbols, b.source, args, this.frames, {
      put: (key, text) => {
        let ref = this.rawSourceRefs.get(key);
        if (ref === undefined) {
          ref = this.rawSourceRefs.size + 1;
          this.rawSourceRefs.set(key, ref);
        }
        this.rawSources.set(ref, text);
        return ref;
      },
    });
  }

  private disassembly(): DisassemblyView {
    const b = this.need();
    this.disassemblyView ??= new DisassemblyView(b.debugger, b.symbols, b.source, b.disassemblySyntax);
    return this.disassemblyView;
  }

  private view(): VariablesView {
    this.variablesView ??= new VariablesView(this.need().debugger, this.vars);
    return this.variablesView;
  }

  /** The frame a request names, or the current vCPU's innermost frame. */
  private selector(frameId: number | undefined): FrameSelector {
    if (frameId === undefined) return { tid: this.need().debugger.currentThread, physical: 0, inlineDepth: 0 };
    const f = this.frames.get(frameId);
    if (!f) throw errors.unsupported(`Frame ${frameId} belongs to an earlier stop; refresh the call stack.`);
    return { tid: f.tid, physical: f.physical, inlineDepth: f.inlineDepth };
  }

  private async scopes(args: DebugProtocol.ScopesArguments): Promise<DebugProtocol.ScopesResponse['body']> {
    return { scopes: await this.view().scopes(this.selector(args.frameId)) };
  }

  private async variables(args: DebugProtocol.VariablesArguments): Promise<DebugProtocol.VariablesResponse['body']> {
    return { variables: await this.view().variables(args) };
  }

  private async evaluate(args: DebugProtocol.EvaluateArguments): Promise<DebugProtocol.EvaluateResponse['body']> {
    const dbg = this.need().debugger;
    if (dbg.isRunning) throw errors.targetRunning('evaluate expressions');
    return this.view().evaluate(args, this.selector(args.frameId));
  }

  private async setDataBreakpoints(args: DebugProtocol.SetDataBreakpointsArguments): Promise<DebugProtocol.SetDataBreakpointsResponse['body']> {
    const reqs = args.breakpoints.map((b) => {
      const d = parseDataId(b.dataId);
      return { address: d.address, size: d.size, label: d.label, access: (b.accessType ?? 'write') as WatchAccess, condition: b.condition, hitCondition: b.hitCondition };
    });
    const results = await (await this.ready()).debugger.setDataBreakpoints(reqs);
    return { breakpoints: results.map((r) => ({ id: r.id, verified: r.verified, message: r.message })) };
  }

  private async continue(): Promise<DebugProtocol.ContinueResponse['body']> {
    await this.need().debugger.continue();
    return { allThreadsContinued: true };
  }

  /**
   * Line steps by default; `instruction` granularity (the disassembly view) steps one
   * instruction for stepIn and, like gdb's nexti, over a call for next. Step Out leaves the
   * innermost frame, inlined or not, at any granularity.
   */
  private async step(threadId: number, kind: StepKind, granularity: DebugProtocol.SteppingGranularity | undefined): Promise<undefined> {
    TaskThreads.requireVcpu(threadId, 'step');
    const dbg = this.need().debugger;
    if (granularity === 'instruction' && kind !== 'out') await dbg.stepInstruction(threadId, kind === 'over');
    else await dbg.stepSource(threadId, kind);
    return undefined;
  }

  private async pause(): Promise<undefined> {
    await this.need().debugger.pause();
    return undefined;
  }

  private async writeMemory(args: DebugProtocol.WriteMemoryArguments): Promise<DebugProtocol.WriteMemoryResponse['body']> {
    const body = await writeMemory(this.need().debugger, args);
    // Values shown at this stop may have come from those bytes: ask the client to re-read.
    this.sendEvent(new Event('invalidated', { areas: ['variables'] }));
    return body;
  }

  /** The Registers view names a frame, or just a vCPU (its innermost frame). */
  private registerSelector(a: { frameId?: number; threadId?: number }): FrameSelector {
    if (a.frameId !== undefined) return this.selector(a.frameId);
    return { tid: a.threadId ?? this.need().debugger.currentThread, physical: 0, inlineDepth: 0 };
  }

  private async source(args: DebugProtocol.SourceArguments): Promise<DebugProtocol.SourceResponse['body']> {
    const ref = args.source?.sourceReference ?? args.sourceReference;
    const content = this.rawSources.get(ref);
    if (content === undefined) throw errors.unsupported(`No source with reference ${ref}.`);
    return { content, mimeType: 'text/plain' };
  }

  private async disconnect(args: DebugProtocol.DisconnectArguments): Promise<undefined> {
    const kill = args.terminateDebuggee ?? this.startMode === 'launch';
    await this.end('the client disconnected', kill ? 'quit' : 'leave', false);
    return undefined;
  }

  /**
   * The client dropped the session without a disconnect (VS Code disposes an in-process
   * adapter when its debug session is torn down): QEMU must not outlive it, and is killed
   * before this returns.
   */
  override dispose(): void {
    void this.end('the adapter was disposed', 'kill', false);
  }

  private async terminate(): Promise<undefined> {
    await this.end('the client terminated it');
    return undefined;
  }
}

/**
 * Read what placing a function breakpoint reads, into the caches: the address → unit index
 * and the line tables of the units holding its ELF symbols (a one-off lookup would read them
 * without keeping them, and the stop there needs them again).
 */
function readFunctionEntries(s: SourceInfo, name: string): void {
  const dwarf = s.dwarf;
  if (!dwarf) return;
  dwarf.indexAddresses();
  for (const sym of s.symbols.lookup(name)) {
    const cu = sym.type === 'func' && sym.value !== 0n ? dwarf.unitForAddress(sym.value) : undefined;
    if (cu) dwarf.lineIndex(cu);
  }
}

function functionBreakpoint(r: BreakpointResult): DebugProtocol.Breakpoint {
  return {
    id: r.id,
    verified: r.verified,
    message: r.message,
    instructionReference: r.address !== undefined ? `0x${r.address.toString(16)}` : undefined,
    source: r.location ? { name: r.location.path.split('/').pop(), path: r.location.path } : undefined,
    line: r.location?.line,
  };
}
