/**
 * The adapter in this process (dist/adapter-inline.js), as VS Code's extension host runs it:
 * DAP messages as objects, QEMU a child of this process. What a session holds (QEMU, the
 * symbol index worker, the vmlinux's file descriptor, the socket directory) is visible from
 * here, so a test can check that none of it outlives the session.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { DebugProtocol } from '@vscode/debugprotocol';
import type { GuestPaths } from '../../src/guest/build';
import { artifact, processAlive, REPO } from './env';

/** What VS Code's DebugAdapterInlineImplementation uses of an adapter. */
export interface InlineAdapter {
  handleMessage(message: DebugProtocol.ProtocolMessage): void;
  onDidSendMessage(listener: (message: DebugProtocol.ProtocolMessage) => void): { dispose(): void };
  dispose(): void;
}

interface AdapterModules {
  createSession(): InlineAdapter;
  /** Index worker threads alive in this process (dist/adapter-lib.js's count). */
  liveIndexWorkers(): number;
}

export function adapterModules(): AdapterModules {
  const inline = require(path.join(REPO, 'dist', 'adapter-inline.js')) as { createSession(): InlineAdapter };
  // The same module instance adapter-inline.js loaded: the count is of its workers.
  const lib = require(path.join(REPO, 'dist', 'adapter-lib.js')) as { liveIndexWorkers?: () => number };
  assert.ok(lib.liveIndexWorkers, 'dist/adapter-lib.js does not export liveIndexWorkers: rebuild dist/');
  return { createSession: inline.createSession, liveIndexWorkers: lib.liveIndexWorkers };
}

export interface Answer {
  res: DebugProtocol.Response;
  /** Milliseconds from the request to its response. */
  ms: number;
  /** When the response came (Date.now()). */
  at: number;
}

export class InlineClient {
  private seq = 1;
  private readonly replies = new Map<number, (r: DebugProtocol.Response) => void>();
  private readonly waiters: { event: string; resolve: (e: DebugProtocol.Event) => void }[] = [];
  readonly events: DebugProtocol.Event[] = [];

  constructor(readonly adapter: InlineAdapter) {
    adapter.onDidSendMessage((m) => {
      // As the extension host does: the client sees a copy, later.
      const msg = JSON.parse(JSON.stringify(m)) as DebugProtocol.ProtocolMessage;
      queueMicrotask(() => {
        if (msg.type === 'response') {
          const r = msg as DebugProtocol.Response;
          this.replies.get(r.request_seq)?.(r);
          this.replies.delete(r.request_seq);
        }
        if (msg.type !== 'event') return;
        const ev = msg as DebugProtocol.Event;
        this.events.push(ev);
        for (let at = this.waiters.findIndex((w) => w.event === ev.event); at >= 0; at = this.waiters.findIndex((w) => w.event === ev.event)) this.waiters.splice(at, 1)[0].resolve(ev);
      });
    });
  }

  /** The session's Debug Console output so far, as one string. */
  get output(): string {
    return this.events
      .filter((e) => e.event === 'output')
      .map((e) => (e.body as { output: string }).output)
      .join('');
  }

  /** Send a request; resolves with its response, success or not. */
  send(command: string, args?: object): Promise<Answer> {
    const seq = this.seq++;
    const t0 = Date.now();
    return new Promise((resolve) => {
      this.replies.set(seq, (res) => resolve({ res, ms: Date.now() - t0, at: Date.now() }));
      this.adapter.handleMessage({ seq, type: 'request', command, arguments: args } as DebugProtocol.Request);
    });
  }

  async request<T>(command: string, args?: object): Promise<T> {
    const { res } = await this.send(command, args);
    assert.equal(res.success, true, `${command} failed: ${res.message ?? ''}`);
    return res.body as T;
  }

