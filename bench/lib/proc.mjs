// Process helpers shared by the measures: whole-process timing, peak RSS, leftovers.
import { spawnSync, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export const GNU_TIME = '/usr/bin/time';

/**
 * Runs a command to completion under GNU time. The wall time is our own clock around the
 * spawn (GNU time's %e has 10 ms steps, too coarse beside a 50 ms process start); the time
 * binary's own fork+exec is in it on both sides and cancels out in the net figures. Peak RSS
 * is GNU time's %M, the child's VmHWM.
 */
export function timedProcess(cmd, args, opts = {}) {
  const t0 = performance.now();
  const r = spawnSync(GNU_TIME, ['-f', '@@time %e %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const s = (performance.now() - t0) / 1000;
  const m = /@@time ([\d.]+) (\d+)\s*$/.exec(r.stderr ?? '');
  if (r.error) throw r.error;
  if (r.status !== 0 || !m) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${(r.stderr ?? '').slice(-2000)}`);
  return { s, mb: Number(m[2]) / 1024, stdout: r.stdout, stderr: r.stderr.slice(0, m.index) };
}

/** Peak resident set of a live process, in MB (VmHWM covers every thread, workers included). */
export function peakRssMb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** Pids of processes whose command line contains `pattern` (pgrep -f), minus our own. */
export function pgrep(pattern) {
  const r = spawnSync('pgrep', ['-f', '--', pattern], { encoding: 'utf8' });
  return r.stdout.split('\n').map(Number).filter((p) => p && p !== process.pid);
}

/**
 * QEMU must be gone after each run on both sides: a leftover would slow every later run and
 * means someone's teardown is broken. Waits a little for an orderly exit, then kills the
 * leftovers and reports them.
 */
export async function ensureNoQemu(pattern, who) {
  for (let i = 0; i < 100; i++) {
    if (!pgrep(pattern).some(isQemu)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const left = pgrep(pattern).filter(isQemu);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (left.length) throw new Error(`${who}: QEMU (pid ${left.join(', ')}) was still running 5 s after the session ended`);
}

function isQemu(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => /qemu-system-/.test(a));
  } catch {
    return false;
  }
}

export function commandExists(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export function firstLine(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim();
  } catch {
    return 'unknown';
  }
}

export const say = (msg) => process.stderr.write(`bench: ${msg}\n`);

/**
 * The environment our node tools run in as users start them: `qkd`'s shebang and the
 * extension's language client drop NODE_EXTRA_CA_CERTS (they make no TLS connection, and
 * node reads that whole certificate bundle as it starts: 80 ms on a machine that points it at
 * the system store). Runs that spawn `node` directly use this to measure the same thing.
 */
export function toolEnv() {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}
