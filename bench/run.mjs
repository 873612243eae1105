#!/usr/bin/env node
// `npm run bench`: every performance figure of qemu-kernel-debug against gdb, ours and
// gdb's runs alternating so machine noise lands on both sides alike. Progress goes to
// stderr, the table (or --json) to stdout. See bench/README.md.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { prepare } from './lib/prepare.mjs';
import { describeMachine } from './lib/machine.mjs';
import { finalize, table, markdown } from './lib/render.mjs';
import { say } from './lib/proc.mjs';
import * as resolve from './measures/resolve.mjs';
import * as guest from './measures/guest.mjs';
import * as activation from './measures/activation.mjs';
import * as soak from './measures/soak.mjs';
import * as modules from './measures/modules.mjs';
import * as kernel from './measures/kernel.mjs';
import * as decode from './measures/decode.mjs';
import * as initramfs from './measures/initramfs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const FAMILIES = [resolve, guest, modules, kernel, decode, initramfs, activation, soak];
const ALL = FAMILIES.flatMap((f) => f.ids);
// Selected only by name (long, or not a comparison): the soak.
const OPT_IN = FAMILIES.flatMap((f) => f.optIn ?? []);
const DEFAULT = ALL.filter((id) => !OPT_IN.includes(id));
// --smoke: one run of the cheapest rows (no guest boot, no vsce), after importing every module.
const SMOKE = ['P1e', 'P1s', 'P2s', 'P7a'];
// A measure's name on the command line also selects its companion rows: P1's net needs
// P1e, and the sample-vmlinux and second-stop rows ride along with their measure.
const ALIASES = { P1: ['P1', 'P1e', 'P1s'], P2: ['P2', 'P1e', 'P2s'], P6: ['P6', 'P6b'], P7: ['P7a', 'P7b'], M1: ['M1a', 'M1b'], K: ['K1', 'K2', 'K3'], soak: ['SOAK'] };

const USAGE = `usage: npm run bench -- [soak] [--json] [--runs N] [--only P1,P4] [--markdown FILE] [--quick] [--smoke] [--soak-events N]
  soak             run the soak (SOAK: ${soak.EVENTS} breakpoint hits and steps in one session; minutes), alone
                   unless --only names more; it is never part of the default set
  --json           print the results as a JSON array instead of the table
  --runs N         runs per side for each measure (default 5; at least 5 unless --quick)
  --only IDS       run only these measures: P1 … P7, M1, M2, K (K1–K3), SOAK, or single rows (${ALL.filter((id) => !/^[PM]\d$/.test(id) && id !== 'SOAK').join(', ')})
  --markdown FILE  also write the results, with a description of the machine, as Markdown
  --quick          allow fewer than 5 runs (for development; not for published figures)
  --smoke          check the bench itself: import every module under bench/, then one run of
                   ${SMOKE.join(', ')} (or of --only's); installs and builds nothing (the tests run this)
  --soak-events N  the soak's count of hits and steps (default ${soak.EVENTS})`;

