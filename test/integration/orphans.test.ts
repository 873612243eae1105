/**
 * Orphans: the adapter in its own process (dist/adapter.js over stdio, as VS Code's "process"
 * adapter host and the bench run it) is SIGKILLed at seeded random moments, during launch and
 * while the guest runs. A SIGKILLed adapter runs no code of its own on the way out, so only
 * `setpriv --pdeathsig` and the guard against a parent that died before it was armed (see
 * src/qemu/ownership.ts) stand between its QEMU and an orphan. After each trial no process
 * of that trial may be left; the socket directories the dead adapters could not remove are
 * swept by the next start.
 *
 * Each trial draws when to kill (seeded): early in the launch (0-400 ms after the adapter's
 * spawn: Node starting, the vmlinux being read), as QEMU is spawned (0-50 ms after the
 * 'initialized' event, which goes out as QEMU.start begins: setpriv, the guard, QEMU's exec,
 * QMP, the gdbstub), or while the guest boots (0-1000 ms after configurationDone's answer).
 * QKD_ORPHAN_TRIALS (default 20) and QKD_ORPHAN_SEED change the run; each trial's outcome
 * goes to test-results/orphans.json.
 */
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readOwner, sweepStaleRunDirs, UNFINISHED_STALE_MS } from '../../src/qemu/ownership';
import { ADAPTER, RESULTS, requireBuilt, sampleGuest } from '../support/env';
import { processesWith } from '../support/inproc';

const TRIALS = Number(process.env.QKD_ORPHAN_TRIALS ?? 20);
const SEED = Number(process.env.QKD_ORPHAN_SEED ?? 0x5eed);
type Moment = 'launch' | 'spawn' | 'run';
/** The kill comes up to this long after the moment's start. */
const MOMENT_SPREAD_MS: Record<Moment, number> = { launch: 400, spawn: 50, run: 1000 };
/** pdeathsig is delivered as the adapter dies; this only allows for a loaded machine. */
const GONE_WITHIN_MS = 3000;

/** A small seeded PRNG (mulberry32): the same seed gives the same kill moments. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** DAP over a child's stdio, just enough to drive a launch. */
class StdioDap {
  private seq = 1;
  private buf = Buffer.alloc(0);
  private readonly waiting = new Map<number, (ok: boolean) => void>();
  readonly seen = new Set<string>();
  private readonly onEvent = new Map<string, Array<() => void>>();

  constructor(private readonly proc: ChildProcess) {
    proc.stdin?.on('error', () => undefined);
    proc.stdout?.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const head = this.buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const len = Number(/Content-Length: (\d+)/i.exec(this.buf.subarray(0, head).toString())?.[1]);
        if (this.buf.length < head + 4 + len) return;
        const msg = JSON.parse(this.buf.subarray(head + 4, head + 4 + len).toString()) as { type: string; request_seq?: number; success?: boolean; event?: string };
        this.buf = this.buf.subarray(head + 4 + len);
        if (msg.type === 'response') this.waiting.get(msg.request_seq as number)?.(msg.success === true);
        if (msg.type === 'event' && msg.event) {
          this.seen.add(msg.event);
          for (const f of this.onEvent.get(msg.event)?.splice(0) ?? []) f();
        }
      }
    });
  }

  request(command: string, args?: object): Promise<boolean> {
    const seq = this.seq++;
    const body = JSON.stringify({ seq, type: 'request', command, arguments: args });
    this.proc.stdin?.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    return new Promise((resolve) => this.waiting.set(seq, resolve));
  }

  event(name: string): Promise<void> {
    if (this.seen.has(name)) return Promise.resolve();
    return new Promise((resolve) => this.onEvent.set(name, [...(this.onEvent.get(name) ?? []), resolve]));
  }
}

interface Trial {
  trial: number;
  moment: Moment;
  /** From the adapter's spawn to the kill. */
  killAtMs: number;
  /** How far the launch had got when the adapter was killed. */
  phase: 'starting' | 'launching' | 'qemu started' | 'running';
  /** Processes of this trial (setpriv, the guard, QEMU) alive just before the kill. */
  before: number;
  /** Processes of this trial alive GONE_WITHIN_MS after the kill. */
  left: number;
}

