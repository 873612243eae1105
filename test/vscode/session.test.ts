/** A real debug session of the sample guest, started and inspected through the vscode API. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DebugProtocol } from '@vscode/debugprotocol';
import * as vscode from 'vscode';
import { CONSOLE_EVENT } from '../../src/adapter/events';
import type { RegistersBody } from '../../src/adapter/registers';
import { RESULTS, sampleGuest, waitForExit } from '../support/env';
import { nextEvent, sampleWorkspace, withTimeout } from './util';

/** What the adapter sends, seen through a tracker as VS Code sees it. */
class Watcher {
  readonly stopped: Promise<DebugProtocol.StoppedEvent>;
  readonly console: Promise<{ pid: number }>;
  /** The launch request as the adapter received it, after every provider ran. */
  launch?: Record<string, unknown>;
  private readonly reg: vscode.Disposable;
  private onStopped!: (e: DebugProtocol.StoppedEvent) => void;
  private onConsole!: (e: { pid: number }) => void;

  constructor(readonly name: string) {
    this.stopped = new Promise((r) => (this.onStopped = r));
    this.console = new Promise((r) => (this.onConsole = r));
    this.reg = vscode.debug.registerDebugAdapterTrackerFactory('qemu-kernel', {
      createDebugAdapterTracker: (session) =>
        session.name !== name
          ? undefined
          : {
              onWillReceiveMessage: (m: DebugProtocol.ProtocolMessage) => {
                const req = m as DebugProtocol.Request;
                if (req.type === 'request' && req.command === 'launch') this.launch = req.arguments as Record<string, unknown>;
              },
              onDidSendMessage: (m: DebugProtocol.ProtocolMessage) => {
                if (m.type !== 'event') return;
                const ev = m as DebugProtocol.Event;
                if (ev.event === 'stopped') this.onStopped(ev as DebugProtocol.StoppedEvent);
                if (ev.event === CONSOLE_EVENT) this.onConsole(ev.body as { pid: number });
              },
            },
    });
  }

  dispose(): void {
    this.reg.dispose();
  }
}

