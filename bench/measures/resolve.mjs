// P1/P2 (and P1s/P2s on the sample vmlinux): a cold process resolving one breakpoint
// location, ours (`qkd where`) against gdb (`info line`), plus each tool's empty start so
// the process start, which is no symbol work, can be taken out ("net").
import * as path from 'node:path';
import { median } from '../lib/stats.mjs';
import { timedProcess, say, toolEnv } from '../lib/proc.mjs';

const FUNC = 'kernel_clone';
const LINE = 'kernel/fork.c:2739';

const CASES = [
  { id: 'P1', vmlinux: 'debian', loc: FUNC, what: "cold start → resolved `kernel_clone` function breakpoint, Debian's full -dbg vmlinux", ratioTarget: 30 },
  { id: 'P2', vmlinux: 'debian', loc: LINE, what: `cold start → resolved \`${LINE}\` line breakpoint, Debian's full -dbg vmlinux`, wholeTarget: 1 },
  { id: 'P1s', vmlinux: 'sample', loc: FUNC, what: 'as P1, on the sample guest vmlinux (info)' },
  { id: 'P2s', vmlinux: 'sample', loc: LINE, what: 'as P2, on the sample guest vmlinux (info)' },
];

export const ids = ['P1e', ...CASES.map((c) => c.id)];

export const needs = (sel) => ({ guest: true, debian: sel.has('P1') || sel.has('P2'), gdb: true });

export async function run(ctx, sel) {
  const node = process.execPath;
  const cli = path.join(ctx.repo, 'dist', 'cli.js');
  const cases = CASES.filter((c) => sel.has(c.id));
  const files = { debian: ctx.debianVmlinux, sample: ctx.guest.vmlinux };
  const cwd = ctx.guest.source;
  const empty = { ours: [], gdb: [], oursRss: [], gdbRss: [] };
  const acc = new Map(cases.map((c) => [c.id, { ours: [], gdb: [], oursRss: [], gdbRss: [], inner: [], resolved: null }]));

  for (let i = 0; i < ctx.runs; i++) {
    // Same node binary as `qkd`'s shebang would find, with the shebang's flag.
    let r = timedProcess(node, ['-e', ''], { cwd });
    empty.ours.push(r.s);
    empty.oursRss.push(r.mb);
    r = timedProcess('gdb', ['-q', '-nx', '-batch'], { cwd });
    empty.gdb.push(r.s);
    empty.gdbRss.push(r.mb);
    for (const c of cases) {
      const a = acc.get(c.id);
      const o = timedProcess(node, ['--max-semi-space-size=2', cli, 'where', '--json', '--vmlinux', files[c.vmlinux], '--source', ctx.guest.source, c.loc], { cwd, env: toolEnv() });
      const g = timedProcess('gdb', ['-q', '-nx', '-batch', '-ex', `info line ${c.loc}`, files[c.vmlinux]], { cwd });
      a.resolved = sameLocation(c, o.stdout, g.stdout);
      a.ours.push(o.s);
      a.oursRss.push(o.mb);
      a.inner.push(JSON.parse(o.stdout)[0].ms / 1000);
      a.gdb.push(g.s);
      a.gdbRss.push(g.mb);
    }
    say(`resolve run ${i + 1}/${ctx.runs}: ` + cases.map((c) => `${c.id} ours ${fmt(acc.get(c.id).ours.at(-1))} gdb ${fmt(acc.get(c.id).gdb.at(-1))}`).join(', '));
  }

  const nodeStart = median(empty.ours);
  const gdbStart = median(empty.gdb);
  const rows = [
    {
      id: 'P1e',
      what: "empty process start, subtracted for net: `node -e ''` vs `gdb -q -nx -batch` (info)",
      ours: empty.ours,
      gdb: empty.gdb,
      oursRss: empty.oursRss,
      gdbRss: empty.gdbRss,
      ratioKind: 'gdb/ours',
      target: null,
    },
  ];
  for (const c of cases) {
    const a = acc.get(c.id);
    rows.push({
      id: c.id,
      what: c.what,
      ours: a.ours.map((s) => s - nodeStart),
      gdb: a.gdb.map((s) => s - gdbStart),
      oursRss: a.oursRss,
      gdbRss: a.gdbRss,
      ratioKind: 'gdb/ours',
      net: true,
      whole: { ours: a.ours, gdb: a.gdb },
      extra: { ours_in_process_s: median(a.inner), resolved: a.resolved },
      target: c.ratioTarget
        ? { text: `gdb/ours (net) ≥ ${c.ratioTarget}`, test: (j) => j.ratio >= c.ratioTarget }
        : c.wholeTarget
          ? { text: `ours (whole process) ≤ ${c.wholeTarget} s`, test: (j) => j.ours_whole_s <= c.wholeTarget }
          : null,
    });
  }
  return rows;
}

