// Our side of one guest session, as VS Code runs it on F5: the adapter inside the process
// that hosts the client's end (the extension host; here bench/lib/host.mjs, one per session),
// fed DAP messages as objects. A DAP client drives it and times P3, P6, P4, P5 and P6b.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import { peakRssMb, ensureNoQemu } from './proc.mjs';
import { elfSymbolAddress } from './elfsym.mjs';

const require = createRequire(import.meta.url);
const { DebugClient } = require('@vscode/debugadapter-testsupport');

export const MIB = 1 << 20;

/** The next event of a kind, stamped when it reaches the client (not when a caller awaits it). */
export function nextEvent(dc, kind, timeoutMs = 180000) {
  const p = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${kind}' event within ${timeoutMs / 1000} s`)), timeoutMs);
    // A session that failed elsewhere must neither wait for this timer nor crash on it.
    timer.unref();
    dc.once(kind, (ev) => {
      clearTimeout(timer);
      resolve({ ev, t: performance.now() });
    });
  });
  p.catch(() => {});
  return p;
}

/**
 * What VS Code asks after a `stopped` event: threads, the top frame, its scopes, then the
 * variables of every scope not marked expensive (in parallel, as the Variables view expands
 * them). Returns when the Arguments scope arrived and when the last response did.
 */
export async function inspectTop(dc, threadId, expect = 'kernel_clone') {
  await dc.threadsRequest();
  const frame = (await dc.stackTraceRequest({ threadId, startFrame: 0, levels: 1 })).body.stackFrames[0];
  const scopes = (await dc.scopesRequest({ frameId: frame.id })).body.scopes;
  let tArgs = null;
  let args = null;
  await Promise.all(
    scopes
      .filter((s) => !s.expensive)
      .map(async (s) => {
        const r = await dc.variablesRequest({ variablesReference: s.variablesReference });
        if (s.name === 'Arguments') {
          tArgs = performance.now();
          args = r.body.variables;
        }
      }),
  );
  const tEnd = performance.now();
  if (frame.name !== expect) throw new Error(`ours stopped in ${frame.name}, not ${expect}`);
  if (!args?.some((v) => v.name === 'args')) throw new Error(`ours: no \`args\` in the Arguments scope (scopes: ${scopes.map((s) => s.name).join(', ')})`);
  return { frame, tArgs, tEnd };
}

/**
 * `_text` as the debugger sees it; when ours' evaluate can't name it (a NOTYPE linker
 * symbol), from vmlinux's symbol table, and the caller reports which it was.
 */
async function textAddress(dc, frameId, vmlinux) {
  try {
    const ev = await dc.evaluateRequest({ expression: '(unsigned long)&_text', frameId, context: 'watch' });
    const m = /^(0x[0-9a-f]+|\d+)/i.exec(ev.body.result.trim());
    if (m) return { address: BigInt(m[1]), from: 'evaluate' };
  } catch {
    // falls through to the symbol table
  }
  return { address: elfSymbolAddress(vmlinux, '_text'), from: 'elf' };
}

/**
 * A DebugClient wired to an in-process adapter the way VS Code's DebugAdapterInlineImplementation
 * wires it: requests go in through handleMessage and replies come out of onDidSendMessage, as
 * objects. Each message is copied through JSON and handed over on a later microtask, as the
 * extension host's messages to the workbench are serialized and delivered asynchronously.
 */
export function inlineClient(session) {
  const toClient = new PassThrough();
  const fromClient = new PassThrough();
  session.onDidSendMessage((m) => {
    const json = JSON.stringify(m);
    queueMicrotask(() => toClient.write(`Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`));
  });
  let buf = Buffer.alloc(0);
  fromClient.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const h = buf.indexOf('\r\n\r\n');
      if (h < 0) return;
      const len = Number(/Content-Length: (\d+)/i.exec(buf.subarray(0, h).toString())?.[1]);
      if (buf.length < h + 4 + len) return;
      const msg = JSON.parse(buf.subarray(h + 4, h + 4 + len).toString());
      buf = buf.subarray(h + 4 + len);
      session.handleMessage(msg);
    }
  });
  const dc = new DebugClient('unused', 'unused', 'qemu-kernel');
  dc.connect(toClient, fromClient);
  return dc;
}

let host = null;

/**
 * One boot under the adapter, run in the bench's stand-in extension host (bench/lib/host.mjs):
 * one process for every session of the bench, as an extension host outlives its sessions,
 * that loads the adapter anew for each. The figures and the session's peak RSS come back over IPC.
 * `opts.kind` picks what the host runs: absent, hostedSession (P3–P6b); 'soak', soakSession.
 */
export function oursSession(opts) {
  host ??= fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'host.mjs'), [], { serialization: 'advanced', execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const h = host;
  return new Promise((resolve, reject) => {
    const onExit = (code, signal) => {
      host = null;
      reject(new Error(`the bench's extension host exited (code ${code}, signal ${signal}) during a session`));
    };
    h.once('exit', onExit);
    h.once('message', (m) => {
      h.off('exit', onExit);
      if (m.ok) resolve(m.r.mem ? { ...m.r, mem: Buffer.from(m.r.mem) } : m.r);
      else reject(new Error(m.error));
    });
    h.send(opts);
  });
}

/** Ends the stand-in extension host once the bench's sessions are done. */
export function closeHost() {
  host?.disconnect();
  host = null;
}

