// Ours' side of the module rows (M1a, M1b, M2): sessions driven through the DAP, run inside
// the module rows' stand-in extension host (bench/lib/modhost.mjs), as P3–P6b run theirs in
// bench/lib/host.mjs: the adapter loaded from dist/adapter-inline.js and fed messages as
// objects, one host process for all of the rows' sessions.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openSession, initialize, nextEvent, endSession } from './dap.mjs';
import { ensureNoQemu, peakRssMb } from './proc.mjs';
import { ConsoleTail, LOADED_LINE, READY_LINE, consoleInput, insmodCycle, phases, shellReady } from './modules.mjs';

let host = null;

/** One session of `opts.kind` ('m1a', 'm1b', 'm2') in the module rows' host; its result comes back over IPC. */
export function modSession(opts) {
  host ??= fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'modhost.mjs'), [], { serialization: 'advanced', execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const h = host;
  return new Promise((resolve, reject) => {
    const onExit = (code, signal) => {
      host = null;
      reject(new Error(`the module rows' extension host exited (code ${code}, signal ${signal}) during a session`));
    };
    h.once('exit', onExit);
    h.once('message', (m) => {
      h.off('exit', onExit);
      if (m.ok) resolve(m.r);
      else reject(new Error(m.error));
    });
    h.send(opts);
  });
}

/** Ends the host; resolves once it has exited (with it, any connection its sessions left open). */
export function closeModHost() {
  const h = host;
  host = null;
  if (!h || h.exitCode !== null || h.signalCode !== null) return Promise.resolve();
  const gone = new Promise((r) => h.once('exit', r));
  h.disconnect();
  return gone;
}

const gdbSocketOf = (argv) => argv.map((a) => /id=qkd-gdb,path=([^,]+)/.exec(a)?.[1]).find(Boolean);

/** The launch as F5 sends it for the sample guest under TCG, with a console log in `dir`. */
function launchArgs(guest, dir, extra = {}) {
  return { kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd, accel: 'tcg', memory: '512M', kaslr: false, consoleLog: path.join(dir, 'ours-console.log'), ...extra };
}

/**
 * M1a, ours: a launch with `rspLog`, a line breakpoint in qkd_sample.c set while the module
 * is not loaded (pending), then `cycles` insmod/rmmod cycles typed into the console once the
 * shell is up. No stop may reach the client (the hooks' stops are not shown). Returns the
 * wire log, for the bench to read the pauses from, and what the client saw.
 */
export async function oursModuleLoads({ repo, guest, mods, dir, cycles, line }) {
  const rspLog = path.join(dir, 'ours-rsp.log');
  const output = [];
  const seen = { stopped: 0, verified: 0, pending: 0, modulesNew: 0, modulesRemoved: 0 };
  let dc;
  let runDir = null;
  let input = null;
  let tail = null;
  const r = {};
  try {
    ({ dc } = openSession(repo, output));
    dc.on('stopped', () => seen.stopped++);
    dc.on('breakpoint', (e) => (e.body.breakpoint.verified ? seen.verified++ : seen.pending++));
    dc.on('module', (e) => (e.body.reason === 'new' ? seen.modulesNew++ : e.body.reason === 'removed' ? seen.modulesRemoved++ : 0));
    const consoleEvent = nextEvent(dc, 'qemuKernel.console');
    await initialize(dc);
    const initialized = nextEvent(dc, 'initialized');
    const args = launchArgs(guest, dir, { rspLog });
    const launched = dc.launchRequest(args);
    await Promise.race([initialized, launched.then(() => initialized)]);
    const bp = (await dc.setBreakpointsRequest({ source: { path: mods.sampleSource }, breakpoints: [{ line }] })).body.breakpoints[0];
    if (bp.verified || !/pending/.test(bp.message ?? '')) throw new Error(`the breakpoint at qkd_sample.c:${line} is not pending before the module loads: ${JSON.stringify(bp)}`);
    await dc.configurationDoneRequest();
    await launched;
    r.argv = (await dc.customRequest('qemuKernel.commandLine')).body.argv;
    const gdbSock = gdbSocketOf(r.argv);
    runDir = gdbSock ? path.dirname(gdbSock) : null;
    const info = (await consoleEvent).ev.body;
    tail = new ConsoleTail(args.consoleLog, 20);
    await shellReady(tail);
    input = await consoleInput(info.socket);
    const ko = `${mods.guestDir}/${path.basename(mods.sample)}`;
    for (let i = 0; i < cycles; i++) {
      const before = seen.verified;
      await insmodCycle(input, tail, ko, 'qkd_sample', i);
      if (seen.verified === before) throw new Error(`insmod ${i}: the pending breakpoint was not verified`);
    }
    if (seen.stopped) throw new Error(`${seen.stopped} stop(s) reached the client during the cycles: the hooks' stops must not show`);
    r.seen = seen;
    r.rssMb = peakRssMb(process.pid);
    // Adapter's own account of each load (its output: "Module … loaded at …: symbols from … (N ms)").
    r.adapterLoadMs = [...output.join('').matchAll(/Module qkd_sample loaded at .*\(([\d.]+) ms\)/g)].map((m) => Number(m[1]));
    await dc.disconnectRequest({ terminateDebuggee: true });
    r.wire = fs.readFileSync(rspLog, 'latin1');
  } catch (e) {
    e.message = `ours (M1a): ${e.message}\nadapter output (last lines):\n${output.join('').split('\n').slice(-15).join('\n')}`;
    await endSession(dc);
    throw e;
  } finally {
    input?.close();
    tail?.close();
    if (runDir) await ensureNoQemu(runDir, 'ours (M1a)');
  }
  return r;
}

