// SOAK: not a timed comparison but a long session of ours (10,000 breakpoint hits and steps
// by default), to see whether the adapter's memory grows or its steps slow down as a session
// ages. Run on its own (`node bench/run.mjs soak`); not part of the default set or --smoke.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { oursSession, closeHost } from '../lib/dap.mjs';
import { say } from '../lib/proc.mjs';

export const ids = ['SOAK'];

/** Measures a plain `npm run bench` leaves out: selected by name only. */
export const optIn = ['SOAK'];

export const needs = () => ({ guest: true, qemu: true });

export const EVENTS = 10000;
const GROWTH_GOAL = 0.1;
const STEP_DRIFT_GOAL = 0.1;

const pct = (x) => Math.round(x * 1000) / 10;
const ms = (s) => Math.round(s * 1e5) / 100;
const fmtPct = (x) => `${x >= 0 ? '+' : ''}${pct(x).toFixed(1)}%`;

export async function run(ctx) {
  const events = ctx.soakEvents ?? EVENTS;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-bench-soak-'));
  let r;
  try {
    say(`soak: one session of ours, ${events} kernel_clone hits and step-overs after a warm-up (several minutes under TCG)`);
    r = await oursSession({ kind: 'soak', repo: ctx.repo, guest: ctx.guest, dir, events });
  } finally {
    closeHost();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const stepRatio = r.stepLast100 / r.stepFirst100;
  say(`soak: ${r.events} events (${r.hits} hits, ${r.steps} steps) in ${r.countedS.toFixed(0)} s; heap ${fmtPct(r.heapGrowth)}, RSS ${fmtPct(r.rssGrowth)}; step median first 100 ${ms(r.stepFirst100)} ms, last 100 ${ms(r.stepLast100)} ms`);
  if (r.lineMismatches) say(`soak: note: ${r.lineMismatches} cycles stepped through other lines than ${r.expectLines.join(' → ')}`);
  return [
    {
      id: 'SOAK',
      what: `soak, one session: ${r.events.toLocaleString('en-US')} events (${r.hits.toLocaleString('en-US')} kernel_clone hits, ${r.steps.toLocaleString('en-US')} step-overs); heap ${fmtPct(r.heapGrowth)} (${mb(r.warm.heapUsed)} → ${mb(r.end.heapUsed)} MB), RSS ${fmtPct(r.rssGrowth)} (${mb(r.warm.rss)} → ${mb(r.end.rss)} MB) from after the warm-up to the end; cell: the last 100 steps, ratio: their median over the first 100's (${ms(r.stepFirst100)} ms) (info)`,
      ours: r.stepSamples.last,
      gdb: null,
      oursRss: [r.peakRssMb],
      gdbRss: null,
      runs: 1,
      ratio: stepRatio,
      ratioKind: 'last/first 100 steps',
      target: {
        text: `heap and RSS growth < ${pct(GROWTH_GOAL)}%; last 100 steps ≤ ${pct(STEP_DRIFT_GOAL)}% slower than the first 100`,
        // Drift is one-sided: a session whose steps got faster hasn't aged badly.
        test: () => r.heapGrowth < GROWTH_GOAL && r.rssGrowth < GROWTH_GOAL && stepRatio <= 1 + STEP_DRIFT_GOAL,
      },
      extra: {
        events: r.events,
        hits: r.hits,
        steps: r.steps,
        steps_per_hit: r.stepsPerHit,
        warmup_cycles: r.warmupCycles,
        boot_hits: r.bootHits,
        counted_s: Math.round(r.countedS * 10) / 10,
        heap_gc: r.warm.gc,
        heap_warm_mb: mb(r.warm.heapUsed),
        heap_end_mb: mb(r.end.heapUsed),
        heap_growth_pct: pct(r.heapGrowth),
        rss_warm_mb: mb(r.warm.rss),
        rss_end_mb: mb(r.end.rss),
        rss_growth_pct: pct(r.rssGrowth),
        step_first100_ms: ms(r.stepFirst100),
        step_last100_ms: ms(r.stepLast100),
        step_median_ms: ms(r.stepMedian),
        hit_first100_ms: ms(r.hitFirst100),
        hit_last100_ms: ms(r.hitLast100),
        hit_median_ms: ms(r.hitMedian),
        lines: r.expectLines,
        line_mismatches: r.lineMismatches,
        trend: r.trend,
        step_samples_first100: r.stepSamples.first.map(ms),
      },
    },
  ];
}

const mb = (b) => Math.round((b / 2 ** 20) * 10) / 10;

export const notes = {
  SOAK: "Not a timed comparison (no gdb side) and not in the default set: `node bench/run.mjs soak` (`--soak-events N` for another count). One session of ours in the stand-in extension host (bench/lib/host.mjs), through the DAP like P3–P6b: launch with a `kernel_clone` function breakpoint, continue through the boot's hits until init prints its ready line and the shell its prompt, then type `while :; do ( : ); done` into the serial console, so the shell forks, and hits kernel_clone, once per iteration. Each cycle: 3 `next`s (the lines P4 steps through), then `continue` to the next hit; after every stop the client asks what VS Code asks (`threads`, `stackTrace` levels 1, `scopes`, `variables` of every scope not marked expensive). 25 warm-up cycles, then 3 s at a stop (deferred work such as the function index gets done), then the baseline: the host's `process.memoryUsage()` `heapUsed` after two forced full collections (`--expose-gc`), and its RSS; then the counted events (a hit or a step each) and the same reading at the end. The cell is the last 100 steps (`next` sent → `stopped` event), the ratio their median over the first 100 counted steps'. Goals: heap and RSS growth < 10%, and the last 100 steps' median at most 10% above the first 100's (one-sided: steps that got faster are no sign of ageing). With `QKD_BENCH_SOAK_SNAPSHOTS=DIR` the host also writes a V8 heap snapshot at the baseline and at the end. The JSON has a reading every 1,000 events (`trend`), the hits' medians, and `line_mismatches` (cycles that stepped through other lines than the first warm-up cycle did).",
};