function options() {
  let v;
  let positionals;
  try {
    ({ values: v, positionals } = parseArgs({
      allowPositionals: true,
      options: { json: { type: 'boolean' }, runs: { type: 'string' }, only: { type: 'string' }, markdown: { type: 'string' }, quick: { type: 'boolean' }, smoke: { type: 'boolean' }, 'soak-events': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    console.error(`${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const bad = positionals.filter((p) => p !== 'soak');
  if (bad.length) {
    console.error(`unknown argument ${bad.join(' ')}\n${USAGE}`);
    process.exit(2);
  }
  const quick = Boolean(v.quick || v.smoke);
  const runs = v.runs === undefined ? (v.smoke ? 1 : 5) : Number(v.runs);
  if (!Number.isInteger(runs) || runs < 1 || (runs < 5 && !quick)) {
    console.error(`--runs must be a whole number ≥ 5 (fewer only with --quick), not ${v.runs}\n${USAGE}`);
    process.exit(2);
  }
  const soakEvents = v['soak-events'] === undefined ? soak.EVENTS : Number(v['soak-events']);
  if (!Number.isInteger(soakEvents) || soakEvents < 100) {
    console.error(`--soak-events must be a whole number ≥ 100, not ${v['soak-events']}\n${USAGE}`);
    process.exit(2);
  }
  const sel = new Set();
  const named = [...(v.only ? v.only.split(',').map((s) => s.trim()).filter(Boolean) : []), ...positionals];
  for (const id of named.length ? named : v.smoke ? SMOKE : DEFAULT) {
    const ids = ALIASES[id] ?? (ALL.includes(id) ? [id] : null);
    if (!ids) {
      console.error(`unknown measure ${id}\n${USAGE}`);
      process.exit(2);
    }
    ids.forEach((x) => sel.add(x));
  }
  return { json: Boolean(v.json), runs, quick, smoke: Boolean(v.smoke), soakEvents, markdown: v.markdown, sel, argv: process.argv.slice(2) };
}

/**
 * --smoke's first half: every module under bench/ must load, not only those the cheap rows
 * use, so a syntax error or a broken import anywhere fails the smoke run (and the test that
 * runs it). ES modules are imported (bench/lib/host.mjs does nothing without an IPC channel);
 * CommonJS files and shell scripts are only syntax-checked, since running them does work.
 */
async function importEverything() {
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (/\.(mjs|cjs|js|sh)$/.test(e.name)) files.push(f);
    }
  };
  walk(here);
  files.sort();
  const failed = [];
  for (const f of files) {
    const rel = path.relative(repo, f);
    try {
      if (f.endsWith('.sh')) {
        const r = spawnSync('bash', ['-n', f], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(r.stderr.trim());
      } else if (f.endsWith('.cjs') || f === fileURLToPath(import.meta.url)) {
        const r = spawnSync(process.execPath, ['--check', f], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(r.stderr.trim().split('\n').slice(0, 5).join('\n'));
      } else await import(pathToFileURL(f).href);
    } catch (e) {
      failed.push(`${rel}: ${e.message}`);
    }
  }
  if (failed.length) throw new Error(`bench modules that don't load:\n${failed.join('\n')}`);
  say(`smoke: every bench module loads (${files.length}: ${files.map((f) => path.relative(here, f)).join(', ')})`);
}

const GENERAL_NOTES = [
  "Alternation: for each measure and each run, ours runs, then gdb's run, then the next run, so load from anything else on the machine falls on both sides alike. Each time cell is the median over the runs, with the minimum and maximum in brackets.",
  "Peak RSS is VmHWM, the maximum over the runs: for whole processes (P1, P2) GNU time's `%M`; for ours' guest sessions, the stand-in extension host's `/proc/self/status` read just before `disconnect`, its peak reset when the session began; for gdb in a guest session, its own `/proc/self/status` read by a Python snippet before it quits. The guest sessions' RSS is the same process for P3–P6b, so those rows show the same figure. QEMU's RSS is not counted on either side (both run the same QEMU).",
  'The guest always runs under TCG (`accel: "tcg"`), 1 vCPU, 512 MB: KVM is not used, so boot times are emulation-bound on both sides.',
  "Ours' guest figures (P3–P6b) are what a DAP client in the extension host's place sees, with the adapter inside that process as VS Code runs it by default (messages copied through JSON, delivered on a later microtask); gdb's P4–P6b are timed inside gdb by its Python, with no client in them.",
  'Ratios are of medians. "gdb/ours" above 1 means ours is faster; "ours/gdb" below 1 means ours is faster.',
];

async function main() {
  const opt = options();
  if (opt.smoke) await importEverything();
  const active = FAMILIES.filter((f) => f.ids.some((id) => opt.sel.has(id)));
  const needs = active.map((f) => f.needs(opt.sel)).reduce((a, n) => ({ guest: a.guest || n.guest, debian: a.debian || n.debian, gdb: a.gdb || n.gdb, qemu: a.qemu || n.qemu }), {});
  const ready = prepare(repo, needs, { fetch: !opt.smoke });
  const ctx = { repo, runs: opt.runs, quick: opt.quick, soakEvents: opt.soakEvents, guest: ready.guest, debianVmlinux: ready.debianVmlinux };
  const machine = describeMachine();

  const rows = [];
  const errors = [];
  const notes = {};
  for (const f of active) {
    Object.assign(notes, f.notes);
    say(`running ${f.ids.filter((id) => opt.sel.has(id)).join(', ')}${f === soak ? '' : ` (${opt.runs} run${opt.runs === 1 ? '' : 's'} per side)`}`);
    try {
      for (const r of await f.run(ctx, opt.sel)) if (opt.sel.has(r.id)) rows.push(finalize(r, r.runs ?? opt.runs));
    } catch (e) {
      const msg = `${f.ids.filter((id) => opt.sel.has(id)).join(', ')}: ${e.message}`;
      errors.push(msg);
      say(`ERROR ${msg}`);
    }
  }

  if (opt.json) console.log(JSON.stringify(rows, null, 2));
  else {
    console.log(table(rows));
    for (const e of errors) console.log(`\nERROR ${e}`);
  }
  if (opt.markdown) {
    const command = `npm run bench -- ${opt.argv.join(' ')}`.trim().replace(/ --$/, '');
    fs.writeFileSync(opt.markdown, markdown({ rows, machine, runs: opt.runs, command, notes, generalNotes: GENERAL_NOTES, errors }));
    say(`wrote ${opt.markdown}`);
  }
  process.exitCode = errors.length ? 1 : 0;
}

main().catch((e) => {
  say(`ERROR ${e.message}`);
  process.exitCode = 1;
});
