#!/usr/bin/env node
/**
 * Long fuzz runs: compiles the tests, runs each fuzz suite (out/test/unit/fuzz-*.test.js) in a
 * child process of its own with QKD_FUZZ_RUNS scaled up, and prints the cases run per parser.
 * A suite that outlives its time limit is killed and reported as a hang with its seed: a
 * parser stuck in a loop cannot be stopped from inside its own process.
 *
 *   npm run fuzz                         # QKD_FUZZ_RUNS=2000 (about 10 minutes on 2 cores)
 *   npm run fuzz -- --runs 200 --seed 7  # shorter, another seed
 *   npm run fuzz -- --only rsp,qmp       # suites whose file name contains one of these
 *   npm run fuzz -- --no-build           # reuse out/ as it is
 *   npm run fuzz -- --out /tmp/x/out     # compile to and run from another directory (two levels below a
 *                                        # directory holding test/fixtures and node_modules, like out/)
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const runs = Number(opt('runs', process.env.QKD_FUZZ_RUNS ?? '2000'));
const seed = opt('seed', process.env.QKD_FUZZ_SEED ?? '');
const limitS = Number(opt('time-limit', '900'));
const only = opt('only', '').split(',').filter(Boolean);
const outDir = path.resolve(root, opt('out', 'out'));
if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`--runs ${runs}: a whole number >= 1`);

if (!args.includes('--no-build')) {
  process.stderr.write('==> compiling the tests (tsc -p tsconfig.test.json)\n');
  const tsc = spawnSync(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.test.json', '--outDir', outDir], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) process.stderr.write('tsc reported errors (running what it emitted)\n');
}

const dir = path.join(outDir, 'test', 'unit');
const files = fs
  .readdirSync(dir)
  .filter((f) => /^fuzz-.*\.test\.js$/.test(f))
  .filter((f) => !only.length || only.some((o) => f.includes(o)))
  .sort();
if (!files.length) throw new Error(`no fuzz suites in ${dir}`);

const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-fuzz-')), 'report.jsonl');
const env = { ...process.env, QKD_FUZZ_RUNS: String(runs), QKD_FUZZ_REPORT: report, ...(seed ? { QKD_FUZZ_SEED: seed } : {}) };
const failures = [];
const t0 = Date.now();

for (const f of files) {
  process.stderr.write(`==> ${f} (QKD_FUZZ_RUNS=${runs}${seed ? `, seed ${seed}` : ''})\n`);
  const child = spawn(process.execPath, [path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--timeout', '0', path.join(dir, f)], { cwd: root, env, stdio: 'inherit' });
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, limitS * 1000);
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (hung) failures.push(`${f}: still running after ${limitS} s, killed: a hang (seed ${seed || 'default'})`);
  else if (code !== 0) failures.push(`${f}: exited ${code}`);
}

const rows = fs.existsSync(report) ? fs.readFileSync(report, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
const byParser = new Map();
for (const r of rows) {
  const p = byParser.get(r.parser) ?? { cases: 0, ok: 0, typed: 0, properties: 0 };
  p.cases += r.cases;
  p.ok += r.ok;
  p.typed += r.typed;
  p.properties++;
  byParser.set(r.parser, p);
}
const total = rows.reduce((n, r) => n + r.cases, 0);
console.log('\nparser'.padEnd(34) + 'cases'.padStart(10) + 'parsed'.padStart(10) + 'rejected'.padStart(11) + '  properties');
for (const [name, p] of [...byParser].sort((a, b) => b[1].cases - a[1].cases)) {
  console.log(name.padEnd(33) + String(p.cases).padStart(10) + String(p.ok).padStart(10) + String(p.typed).padStart(11) + String(p.properties).padStart(12));
}
console.log(`${'total'.padEnd(33)}${String(total).padStart(10)}   in ${((Date.now() - t0) / 1000).toFixed(0)} s, seed ${rows[0]?.seed ?? (seed || 'default')}`);
for (const f of failures) console.log(`FAILED ${f}`);
console.log(failures.length ? `${failures.length} suite(s) failed: crashes or hangs above` : '0 crashes, 0 hangs');
process.exit(failures.length ? 1 : 0);