  /** The next `event`; with `past`, one already received counts too. */
  event<T extends DebugProtocol.Event>(event: string, ms = 120_000, past = false): Promise<T> {
    const seen = past ? this.events.find((e) => e.event === event) : undefined;
    if (seen) return Promise.resolve(seen as T);
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

export interface Launched {
  dc: InlineClient;
  pid: number;
  runDir: string;
  monitor: string;
  consoleSocket: string;
  consoleLog: string;
  consoleLogStart: number;
  stop: DebugProtocol.StoppedEvent;
}

/** initialize → launch → breakpoints → configurationDone → the first stop (kernel_clone, or the entry). */
export async function launchInline(ctx: Mocha.Context, mods: AdapterModules, g: GuestPaths, breakAt: string[] | 'entry', extra: Record<string, unknown> = {}): Promise<Launched> {
  const dc = new InlineClient(mods.createSession());
  await dc.request('initialize', { adapterID: 'qemu-kernel', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path', supportsProgressReporting: false });
  const initialized = dc.event('initialized');
  const consoleEv = dc.event<DebugProtocol.Event>('qemuKernel.console');
  const consoleLog = artifact(ctx, 'console.log');
  fs.rmSync(consoleLog, { force: true });
  // At link addresses, as the oracles (nm, gdb without -o) print them.
  const args = { kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, accel: 'tcg', kaslr: false, consoleLog, rspLog: artifact(ctx, 'rsp.log'), stopOnEntry: breakAt === 'entry', ...extra };
  const launched = dc.request('launch', args);
  await initialized;
  await dc.request('setFunctionBreakpoints', { breakpoints: breakAt === 'entry' ? [] : breakAt.map((name) => ({ name })) });
  const stopped = dc.event<DebugProtocol.StoppedEvent>('stopped');
  await launched;
  await dc.request('configurationDone');
  const info = (await consoleEv).body as { pid: number; socket: string; monitor: string; log: string; logStart: number };
  const stop = await stopped;
  return { dc, pid: info.pid, runDir: path.dirname(info.socket), monitor: info.monitor, consoleSocket: info.socket, consoleLog: info.log, consoleLogStart: info.logStart, stop };
}

/** Descriptors this process holds on `file` (the vmlinux the adapter opened). */
export function fdsOn(file: string): number {
  const real = fs.realpathSync(file);
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === real) n++;
    } catch {
      // Closed while we looked (the readdir's own descriptor).
    }
  }
  return n;
}

export interface Baseline {
  workers: number;
  fds: number;
}

export function baseline(mods: AdapterModules, vmlinux: string): Baseline {
  return { workers: mods.liveIndexWorkers(), fds: fdsOn(vmlinux) };
}

/** What of a session is still there after `ms`: [] when QEMU, its worker, its fd and its socket dir are all gone. */
export async function leftovers(l: Launched, mods: AdapterModules, vmlinux: string, before: Baseline, ms = 5000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left: string[] = [];
    if (processAlive(l.pid)) left.push(`QEMU ${l.pid} is alive`);
    if (mods.liveIndexWorkers() > before.workers) left.push(`${mods.liveIndexWorkers() - before.workers} index worker(s) alive`);
    if (fdsOn(vmlinux) > before.fds) left.push(`${fdsOn(vmlinux) - before.fds} descriptor(s) open on the vmlinux`);
    if (fs.existsSync(l.runDir)) left.push(`socket dir ${l.runDir} exists`);
    if (!left.length || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Wait until `cond` holds, or fail after `ms` naming `what`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Make sure a test's QEMU is gone, whatever the test did. */
export function reap(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

/** Type a command into QEMU's human monitor, as a user in the monitor terminal would. */
export function monitorCommand(socketPath: string, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath);
    s.on('error', reject);
    let text = '';
    let sent = false;
    s.on('data', (d) => {
      text += d.toString('latin1');
      // The prompt: the monitor takes a line now.
      if (sent || !text.includes('(qemu)')) return;
      sent = true;
      s.write(`${command}\r`);
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 200);
    });
  });
}

/** Live processes (not zombies) whose command line holds `marker` (e.g. a QEMU given -name marker). */
export function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (!fs.readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(marker)) continue;
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') found.push(Number(name));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}
