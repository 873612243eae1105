// The soak: one long session of ours, run inside the bench's stand-in extension host
// (bench/lib/host.mjs) through the DAP like the timed guest rows. The guest's shell is made
// to fork in a loop (`while :; do ( : ); done`, typed into the serial console), so a
// kernel_clone function breakpoint is hit over and over; each hit is followed by step-overs
// (`next`), and after every stop the client asks what VS Code asks (threads, the top frame,
// its scopes and their variables). What it watches: the host's heap and RSS from after the
// warm-up to the end, and whether steps get slower as the session ages.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { openSession, initialize, nextEvent, inspectTop, endSession } from './dap.mjs';
import { ensureNoQemu, peakRssMb, say } from './proc.mjs';
import { median } from './stats.mjs';

// src/guest/initramfs.ts's READY_LINE: init prints it just before it starts the shell.
const READY_LINE = 'qkd-guest: ready';
// Each iteration forks a subshell: the shell's fork → kernel_clone, one hit per iteration.
const LOOP = 'while :; do ( : ); done\n';

const mb = (b) => Math.round((b / 2 ** 20) * 10) / 10;

/** heapUsed after a full collection (the host runs with --expose-gc), and RSS. */
function memory() {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers, gc: typeof globalThis.gc === 'function' };
}

/**
 * With QKD_BENCH_SOAK_SNAPSHOTS=DIR, a V8 heap snapshot of the host at the baseline and at the
 * end (DIR/soak-warm.heapsnapshot, DIR/soak-end.heapsnapshot), for finding what grew: load
 * both in Chrome DevTools' Memory tab and compare. Off by default (each is tens of MB).
 */
function snapshot(tag) {
  const dir = process.env.QKD_BENCH_SOAK_SNAPSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  say(`soak: heap snapshot ${v8.writeHeapSnapshot(path.join(dir, `soak-${tag}.heapsnapshot`))}`);
}

/**
 * Types the loop into the guest's console once init has said it is ready and the shell has
 * printed its prompt (or 3 s after the ready line, if no prompt is recognised). The console
 * socket's output is read and dropped so QEMU never blocks writing to it.
 */
function typeLoopWhenReady(consoleInfo, consoleLog) {
  let sock = null;
  let timer = null;
  let typed = false;
  let readyAt = null;
  const done = new Promise((resolve, reject) => {
    timer = setInterval(() => {
      let text = '';
      try {
        text = fs.readFileSync(consoleLog, 'latin1');
      } catch {
        return;
      }
      const at = text.indexOf(READY_LINE);
      if (at < 0) return;
      readyAt ??= performance.now();
      // busybox sh's prompt as root: "/ # ", "~ # ".
      const prompt = /# $/.test(text.slice(at));
      if (!prompt && performance.now() - readyAt < 3000) return;
      clearInterval(timer);
      timer = null;
      sock = net.createConnection({ path: consoleInfo.socket });
      sock.on('data', () => undefined);
      sock.on('error', (e) => reject(new Error(`guest console socket: ${e.message}`)));
      sock.once('connect', () => {
        sock.write(LOOP);
        typed = true;
        resolve(performance.now());
      });
    }, 100);
  });
  done.catch(() => {});
  return {
    done,
    get typed() {
      return typed;
    },
    close() {
      if (timer) clearInterval(timer);
      sock?.destroy();
    },
  };
}

/**
 * events: breakpoint hits + steps counted after the warm-up (default 10,000). stepsPerHit: the
 * `next`s after each hit (3: the lines P4 steps through). warmupCycles: hit + steps cycles of
 * the shell loop before the baseline is taken; then the session sits at a stop for settleMs
 * (work the adapter defers to a quiet moment, such as the function index, gets done) before
 * the first memory reading.
 */
