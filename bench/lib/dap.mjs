// Our side of one guest session: a DAP client drives dist/adapter.js the way VS Code does
// on F5, and times P3, P6, P4, P5 and P6b along the way.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { peakRssMb, ensureNoQemu } from './proc.mjs';
import { elfSymbolAddress } from './elfsym.mjs';

const require = createRequire(import.meta.url);
const { DebugClient } = require('@vscode/debugadapter-testsupport');

export const MIB = 1 << 20;

/** The next event of a kind, stamped when it reaches the client (not when a caller awaits it). */
function nextEvent(dc, kind, timeoutMs = 180000) {
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
async function inspectTop(dc, threadId) {
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
  if (frame.name !== 'kernel_clone') throw new Error(`ours stopped in ${frame.name}, not kernel_clone`);
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
 * One boot under the adapter. `adapterFlags` are what the extension passes to node (VS Code
 * spawns the adapter with them); NODE_OPTIONS carries them since DebugClient spawns
 * `runtime executable` with nothing between.
 */
export async function oursSession({ repo, guest, dir, steps, adapterFlags }) {
  const consoleLog = path.join(dir, 'ours-console.log');
  const env = { ...process.env, NODE_OPTIONS: [process.env.NODE_OPTIONS, ...adapterFlags].filter(Boolean).join(' ') };
  const output = [];
  let dc;
  let runDir = null;
  const r = {};
  try {
    const t0 = performance.now();
    dc = new DebugClient(process.execPath, path.join(repo, 'dist', 'adapter.js'), 'qemu-kernel', { env });
    dc.defaultTimeout = 180000;
    await dc.start();
    const pid = dc._adapterProcess.pid;
    dc.on('output', (ev) => output.push(ev.body.output));
    await dc.initializeRequest({
      adapterID: 'qemu-kernel',
      clientID: 'vscode',
      linesStartAt1: true,
      columnsStartAt1: true,
      pathFormat: 'path',
      supportsVariableType: true,
      supportsMemoryReferences: true,
      supportsInvalidatedEvent: true,
    });
    const initialized = nextEvent(dc, 'initialized');
    const firstStop = nextEvent(dc, 'stopped');
    // VS Code doesn't wait for the launch response before configuring breakpoints.
    const launched = dc.launchRequest({ kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd, accel: 'tcg', memory: '512M', consoleLog });
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

    r.rssMb = peakRssMb(pid);
    await dc.disconnectRequest({ terminateDebuggee: true });
  } catch (e) {
    e.message = `ours: ${e.message}\nadapter output (last lines):\n${output.join('').split('\n').slice(-15).join('\n')}`;
    throw e;
  } finally {
    await dc?.stop();
    fs.rmSync(consoleLog, { force: true });
  }
  if (runDir) await ensureNoQemu(runDir, 'ours');
  return r;
}
