// P7: the extension's activation cost and the size of the .vsix a user downloads. Ours
// only: gdb has no counterpart.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { say } from '../lib/proc.mjs';

export const ids = ['P7a', 'P7b'];

export const needs = () => ({});

// Activation is a few ms, so more samples than the boot measures cost nothing.
const MIN_ACTIVATIONS = 20;

export async function run(ctx, sel) {
  const rows = [];
  if (sel.has('P7a')) rows.push(activation(ctx));
  if (sel.has('P7b')) rows.push(vsix(ctx));
  return rows;
}

function activation(ctx) {
  const n = ctx.quick ? ctx.runs : Math.max(ctx.runs, MIN_ACTIVATIONS);
  say(`activation: ${n} fresh node process${n === 1 ? '' : 'es'} loading dist/extension.js and calling activate()`);
  const child = path.join(path.dirname(new URL(import.meta.url).pathname), 'activation-child.cjs');
  const bundle = path.join(ctx.repo, 'dist', 'extension.js');
  const samples = [];
  const rss = [];
  for (let i = 0; i < n; i++) {
    const r = spawnSync(process.execPath, [child], { env: { ...process.env, QKD_REPO: ctx.repo, QKD_BUNDLE: bundle }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`activation child failed:\n${r.stderr || r.stdout}`);
    const j = JSON.parse(r.stdout);
    samples.push((j.require + j.activate) / 1000);
    rss.push(j.hwmKb / 1024);
  }
  const extra = { bundle_kb: Math.round(fs.statSync(bundle).size / 1024) };
  const e2e = path.join(ctx.repo, 'test-results', 'e2e', 'activation.json');
  if (fs.existsSync(e2e)) extra.e2e_host_activate_ms = JSON.parse(fs.readFileSync(e2e, 'utf8')).activateMs;
  return { id: 'P7a', what: 'extension activation: require dist/extension.js + activate()', ours: samples, gdb: null, oursRss: rss, gdbRss: null, ratioKind: null, runs: n, target: { text: 'ours ≤ 30 ms', test: (j) => j.ours_s <= 0.03 }, extra };
}

function vsix(ctx) {
  const version = JSON.parse(fs.readFileSync(path.join(ctx.repo, 'package.json'), 'utf8')).version;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-bench-vsix-'));
  const out = path.join(dir, `qemu-kernel-debug-${version}.vsix`);
  try {
    say('vsix: npm run package (vsce) into a temporary directory');
    const r = spawnSync('npm', ['run', 'package', '--', '--out', out], { cwd: ctx.repo, stdio: ['ignore', 2, 2] });
    if (r.status !== 0 || !fs.existsSync(out)) throw new Error(`npm run package failed (exit ${r.status})`);
    const mb = fs.statSync(out).size / 2 ** 20;
    return { id: 'P7b', what: '.vsix size', unit: 'MB', ours: [mb], gdb: null, oursRss: [], gdbRss: null, ratioKind: null, runs: 1, target: { text: 'ours ≤ 5 MB', test: (j) => j.ours_mb <= 5 }, extra: { bytes: fs.statSync(out).size } };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const notes = {
  P7a: "Each sample is a fresh `node` process (bench/measures/activation-child.cjs) that requires dist/extension.js against a stand-in `vscode` module and calls `activate()`; the figure is require + activate, timed inside the process, and the peak RSS is that whole node process's VmHWM. The stand-in does no UI work, so this is the extension's own cost. At least 20 processes (the boot measures' run count when higher). `e2e_host_activate_ms` in the JSON, when present, is activate() as timed inside a real VS Code extension host by the E2E tier (test-results/e2e/activation.json). No gdb counterpart.",
  P7b: 'Size of the package `npm run package` (vsce) builds, written to a temporary directory and deleted afterwards. No gdb counterpart.',
};