/**
 * Both tools must put the breakpoint at the same place, else the times compare different
 * work. gdb names the line only when the line has code ("starts at address"); for a line
 * without code it names the address the breakpoint goes to, and so does ours.
 */
function sameLocation(c, oursOut, gdbOut) {
  const ours = JSON.parse(oursOut)[0]?.addresses?.[0];
  const starts = /Line (\d+) of "([^"]+)" starts at address (0x[0-9a-f]+)/.exec(gdbOut);
  const noCode = /Line (\d+) of "([^"]+)" is at address (0x[0-9a-f]+) .*but contains no code/.exec(gdbOut);
  const g = starts ?? noCode;
  if (!ours || !g) throw new Error(`${c.id} ${c.loc}: a side resolved nothing\nours: ${oursOut}\ngdb: ${gdbOut}`);
  const gAddr = BigInt(g[3]);
  const mismatch = BigInt(ours.address) !== gAddr || (starts && Number(starts[1]) !== ours.line);
  if (mismatch) throw new Error(`${c.id} ${c.loc}: ours and gdb disagree\nours: ${ours.address} line ${ours.line}\ngdb:  ${gdbOut.trim()}`);
  return { address: ours.address, line: ours.line, gdb: gdbOut.trim() };
}

const fmt = (s) => (s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`);

export const notes = {
  P1e: "Each tool's start with no work: `node -e ''` (the same node binary as ours) and `gdb -q -nx -batch` with no file, timed in the same alternation as P1/P2. Their medians are subtracted from P1/P2's whole-process times to give the net times: starting a process (loading Node or gdb itself) is not symbol work, and on a loaded machine it is a large part of a sub-second figure.",
  P1: "Each run starts a fresh process on each side. **ours**: `node --max-semi-space-size=2 dist/cli.js where --json --vmlinux V --source S kernel_clone` (what the `qkd` shebang runs, in its environment: without NODE_EXTRA_CA_CERTS): open the vmlinux, read its symbols, DWARF unit and line table, print the address. **gdb**: `gdb -q -nx -batch -ex 'info line kernel_clone' V`. V is Debian's `linux-image-6.1.0-*-amd64-dbg` vmlinux (fetched by `bench/fetch-debian-vmlinux.sh`). Wall time is the bench's clock around the whole process (run under `/usr/bin/time -f %M` for peak RSS); net = whole − that tool's P1e median. The ratio is gdb net / ours net; the whole-process ratio is shown beside it. Every run checks both tools name the same address and line; a mismatch fails the bench.",
  P2: "As P1 for the line breakpoint `kernel/fork.c:2739` (in Debian's build that line has no code of its own, so both tools put the breakpoint at the next line that does; the addresses must agree). The target is on ours whole-process time.",
  P1s: 'As P1 on the sample guest vmlinux (built from linux-source-6.1 with the sample config); not a target.',
  P2s: 'As P2 on the sample guest vmlinux; not a target.',
};