/** The parent of a process, from /proc/PID/stat ("pid (comm) state ppid ...", comm may hold spaces). */
function parentPid(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('a debug session of the sample guest', function () {
  this.timeout(300000);
  const name = 'Sample guest (extension host test)';
  let watcher: Watcher | undefined;
  let breakpoint: vscode.FunctionBreakpoint | undefined;

  /** F5 on the sample guest with breakAt kernel_clone; returns once QEMU has started. */
  async function startSample(w: Watcher, consoleLog: string): Promise<{ session: vscode.DebugSession; pid: number }> {
    const started = await vscode.debug.startDebugging(sampleWorkspace(), {
      type: 'qemu-kernel',
      request: 'launch',
      name,
      sampleGuest: true,
      breakAt: ['kernel_clone'],
      accel: 'tcg',
      consoleLog: path.join(RESULTS, 'e2e', 'exthost', consoleLog),
    });
    assert.equal(started, true, 'startDebugging returned false');
    const session = vscode.debug.activeDebugSession;
    assert.ok(session && session.name === name, 'no active qemu-kernel session after startDebugging');
    const { pid } = await withTimeout(w.console, 120000, 'the guest console event (QEMU started)');
    return { session, pid };
  }

  afterEach(async () => {
    const s = vscode.debug.activeDebugSession;
    if (s?.name === name) await vscode.debug.stopDebugging(s);
    watcher?.dispose();
    if (breakpoint) vscode.debug.removeBreakpoints([breakpoint]);
  });

  it('breakAt adds a kernel_clone breakpoint that stops there, where args->fn is kernel_init; the Registers view reads that frame; Stop ends QEMU', async function () {
    sampleGuest(this);
    watcher = new Watcher(name);
    const before = vscode.debug.breakpoints.filter((b) => b instanceof vscode.FunctionBreakpoint && b.functionName === 'kernel_clone');
    vscode.debug.removeBreakpoints(before);
    const frameShown = nextEvent(
      vscode.debug.onDidChangeActiveStackItem,
      (item) => (item instanceof vscode.DebugStackFrame && item.session.name === name ? item : undefined),
      240000,
      'the Call Stack to focus a frame',
    );
    const { session, pid } = await startSample(watcher, 'console.log');
    // By default the adapter runs in this extension host, so it started QEMU itself.
    assert.equal(parentPid(pid), process.pid, `QEMU's parent is ${parentPid(pid)}, not the extension host ${process.pid}`);
    breakpoint = vscode.debug.breakpoints.find((b): b is vscode.FunctionBreakpoint => b instanceof vscode.FunctionBreakpoint && b.functionName === 'kernel_clone');
    assert.ok(breakpoint, 'breakAt put a kernel_clone function breakpoint in the Breakpoints view');
    // The configuration provider filled the disassembly syntax from the setting and kept the workspace.
    assert.equal(watcher.launch?.disassemblySyntax, vscode.workspace.getConfiguration('qemuKernel').get('disassemblySyntax'));
    assert.equal(watcher.launch?.cwd, sampleWorkspace()?.uri.fsPath);

    const stop = await withTimeout(watcher.stopped, 240000, "the adapter's stopped event");
    assert.equal(stop.body.reason, 'breakpoint', `stopped for ${stop.body.reason}: ${stop.body.description ?? ''}`);
    const threadId = stop.body.threadId;
    assert.ok(threadId !== undefined);
    const frame = await frameShown;
    assert.equal(frame.threadId, threadId, 'VS Code focused another thread than the one that stopped');

    const trace = (await session.customRequest('stackTrace', { threadId, startFrame: 0, levels: 20 })) as DebugProtocol.StackTraceResponse['body'];
    const top = trace.stackFrames[0];
    assert.match(top.name, /^kernel_clone\b/, `top frame is ${top.name}`);
    assert.ok(
      trace.stackFrames.some((f) => /^rest_init\b/.test(f.name)),
      `no rest_init caller in ${trace.stackFrames.map((f) => f.name).join(' < ')}`,
    );

    // In the frame VS Code focused for the user: kernel_clone's own parameter must resolve there.
    const ev = (await session.customRequest('evaluate', { expression: 'args->fn', frameId: frame.frameId, context: 'watch' })) as DebugProtocol.EvaluateResponse['body'];
    assert.match(ev.result, /<kernel_init>/, `args->fn = ${ev.result}`);

    // What the Registers view asks for the focused frame: rip is that frame's pc, CR0.PG is on.
    const regs = (await session.customRequest('qemuKernel.registers', { frameId: frame.frameId, threadId })) as RegistersBody;
    const all = new Map(regs.groups.flatMap((g) => g.registers.map((r) => [r.name, r] as const)));
    assert.equal(BigInt(all.get('rip')?.value ?? '-1'), BigInt(top.instructionPointerReference ?? '-2'));
    assert.equal(all.get('cr0')?.fields?.find((f) => f.name === 'PG')?.value, '1');

    const ended = nextEvent(vscode.debug.onDidTerminateDebugSession, (s) => (s.id === session.id ? s : undefined), 60000, 'the session to end');
    await vscode.debug.stopDebugging(session);
    await ended;
    assert.equal(await waitForExit(pid, 15000), true, `QEMU (pid ${pid}) outlived its session`);
  });

  it('qemuKernel.adapterHost "process" runs the adapter in a process of its own, which stops at kernel_clone and ends QEMU on Stop', async function () {
    sampleGuest(this);
    const config = vscode.workspace.getConfiguration('qemuKernel');
    await config.update('adapterHost', 'process', vscode.ConfigurationTarget.Global);
    try {
      watcher = new Watcher(name);
      const { session, pid } = await startSample(watcher, 'console-process.log');
      breakpoint = vscode.debug.breakpoints.find((b): b is vscode.FunctionBreakpoint => b instanceof vscode.FunctionBreakpoint && b.functionName === 'kernel_clone');
      const adapter = parentPid(pid);
      assert.notEqual(adapter, process.pid, 'QEMU was started by the extension host, not by an adapter process');
      assert.match(fs.readFileSync(`/proc/${adapter}/cmdline`, 'utf8'), /dist\/adapter\.js/, "QEMU's parent is not dist/adapter.js");
      const stop = await withTimeout(watcher.stopped, 240000, "the adapter's stopped event");
      assert.equal(stop.body.reason, 'breakpoint');
      const trace = (await session.customRequest('stackTrace', { threadId: stop.body.threadId, startFrame: 0, levels: 1 })) as DebugProtocol.StackTraceResponse['body'];
      assert.match(trace.stackFrames[0].name, /^kernel_clone\b/);
      const ended = nextEvent(vscode.debug.onDidTerminateDebugSession, (s) => (s.id === session.id ? s : undefined), 60000, 'the session to end');
      await vscode.debug.stopDebugging(session);
      await ended;
      assert.equal(await waitForExit(pid, 15000), true, `QEMU (pid ${pid}) outlived its session`);
    } finally {
      await config.update('adapterHost', undefined, vscode.ConfigurationTarget.Global);
    }
  });
});