describe('no orphaned QEMU when the adapter process is SIGKILLed', function () {
  it(`${TRIALS} trials, kills at seeded random moments of launch and run`, async function () {
    this.timeout(TRIALS * 15_000 + 60_000);
    requireBuilt(this);
    const g = sampleGuest(this);
    const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'orphans-rt-'));
    const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'orphans-log-'));
    fs.chmodSync(runtime, 0o700);
    const rand = prng(SEED);
    const trials: Trial[] = [];
    let unowned = 0;
    try {
      for (let i = 0; i < TRIALS; i++) {
        const marker = `qkd-orphan-${SEED.toString(16)}-${process.pid}-${i}`;
        const moment = (['launch', 'spawn', 'run'] as const)[Math.floor(rand() * 3)];
        const delay = rand() * MOMENT_SPREAD_MS[moment];
        const t0 = Date.now();
        // XDG_RUNTIME_DIR: this run's socket dirs, apart from any other session's.
        const proc = spawn(process.execPath, [ADAPTER], { env: { ...process.env, XDG_RUNTIME_DIR: runtime }, stdio: ['pipe', 'pipe', 'ignore'] });
        const exited = new Promise((r) => proc.once('exit', r));
        const dap = new StdioDap(proc);
        let phase: Trial['phase'] = 'starting';
        void dap.event('qemuKernel.console').then(() => phase === 'launching' && (phase = 'qemu started'));
        let running: () => void = () => undefined;
        const started = { launch: Promise.resolve(), spawn: dap.event('initialized'), run: new Promise<void>((r) => (running = r)) }[moment];
        void (async () => {
          await dap.request('initialize', { adapterID: 'qemu-kernel', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
          phase = 'launching';
          const launched = dap.request('launch', {
            kernel: g.kernel,
            vmlinux: g.vmlinux,
            initrd: g.initrd,
            accel: 'tcg',
            consoleLog: path.join(logs, `console-${i}.log`),
            qemuArgs: ['-name', marker],
          });
          await dap.event('initialized');
          await dap.request('setFunctionBreakpoints', { breakpoints: [] });
          await launched;
          if (!(await dap.request('configurationDone'))) return;
          phase = 'running';
          running();
        })();
        // A launch that never gets there is killed all the same.
        await Promise.race([started, new Promise((r) => setTimeout(r, 20_000))]);
        await new Promise((r) => setTimeout(r, delay));
        const killAtMs = Date.now() - t0;
        const before = processesWith(marker).length;
        proc.kill('SIGKILL');
        await exited;
        let left = processesWith(marker);
        for (const deadline = Date.now() + GONE_WITHIN_MS; left.length && Date.now() < deadline; left = processesWith(marker)) await new Promise((r) => setTimeout(r, 50));
        trials.push({ trial: i, moment, killAtMs, phase, before, left: left.length });
        // A survivor fails the test below; it must not run on into the next trial.
        for (const pid of left) process.kill(pid, 'SIGKILL');
      }
      // Every adapter died with its socket dir in place; each start swept its predecessors',
      // and one more sweep (what the next start does) takes the rest. A dir named for good
      // always has its record; one killed while being made (qkd-new-*) goes a minute later,
      // so the sweep is asked as if it ran then.
      for (const name of fs.readdirSync(runtime)) if (/^qkd-[A-Za-z0-9]{6}$/.test(name) && !readOwner(path.join(runtime, name))) unowned++;
      sweepStaleRunDirs(runtime, Date.now() + UNFINISHED_STALE_MS + 1000);
      const remaining = fs.readdirSync(runtime);
      const phases: Record<string, number> = {};
      for (const t of trials) phases[t.phase] = (phases[t.phase] ?? 0) + 1;
      const withQemu = trials.filter((t) => t.before > 0).length;
      const left = trials.reduce((n, t) => n + t.left, 0);
      const summary = { trials: trials.length, seed: SEED, phases, killedWithQemuAlive: withQemu, qemuLeft: left, socketDirsWithoutOwner: unowned, socketDirsAfterSweep: remaining.length };
      fs.mkdirSync(RESULTS, { recursive: true });
      fs.writeFileSync(path.join(RESULTS, 'orphans.json'), JSON.stringify({ summary, trials }, null, 2));
      // eslint-disable-next-line no-console
      console.log(`      ${JSON.stringify(summary)}`);
      assert.deepEqual(
        trials.filter((t) => t.left > 0),
        [],
        'processes outlived their adapter',
      );
      assert.deepEqual(remaining, [], 'socket dirs of dead adapters were not swept');
      assert.equal(unowned, 0, 'a socket dir had no owner record');
    } finally {
      fs.rmSync(runtime, { recursive: true, force: true });
      fs.rmSync(logs, { recursive: true, force: true });
    }
  });
});