/**
 * M1b, ours: the clock starts at the launch request (QEMU is spawned a few ms later), with
 * `append` naming the modules init loads; `configurationDone` with no breakpoints, and the
 * clock stops when the bench sees the ready line on the console log (polled every 5 ms, as
 * on the other two sides). Then every module must be in the `modules` response with its
 * symbols.
 */
export async function oursBoot({ repo, guest, dir, append, names, rspLog, pendingLine }) {
  const output = [];
  let dc;
  let runDir = null;
  let tail = null;
  const r = {};
  try {
    ({ dc } = openSession(repo, output));
    let stops = 0;
    dc.on('stopped', () => stops++);
    await initialize(dc);
    const initialized = nextEvent(dc, 'initialized');
    const args = launchArgs(guest, dir, { append, ...(rspLog ? { rspLog } : {}) });
    tail = new ConsoleTail(args.consoleLog, 5, LOADED_LINE);
    const t0 = performance.now();
    const launched = dc.launchRequest(args);
    await Promise.race([initialized, launched.then(() => initialized)]);
    // A line breakpoint in a module that never loads keeps the load hooks in for the whole boot.
    if (pendingLine) {
      const [bp] = (await dc.setBreakpointsRequest({ source: { path: pendingLine.path }, breakpoints: [{ line: pendingLine.line }] })).body.breakpoints;
      if (bp.verified) throw new Error(`the breakpoint at ${pendingLine.path}:${pendingLine.line} is not pending: ${JSON.stringify(bp)}`);
    }
    await dc.configurationDoneRequest();
    await launched;
    const ready = await tail.waitFor(READY_LINE, { from: 0, timeoutMs: 180000 });
    r.s = (ready.t - t0) / 1000;
    r.phases = phases(tail, names, t0, ready.t);
    r.argv = (await dc.customRequest('qemuKernel.commandLine')).body.argv;
    const gdbSock = gdbSocketOf(r.argv);
    runDir = gdbSock ? path.dirname(gdbSock) : null;
    if (stops) throw new Error(`${stops} stop(s) reached the client during the boot`);
    const text = tail.read();
    const missing = names.filter((n) => !text.includes(`${n}: loaded`));
    if (missing.length) throw new Error(`the guest did not load ${missing.join(', ')}`);
    // No breakpoint waits for a module, so no hook stopped the boot: the adapter reads the
    // module list when it is asked for (or at the next stop), and links what it finds then.
    const tAsk = performance.now();
    const mods = (await dc.customRequest('modules', {})).body.modules;
    r.modulesRequestMs = performance.now() - tAsk;
    const withSymbols = names.filter((n) => mods.some((m) => m.name === n && m.symbolStatus === 'Symbols loaded'));
    if (withSymbols.length !== names.length) throw new Error(`${withSymbols.length} of ${names.length} modules have symbols after the boot: ${JSON.stringify(mods.map((m) => [m.name, m.symbolStatus]))}`);
    r.adapterLoadMs = [...output.join('').matchAll(/Module \w+ loaded at .*\(([\d.]+) ms\)/g)].map((m) => Number(m[1]));
    if (pendingLine && r.adapterLoadMs.length !== names.length) throw new Error(`the hooks saw ${r.adapterLoadMs.length} of ${names.length} loads with a breakpoint pending`);
    r.rssMb = peakRssMb(process.pid);
    await dc.disconnectRequest({ terminateDebuggee: true });
  } catch (e) {
    e.message = `ours (M1b): ${e.message}\nadapter output (last lines):\n${output.join('').split('\n').slice(-15).join('\n')}`;
    await endSession(dc);
    throw e;
  } finally {
    tail?.close();
    if (runDir) await ensureNoQemu(runDir, 'ours (M1b)');
  }
  return r;
}

/**
 * M2, ours: attach to the running guest's gdbstub. The clock starts at the attach request;
 * a `modules` request goes out as soon as the attach response is in (the adapter reads the
 * module list during attach), and the clock stops at its response, which must list every
 * module with its symbols. `cold_s` starts before the adapter is loaded, as P3's clock does
 * (gdb's `whole_s` likewise includes gdb's start and its reading of vmlinux). Then
 * configurationDone and a disconnect that leaves the guest running.
 */
export async function oursAttach({ repo, guest, sock, names, rspLog }) {
  const output = [];
  let dc;
  const r = {};
  try {
    let tLoad;
    ({ dc, t0: tLoad } = openSession(repo, output));
    await initialize(dc);
    const t0 = performance.now();
    await dc.attachRequest({ target: sock, vmlinux: guest.vmlinux, arch: 'x86_64', ...(rspLog ? { rspLog } : {}) });
    const tAttach = performance.now();
    const mods = (await dc.customRequest('modules', {})).body.modules;
    const t1 = performance.now();
    r.s = (t1 - t0) / 1000;
    r.attach_s = (tAttach - t0) / 1000;
    r.cold_s = (t1 - tLoad) / 1000;
    const withSymbols = names.filter((n) => mods.some((m) => m.name === n && m.symbolStatus === 'Symbols loaded'));
    if (withSymbols.length !== names.length) throw new Error(`the modules response after attach has ${withSymbols.length} of ${names.length} modules with symbols: ${JSON.stringify(mods.map((m) => [m.name, m.symbolStatus]))}`);
    r.modules = mods.length;
    await dc.configurationDoneRequest();
    r.rssMb = peakRssMb(process.pid);
    await dc.disconnectRequest({ terminateDebuggee: false });
  } catch (e) {
    e.message = `ours (M2): ${e.message}\nadapter output (last lines):\n${output.join('').split('\n').slice(-15).join('\n')}`;
    await endSession(dc);
    throw e;
  }
  return r;
}