export async function soakSession({ repo, guest, dir, events = 10000, stepsPerHit = 3, warmupCycles = 25, settleMs = 3000, eventTimeoutMs = 60000 }) {
  const consoleLog = path.join(dir, 'soak-console.log');
  const output = [];
  let dc;
  let runDir = null;
  let typer = null;
  const r = { events: 0, hits: 0, steps: 0, stepsPerHit, warmupCycles, lineMismatches: 0 };
  try {
    ({ dc } = openSession(repo, output));
    const consoleEvent = nextEvent(dc, 'qemuKernel.console');
    await initialize(dc);
    const initialized = nextEvent(dc, 'initialized');
    let stopped = nextEvent(dc, 'stopped');
    const launched = dc.launchRequest({ kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd, accel: 'tcg', memory: '512M', kaslr: false, consoleLog });
    await Promise.race([initialized, launched.then(() => initialized)]);
    await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] });
    await dc.configurationDoneRequest();
    await launched;
    const cmd = (await dc.customRequest('qemuKernel.commandLine')).body.argv;
    const gdbSock = cmd.map((a) => /id=qkd-gdb,path=([^,]+)/.exec(a)?.[1]).find(Boolean);
    runDir = gdbSock ? path.dirname(gdbSock) : null;
    typer = typeLoopWhenReady((await consoleEvent).ev.body, consoleLog);

    const tStart = performance.now();
    let threadId;
    let stop = await stopped;
    // One event: `next` or `continue`, to the stopped event (the figure), then what VS Code
    // asks at a stop. Returns the time and the top frame's line.
    const show = async (s) => {
      threadId = s.ev.body.threadId;
      return (await inspectTop(dc, threadId)).frame.line;
    };
    const go = async (request) => {
      stopped = nextEvent(dc, 'stopped', eventTimeoutMs);
      const t = performance.now();
      await request({ threadId });
      const s = await stopped;
      const dt = (s.t - t) / 1000;
      if (s.ev.body.reason === 'exception' || s.ev.body.reason === 'pause') throw new Error(`stopped for ${s.ev.body.reason}: ${s.ev.body.description ?? ''}`);
      return { dt, line: await show(s) };
    };
    const cycle = async () => {
      const lines = [];
      const steps = [];
      for (let k = 0; k < stepsPerHit; k++) {
        const x = await go((a) => dc.nextRequest(a));
        steps.push(x.dt);
        lines.push(x.line);
      }
      const h = await go((a) => dc.continueRequest(a));
      return { steps, hit: h.dt, lines: [...lines, h.line] };
    };

    // Boot: every kernel_clone hit until the loop is typed in, then the warm-up cycles.
    let bootHits = 0;
    await show(stop);
    let typerError = null;
    typer.done.catch((e) => (typerError = e));
    while (!typer.typed) {
      if (typerError) throw typerError;
      await go((a) => dc.continueRequest(a));
      bootHits++;
      if (performance.now() - tStart > 300000) throw new Error(`the guest's shell was not ready within 300 s (${bootHits} kernel_clone hits)`);
    }
    r.bootHits = bootHits;
    r.bootS = (performance.now() - tStart) / 1000;
    say(`soak: the guest's shell loops forking after ${bootHits} kernel_clone hits (${r.bootS.toFixed(1)} s); ${warmupCycles} warm-up cycles`);
    let expectLines = null;
    for (let i = 0; i < warmupCycles; i++) expectLines = (await cycle()).lines;
    await new Promise((res) => setTimeout(res, settleMs));
    r.warm = memory();
    snapshot('warm');
    r.trend = [{ events: 0, heap_mb: mb(r.warm.heapUsed), rss_mb: mb(r.warm.rss) }];
    r.expectLines = expectLines;

    const stepTimes = [];
    const hitTimes = [];
    const tCount = performance.now();
    let nextMark = 1000;
    while (r.events < events) {
      const c = await cycle();
      stepTimes.push(...c.steps);
      hitTimes.push(c.hit);
      r.steps += c.steps.length;
      r.hits += 1;
      r.events += c.steps.length + 1;
      if (c.lines.join() !== expectLines.join()) r.lineMismatches++;
      if (r.events >= nextMark) {
        const m = memory();
        r.trend.push({ events: r.events, heap_mb: mb(m.heapUsed), rss_mb: mb(m.rss) });
        say(`soak: ${r.events}/${events} events (${r.hits} hits, ${r.steps} steps), ${((performance.now() - tCount) / 1000).toFixed(0)} s; heap ${mb(m.heapUsed)} MB, RSS ${mb(m.rss)} MB; last 100 steps' median ${(median(stepTimes.slice(-100)) * 1000).toFixed(2)} ms`);
        nextMark += 1000;
      }
    }
    r.countedS = (performance.now() - tCount) / 1000;
    r.end = memory();
    snapshot('end');
    r.heapGrowth = (r.end.heapUsed - r.warm.heapUsed) / r.warm.heapUsed;
    r.rssGrowth = (r.end.rss - r.warm.rss) / r.warm.rss;
    r.stepFirst100 = median(stepTimes.slice(0, 100));
    r.stepLast100 = median(stepTimes.slice(-100));
    r.hitFirst100 = median(hitTimes.slice(0, 100));
    r.hitLast100 = median(hitTimes.slice(-100));
    r.stepMedian = median(stepTimes);
    r.hitMedian = median(hitTimes);
    r.stepSamples = { first: stepTimes.slice(0, 100), last: stepTimes.slice(-100) };
    // VmHWM since the session began (openSession reset it): the host's whole peak, every thread.
    r.peakRssMb = peakRssMb(process.pid);
    await dc.disconnectRequest({ terminateDebuggee: true });
  } catch (e) {
    e.message = `ours (soak, after ${r.events} counted events): ${e.message}\nadapter output (last lines):\n${output.join('').split('\n').slice(-15).join('\n')}`;
    await endSession(dc);
    throw e;
  } finally {
    typer?.close();
    fs.rmSync(consoleLog, { force: true });
    if (runDir) await ensureNoQemu(runDir, 'ours (soak)');
  }
  return r;
}