/**
 * Loads the adapter as the extension does on F5 (dist/adapter-inline.js, both bundles dropped
 * from require's cache first, so each session compiles the adapter anew, as the first session
 * of a window does) and connects a DAP client to a new session. `t0` is taken before the load,
 * after the last session's garbage is collected and the peak RSS reset.
 */
export function openSession(repo, output) {
  for (const f of ['adapter-inline.js', 'adapter-lib.js']) delete require.cache[path.join(repo, 'dist', f)];
  // This session's peak RSS, not an earlier one's: their garbage collected, then VmHWM reset (5).
  globalThis.gc?.();
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const t0 = performance.now();
  const { createSession } = require(path.join(repo, 'dist', 'adapter-inline.js'));
  const dc = inlineClient(createSession());
  dc.defaultTimeout = 180000;
  dc.on('output', (ev) => {
    output.push(ev.body.output);
    // A long session (the soak) keeps only the tail, so the client's log isn't a leak of its own.
    if (output.length > 200) output.splice(0, output.length - 100);
  });
  return { dc, t0 };
}

/** disconnect (terminating the guest) after a failure, bounded; errors ignored. */
export async function endSession(dc, ms = 10000) {
  if (!dc) return;
  let timer;
  await Promise.race([dc.disconnectRequest({ terminateDebuggee: true }).catch(() => {}), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** The initialize request as VS Code sends it. */
export function initialize(dc) {
  return dc.initializeRequest({
    adapterID: 'qemu-kernel',
    clientID: 'vscode',
    linesStartAt1: true,
    columnsStartAt1: true,
    pathFormat: 'path',
    supportsVariableType: true,
    supportsMemoryReferences: true,
    supportsInvalidatedEvent: true,
  });
}

/**
 * Inside the host: load the adapter as the extension does on F5 (dist/adapter-inline.js, both
 * bundles dropped from require's cache first, so each session compiles the adapter anew, as
 * the first session of a window does) and drive one session. The clock starts before the load.
 */
export async function hostedSession({ repo, guest, dir, steps }) {
  const consoleLog = path.join(dir, 'ours-console.log');
  const output = [];
  let dc;
  let runDir = null;
  const r = {};
  try {
    let t0;
    ({ dc, t0 } = openSession(repo, output));
    await initialize(dc);
    const initialized = nextEvent(dc, 'initialized');
    const firstStop = nextEvent(dc, 'stopped');
    // VS Code doesn't wait for the launch response before configuring breakpoints.
    const launched = dc.launchRequest({ kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd, accel: 'tcg', memory: '512M', kaslr: false, consoleLog });
    // A failed launch ends the wait at once instead of at the timeout.
    await Promise.race([initialized, launched.then(() => initialized)]);
    await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] });
    await dc.configurationDoneRequest();
    await launched;
    const stop = await firstStop;
    const threadId = stop.ev.body.threadId;
    const v = await inspectTop(dc, threadId);
    r.p3 = (v.tArgs - t0) / 1000;
    r.toStop = (stop.t - t0) / 1000;
    r.p6 = (v.tEnd - stop.t) / 1000;

    const cmd = (await dc.customRequest('qemuKernel.commandLine')).body.argv;
    r.argv = cmd;
    const gdbSock = cmd.map((a) => /id=qkd-gdb,path=([^,]+)/.exec(a)?.[1]).find(Boolean);
    runDir = gdbSock ? path.dirname(gdbSock) : null;

    r.lines = [v.frame.line];
    r.p4 = [];
    let frame = v.frame;
    for (let k = 0; k < steps; k++) {
      const stopped = nextEvent(dc, 'stopped');
      const t = performance.now();
      await dc.nextRequest({ threadId });
      const s = await stopped;
      r.p4.push((s.t - t) / 1000);
      frame = (await dc.stackTraceRequest({ threadId: s.ev.body.threadId, startFrame: 0, levels: 1 })).body.stackFrames[0];
      r.lines.push(frame.line);
    }

    r.textAddr = await textAddress(dc, frame.id, guest.vmlinux);
    r.textFrom = r.textAddr.from;
    r.textAddr = r.textAddr.address;
    const t5 = performance.now();
    const mem = await dc.customRequest('readMemory', { memoryReference: `0x${r.textAddr.toString(16)}`, count: MIB });
    r.p5 = (performance.now() - t5) / 1000;
    r.mem = Buffer.from(mem.body.data ?? '', 'base64');
    if (r.mem.length !== MIB) throw new Error(`ours: readMemory returned ${r.mem.length} bytes of ${MIB} (unreadableBytes ${mem.body.unreadableBytes})`);

    const second = nextEvent(dc, 'stopped');
    await dc.continueRequest({ threadId });
    const s2 = await second;
    const v2 = await inspectTop(dc, s2.ev.body.threadId);
    r.p6b = (v2.tEnd - s2.t) / 1000;

    r.rssMb = peakRssMb(process.pid);
    await dc.disconnectRequest({ terminateDebuggee: true });
  } catch (e) {
    e.message = `ours: ${e.message}\nadapter output (last lines):\n${output.join('').split('\n').slice(-15).join('\n')}`;
    // A failed session still ends its QEMU: the host outlives it, and its exit would leave QEMU behind.
    await endSession(dc);
    throw e;
  } finally {
    fs.rmSync(consoleLog, { force: true });
  }
  if (runDir) await ensureNoQemu(runDir, 'ours');
  return r;
}
