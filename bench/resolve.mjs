#!/usr/bin/env node
// Cold-start breakpoint resolution, ours vs gdb, alternating runs on the same vmlinux:
// `qkd where` (a fresh process running the adapter's own symbol code, started through its
// shebang as a user's `qkd` is) against `gdb -batch -ex 'info line LOCATION'`. Reports
// median/min/max wall time and peak RSS (GNU time's %M) of both processes, and our time
// inside the process from opening the vmlinux to the resolved location: what a freshly
// started adapter spends when the breakpoint request arrives.
// Usage: node bench/resolve.mjs [runs] [--debian] [--json]
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 5);
const cli = path.join(repo, 'dist', 'cli.js');
const guest = JSON.parse(execFileSync('node', [cli, 'guest', 'build', '--json'], { encoding: 'utf8' }));
const files = [{ name: 'sample', vmlinux: guest.vmlinux }];
if (process.argv.includes('--debian')) {
  const v = execFileSync('bash', [path.join(repo, 'bench', 'fetch-debian-vmlinux.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  files.push({ name: 'debian', vmlinux: v });
}

function timed(cmd, args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { encoding: 'utf8', cwd: guest.source });
  const m = /([\d.]+) (\d+)\s*$/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${cmd} failed: ${r.stderr}`);
  return { s: Number(m[1]), mb: Number(m[2]) / 1024, out: r.stdout };
}
const stat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
};

const rows = [];
for (const f of files) {
  for (const loc of ['kernel_clone', 'kernel/fork.c:2739']) {
    const ours = [];
    const gdb = [];
    for (let i = 0; i < runs; i++) {
      const r = timed(cli, ['where', '--json', '--vmlinux', f.vmlinux, '--source', guest.source, loc]);
      r.inner = JSON.parse(r.out)[0].ms / 1000;
      ours.push(r);
      gdb.push(timed('gdb', ['-q', '-nx', '-batch', '-ex', `info line ${loc}`, f.vmlinux]));
    }
    const o = stat(ours.map((r) => r.s));
    const g = stat(gdb.map((r) => r.s));
    rows.push({ vmlinux: f.name, location: loc, ours_s: o, ours_inner_s: stat(ours.map((r) => r.inner)), gdb_s: g, ours_rss_mb: Math.max(...ours.map((r) => r.mb)), gdb_rss_mb: Math.max(...gdb.map((r) => r.mb)), speedup: g.median / o.median });
  }
}
if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 2));
else {
  const f = (x) => x.toFixed(2);
  const ms = (x) => (x * 1000).toFixed(0);
  console.log('| vmlinux | breakpoint | ours, process (min–max) | ours, in adapter | ours peak RSS | gdb (min–max) | gdb peak RSS | gdb/ours process | gdb/ours in adapter |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.vmlinux} | \`${r.location}\` | ${f(r.ours_s.median)} s (${f(r.ours_s.min)}–${f(r.ours_s.max)}) | ${ms(r.ours_inner_s.median)} ms | ${r.ours_rss_mb.toFixed(0)} MB | ${f(r.gdb_s.median)} s (${f(r.gdb_s.min)}–${f(r.gdb_s.max)}) | ${r.gdb_rss_mb.toFixed(0)} MB | ${r.speedup.toFixed(1)}× | ${(r.gdb_s.median / r.ours_inner_s.median).toFixed(0)}× |`);
}
