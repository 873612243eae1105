/** Driving dist/adapter.js with a DebugClient, as VS Code would. */
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { DebugProtocol } from '@vscode/debugprotocol';
import * as fs from 'node:fs';
import { READY_LINE } from '../../src/guest/initramfs';
import { GuestConsole, waitForConsole } from '../../src/qemu/console';
import { ADAPTER, artifact } from './env';

export interface ConsoleInfo {
  log: string;
  logStart?: number;
  socket: string;
  pid: number;
}

export class TestSession {
  readonly dc: DebugClient;
  readonly output: string[] = [];
  console?: ConsoleInfo;
  readonly consoleEvent: Promise<ConsoleInfo>;

  /** `env` is added to the adapter process's environment. */
  constructor(readonly ctx: Mocha.Context, env: Record<string, string> = {}) {
    this.dc = new DebugClient('node', ADAPTER, 'qemu-kernel', { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } }, true);
    this.dc.defaultTimeout = 120_000;
    this.dc.on('output', (e: DebugProtocol.OutputEvent) => this.output.push(e.body.output));
    this.consoleEvent = new Promise((resolve) =>
      this.dc.on('qemuKernel.console', (e: DebugProtocol.Event) => {
        this.console = e.body as ConsoleInfo;
        resolve(this.console);
      }),
    );
  }

  async start(): Promise<void> {
    await this.dc.start();
    await this.dc.initializeRequest({ adapterID: 'qemu-kernel', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
  }

  /**
   * Per-test launch defaults: TCG, wire log and console log under test-results/, and the
   * kernel at its link addresses (`"kaslr": false`), which the oracles (nm, gdb without -o)
   * print; the KASLR tests pass `"kaslr": "auto"`, the default a user gets.
   */
  launchArgs(extra: Record<string, unknown>): DebugProtocol.LaunchRequestArguments {
    return { rspLog: artifact(this.ctx, 'rsp.log'), consoleLog: artifact(this.ctx, 'console.log'), accel: 'tcg', kaslr: false, ...extra } as DebugProtocol.LaunchRequestArguments;
  }

  /** launch → initialized → function breakpoints → configurationDone → first stop. */
  async launchToBreak(args: DebugProtocol.LaunchRequestArguments, functions: string[]): Promise<{ stop: DebugProtocol.StoppedEvent; bps: DebugProtocol.Breakpoint[] }> {
    if (fs.existsSync(String((args as { consoleLog?: string }).consoleLog))) fs.rmSync(String((args as { consoleLog?: string }).consoleLog));
    const initialized = this.dc.waitForEvent('initialized');
    await this.dc.launchRequest(args);
    await initialized;
    const bps = (await this.dc.setFunctionBreakpointsRequest({ breakpoints: functions.map((name) => ({ name })) })).body.breakpoints;
    const stopped = this.dc.waitForEvent('stopped');
    await this.dc.configurationDoneRequest();
    return { stop: (await stopped) as DebugProtocol.StoppedEvent, bps };
  }

  /** The guest's console once its init says it is ready (the guest must be running), started for input. */
  async readyConsole(): Promise<{ con: GuestConsole; log: string }> {
    const info = await this.consoleEvent;
    await waitForConsole(info.log, READY_LINE, 300_000, info.logStart);
    const con = new GuestConsole(info.log, info.socket);
    con.start();
    if (!(await con.ready())) throw new Error('the guest console is not ready');
    return { con, log: info.log };
  }

  async topFrame(threadId: number): Promise<DebugProtocol.StackFrame> {
    const st = await this.dc.stackTraceRequest({ threadId });
    return st.body.stackFrames[0];
  }

  async registers(frameId: number): Promise<Map<string, string>> {
    const scopes = await this.dc.scopesRequest({ frameId });
    const regs = scopes.body.scopes.find((s) => s.name === 'Registers');
    if (!regs) throw new Error('no Registers scope');
    const vars = await this.dc.variablesRequest({ variablesReference: regs.variablesReference });
    return new Map(vars.body.variables.map((v) => [v.name, v.value]));
  }

  async stop(): Promise<void> {
    await this.dc.disconnectRequest({ terminateDebuggee: true }).catch(() => undefined);
    await this.dc.stop().catch(() => undefined);
  }
}
