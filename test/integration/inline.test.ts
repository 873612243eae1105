/**
 * The adapter inside the calling process, as the extension host runs it by default
 * (dist/adapter-inline.js behind vscode.DebugAdapterInlineImplementation): DAP messages as
 * objects, QEMU a child of this process, and a session dropped without `disconnect` (VS Code
 * disposes the adapter) takes QEMU with it.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { artifact, processAlive, REPO, requireBuilt, sampleGuest, waitForExit } from '../support/env';

/** What VS Code's DebugAdapterInlineImplementation uses of an adapter. */
interface InlineAdapter {
  handleMessage(message: DebugProtocol.ProtocolMessage): void;
  onDidSendMessage(listener: (message: DebugProtocol.ProtocolMessage) => void): { dispose(): void };
  dispose(): void;
}

class ObjectClient {
  private seq = 1;
  private readonly replies = new Map<number, (r: DebugProtocol.Response) => void>();
  private readonly waiters: { event: string; resolve: (e: DebugProtocol.Event) => void }[] = [];

  constructor(readonly adapter: InlineAdapter) {
    adapter.onDidSendMessage((m) => {
      // As the extension host does: the client sees a copy, later.
      const msg = JSON.parse(JSON.stringify(m)) as DebugProtocol.ProtocolMessage;
      queueMicrotask(() => {
        if (msg.type === 'response') this.replies.get((msg as DebugProtocol.Response).request_seq)?.(msg as DebugProtocol.Response);
        if (msg.type !== 'event') return;
        const ev = msg as DebugProtocol.Event;
        const at = this.waiters.findIndex((w) => w.event === ev.event);
        if (at >= 0) this.waiters.splice(at, 1)[0].resolve(ev);
      });
    });
  }

  async request<T>(command: string, args?: object): Promise<T> {
    const seq = this.seq++;
    const res = await new Promise<DebugProtocol.Response>((resolve) => {
      this.replies.set(seq, resolve);
      this.adapter.handleMessage({ seq, type: 'request', command, arguments: args } as DebugProtocol.Request);
    });
    assert.equal(res.success, true, `${command} failed: ${res.message ?? ''}`);
    return res.body as T;
  }

  event<T extends DebugProtocol.Event>(event: string, ms = 120_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${event}' event within ${ms / 1000} s`)), ms);
      this.waiters.push({
        event,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e as T);
        },
      });
    });
  }
}

function parentPid(pid: number): number {
  // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('the adapter in the calling process (extension host mode)', function () {
  this.timeout(180_000);

  it('boots under it, stops at kernel_clone, steps, and dispose() without disconnect ends QEMU', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    const { createSession } = require(path.join(REPO, 'dist', 'adapter-inline.js')) as { createSession(): InlineAdapter };
    const dc = new ObjectClient(createSession());
    let qemuPid: number | undefined;
    try {
      await dc.request('initialize', { adapterID: 'qemu-kernel', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
      const initialized = dc.event('initialized');
      const consoleEv = dc.event<DebugProtocol.Event>('qemuKernel.console');
      await dc.request('launch', { kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, accel: 'tcg', consoleLog: artifact(this, 'console.log'), rspLog: artifact(this, 'rsp.log') });
      await initialized;
      qemuPid = ((await consoleEv).body as { pid: number }).pid;
      assert.equal(parentPid(qemuPid), process.pid, 'QEMU is not a child of the process the adapter runs in');
      await dc.request('setFunctionBreakpoints', { breakpoints: [{ name: 'kernel_clone' }] });
      const stopped = dc.event<DebugProtocol.StoppedEvent>('stopped');
      await dc.request('configurationDone');
      const stop = await stopped;
      assert.equal(stop.body.reason, 'breakpoint');
      const threadId = stop.body.threadId ?? 1;
      const top = async (): Promise<DebugProtocol.StackFrame> => (await dc.request<DebugProtocol.StackTraceResponse['body']>('stackTrace', { threadId, levels: 1 })).stackFrames[0];
      const before = await top();
      assert.match(before.name, /^kernel_clone\b/);
      const stepped = dc.event<DebugProtocol.StoppedEvent>('stopped');
      await dc.request('next', { threadId });
      assert.equal((await stepped).body.reason, 'step');
      const after = await top();
      assert.match(after.name, /^kernel_clone\b/);
      assert.ok(after.line > before.line, `next went from line ${before.line} to ${after.line}`);
    } finally {
      dc.adapter.dispose();
    }
    assert.ok(qemuPid !== undefined);
    assert.equal(await waitForExit(qemuPid, 10_000), true, `QEMU ${qemuPid} outlived the disposed adapter`);
    assert.equal(processAlive(qemuPid), false);
  });
});
