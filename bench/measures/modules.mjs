// M1a, M1b, M2: kernel module symbols, ours (the adapter's hidden hooks on do_init_module
// and free_module, and its read of the module list on attach) against gdb with the kernel's
// own `lx-symbols` (vmlinux-gdb.py of the sample guest's tree), on the same x86_64 TCG guest.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { modSession, closeModHost } from '../lib/modours.mjs';
import { gdbModuleLoads, gdbBoot, plainBoot, bootForAttach, gdbAttach } from '../lib/modgdb.mjs';
import { guestModules, markerLine, parseWireLog, pausesOf, pauseSummary, LOAD_PARAM, SAMPLE } from '../lib/modules.mjs';
import { elfSymbolAddress } from '../lib/elfsym.mjs';
import { hookFloorBoot } from '../lib/hookfloor.mjs';
import { say } from '../lib/proc.mjs';
import { median } from '../lib/stats.mjs';

export const ids = ['M1a', 'M1b', 'M2'];

export const needs = () => ({ guest: true, gdb: true, qemu: true });

/** insmod/rmmod cycles per session (per run per side). */
const CYCLES = 10;
/** The line breakpoint in qkd_sample.c that waits for the module (the command dispatcher: not hit by insmod). */
const MARKER = 'cmd-entry';

/**
 * gdb's and the plain boots' QEMU get the adapter's own arguments up to its first -chardev
 * (binary, machine, accelerator, memory, vCPUs, kernel, initrd, command line), read back
 * with its qemuKernel.commandLine request, as P3 does; only the sockets differ.
 */
function machineArgsOf(argv) {
  const end = argv.indexOf('-chardev');
  const m = argv.slice(0, end < 0 ? argv.length : end);
  const at = (flag) => m[m.indexOf(flag) + 1];
  if (at('-accel') !== 'tcg' || at('-smp') !== '1' || at('-m') !== '512M') throw new Error(`the adapter's QEMU is not TCG, 1 vCPU, 512M: ${argv.join(' ')}`);
  return m;
}

const ms = (x) => (x === null || x === undefined ? null : Math.round(x * 100) / 100);
const f = (s) => `${(s * 1000).toFixed(s < 0.1 ? 1 : 0)} ms`;

export async function run(ctx, sel) {
  const mods = guestModules(ctx.guest);
  const rows = [];
  try {
    if (sel.has('M1a')) rows.push(await m1a(ctx, mods));
    if (sel.has('M1b')) rows.push(await m1b(ctx, mods));
    if (sel.has('M2')) rows.push(await m2(ctx, mods));
  } finally {
    await closeModHost();
  }
  return rows;
}

/** The pauses of one session's wire log, by kind, checked: one load pause per cycle. */
function sessionPauses(wire, hooks, who, run) {
  const all = pausesOf(parseWireLog(wire), hooks);
  const loads = all.filter((p) => p.kind === 'load');
  if (loads.length !== CYCLES) throw new Error(`${who}, run ${run}: ${loads.length} stops at do_init_module in the wire log for ${CYCLES} insmods`);
  return { all, loads, free: all.filter((p) => p.kind === 'free'), other: all.filter((p) => p.kind === 'other') };
}

async function m1a(ctx, mods) {
  const { guest } = ctx;
  const line = markerLine(mods.sampleSource, MARKER);
  const hooks = new Map([
    [elfSymbolAddress(guest.vmlinux, 'do_init_module'), 'load'],
    [elfSymbolAddress(guest.vmlinux, 'free_module'), 'free'],
  ]);
  const s = { ours: [], gdb: [] };
  let machineArgs = null;
  for (let i = 0; i < ctx.runs; i++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-bench-m1a-'));
    try {
      const o = await modSession({ kind: 'm1a', repo: ctx.repo, guest, mods, dir, cycles: CYCLES, line });
      machineArgs ??= machineArgsOf(o.argv);
      const g = await gdbModuleLoads({ guest, mods, machineArgs, cycles: CYCLES, line });
      const op = sessionPauses(o.wire, hooks, 'ours', i + 1);
      const gp = sessionPauses(g.wire, hooks, 'gdb', i + 1);
      s.ours.push({ ...op, rssMb: o.rssMb, adapterLoadMs: o.adapterLoadMs, seen: o.seen });
      s.gdb.push({ ...gp, rssMb: g.rssMb, reloads: g.reloads });
      const list = (ps) => ps.map((p) => p.ms.toFixed(1)).join('/');
      say(`M1a run ${i + 1}/${ctx.runs}: pause at do_init_module, ms per insmod: ours ${list(op.loads)}; gdb ${list(gp.loads)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const flat = (side, k) => s[side].flatMap((r) => r[k]);
  const sec = (ps) => ps.map((p) => p.ms / 1000);
  // Per insmod/rmmod cycle, every hidden stop together (load, return hook, free): the mean over all cycles.
  const perCycle = (side) => ms(s[side].reduce((a, r) => a + r.all.reduce((b, p) => b + p.ms, 0), 0) / (CYCLES * s[side].length));
  const firstLoads = (side) => ms(median(s[side].map((r) => r.loads[0].ms)));
  const repeatLoads = (side) => ms(median(s[side].flatMap((r) => r.loads.slice(1).map((p) => p.ms))));
  const gap = (side) => {
    const gaps = flat(side, 'loads').map((p) => p.maxGap);
    return { median_ms: ms(median(gaps.map((x) => x.ms))), before: mostCommon(gaps.map((x) => x.before.replace(/[0-9a-f]{8,}/g, 'ADDR'))) };
  };
  return {
    id: 'M1a',
    what: `the guest's pause per module load: stop at do_init_module → resume, insmod of qkd_sample with a pending line breakpoint in it (${CYCLES} insmod/rmmod cycles per run; from the wire log)`,
    ours: sec(flat('ours', 'loads')),
    gdb: sec(flat('gdb', 'loads')),
    oursRss: s.ours.map((r) => r.rssMb),
    gdbRss: s.gdb.map((r) => r.rssMb),
    ratioKind: 'gdb/ours',
    target: { text: 'ours ≤ 10 ms', test: (j) => j.ours_s <= 0.01 },
    runs: ctx.runs,
    extra: {
      cycles_per_run: CYCLES,
      breakpoint: `${path.basename(mods.sampleSource)}:${line}`,
      ours_first_load_ms: firstLoads('ours'),
      ours_repeat_load_ms: repeatLoads('ours'),
      gdb_first_load_ms: firstLoads('gdb'),
      gdb_repeat_load_ms: repeatLoads('gdb'),
      gdb_reloads_all_symbols: s.gdb.reduce((a, r) => a + r.reloads, 0),
      ours_load: pauseSummary(flat('ours', 'loads')),
      gdb_load: pauseSummary(flat('gdb', 'loads')),
      ours_load_longest_host_gap: gap('ours'),
      gdb_load_longest_host_gap: gap('gdb'),
      ours_return_hook: pauseSummary(flat('ours', 'other')),
      ours_free: pauseSummary(flat('ours', 'free')),
      gdb_other_stops: flat('gdb', 'other').length + flat('gdb', 'free').length,
      ours_hidden_pause_per_cycle_mean_ms: perCycle('ours'),
      gdb_hidden_pause_per_cycle_mean_ms: perCycle('gdb'),
      // The `modules` request right after the ready line: the guest is stopped, the list
      // walked and every module's .ko found, checked and linked (no hook did it during the boot).
      ours_modules_request_after_boot_ms: ms(median(s.ours.map((r) => r.modulesRequestMs))),
      samples_ours_modules_request_after_boot_ms: s.ours.map((r) => ms(r.modulesRequestMs)),
      ours_samples_ms_by_run: s.ours.map((r) => r.loads.map((p) => ms(p.ms))),
      gdb_samples_ms_by_run: s.gdb.map((r) => r.loads.map((p) => ms(p.ms))),
    },
  };
}

function phaseMedians(rs) {
  const ok = rs.filter((r) => r.phases);
  if (!ok.length) return null;
  const k = (key) => Math.round(median(ok.map((r) => r.phases[key])) * 1000) / 1000;
  return { to_first_module: k('to_first_module_s'), modules: k('modules_s'), after_modules: k('after_modules_s') };
}

function mostCommon(xs) {
  const n = new Map();
  for (const x of xs) n.set(x, (n.get(x) ?? 0) + 1);
  return [...n].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}

async function m1b(ctx, mods) {
  const { guest } = ctx;
  const names = mods.benchNames;
  const append = `${LOAD_PARAM}=${names.join(',')}`;
  const s = { ours: [], hooked: [], gdb: [], plain: [], floor: [], single: [] };
  let machineArgs = null;
  for (let i = 0; i < ctx.runs; i++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-bench-m1b-'));
    try {
      const o = await modSession({ kind: 'm1b', repo: ctx.repo, guest, dir, append, names });
      machineArgs ??= machineArgsOf(o.argv);
      if (!machineArgs.some((a) => a.includes(append))) throw new Error(`the adapter's QEMU command line has no ${append}`);
      // The same boot with the hooks in: a line breakpoint pending in qkd_sample.c (not loaded), as M1a's.
      const hookedDir = fs.mkdtempSync(path.join(dir, 'hooked-'));
      const pendingLine = { path: mods.sampleSource, line: markerLine(mods.sampleSource, MARKER) };
      const oh = await modSession({ kind: 'm1b', repo: ctx.repo, guest, dir: hookedDir, append, names, pendingLine });
      s.hooked.push(oh);
      const g = await gdbBoot({ guest, mods, machineArgs, names });
      const p = await plainBoot({ machineArgs, names });
      // What the stops alone cost QEMU (bench/lib/hookfloor.mjs): ours' pattern, and one stop per load.
      const fl = await hookFloorBoot({ machineArgs, names, vmlinux: guest.vmlinux, pattern: 'ours' });
      const sg = await hookFloorBoot({ machineArgs, names, vmlinux: guest.vmlinux, pattern: 'single' });
      s.ours.push(o);
      s.gdb.push(g);
      s.plain.push(p);
      for (const r of [fl, sg]) if (r.unexpected.length) say(`M1b run ${i + 1}: note: the hook floor's QEMU stopped where no breakpoint of its was: ${r.unexpected.join(' | ')}`);
      s.floor.push(fl);
      s.single.push(sg);
      const ph = (r) => (r.phases ? ` (${f(r.phases.to_first_module_s)} to the first module, ${f(r.phases.modules_s)} first → last)` : '');
      say(`M1b run ${i + 1}/${ctx.runs}: QEMU start → ready line with ${names.length} modules: ours ${f(o.s)}${ph(o)} (modules request after it ${o.modulesRequestMs.toFixed(0)} ms), ours with a breakpoint pending (hooks in) ${f(oh.s)}${ph(oh)}, gdb + lx-symbols ${f(g.s)}${ph(g)}, no debugger ${f(p.s)}${ph(p)}; stops alone: ours' pattern ${f(fl.s)}${ph(fl)}, one stop per load ${f(sg.s)}${ph(sg)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return {
    id: 'M1b',
    what: `boot with ${names.length} modules loaded by init (\`${LOAD_PARAM}=\`): QEMU start → ready line, debugger attached from the start with no breakpoint waiting for a module, so no load hook (QEMU alone column: no debugger; with the hooks in, in the JSON)`,
    ours: s.ours.map((r) => r.s),
    gdb: s.gdb.map((r) => r.s),
    limit: s.plain.map((r) => r.s),
    oursRss: s.ours.map((r) => r.rssMb),
    gdbRss: s.gdb.map((r) => r.rssMb).filter((x) => x !== null),
    ratioKind: 'ours/gdb',
    target: { text: 'ours ≤ 1.1 × no debugger', test: (j) => j.ours_limit_ratio <= 1.1 },
    runs: ctx.runs,
    extra: {
      modules: names.length,
      append,
      // Medians of each boot's phases, from the console lines' arrival: clock start → first
      // module's `loaded` line, first → last module line, last module → ready line.
      ours_phases_s: phaseMedians(s.ours),
      // Ours with a line breakpoint pending in a module that never loads: the load hooks
      // stay in and stop at each of the 20 loads (what the boot costs while a module is awaited).
      ours_hooks_in_s: median(s.hooked.map((r) => r.s)),
      ours_hooks_in_phases_s: phaseMedians(s.hooked),
      samples_ours_hooks_in_s: s.hooked.map((r) => r.s),
      ours_adapter_reported_load_ms: ms(median(s.hooked.flatMap((r) => r.adapterLoadMs))),
      gdb_phases_s: phaseMedians(s.gdb),
      limit_phases_s: phaseMedians(s.plain),
      // QEMU alone with only the stops (bench/lib/hookfloor.mjs): ours' packet pattern per
      // load (two stops, a step) and one stop + step per load, with no debugger work.
      hook_floor_ours_pattern_s: median(s.floor.map((r) => r.s)),
      hook_floor_ours_pattern_phases_s: phaseMedians(s.floor),
      hook_floor_one_stop_s: median(s.single.map((r) => r.s)),
      hook_floor_one_stop_phases_s: phaseMedians(s.single),
      hook_floor_unexpected_stops: [...s.floor, ...s.single].flatMap((r) => r.unexpected),
      samples_hook_floor_ours_pattern: s.floor.map((r) => r.s),
      samples_hook_floor_one_stop: s.single.map((r) => r.s),
      // The `modules` request right after the ready line: the guest is stopped, the list
      // walked and every module's .ko found, checked and linked (no hook did it during the boot).
      ours_modules_request_after_boot_ms: ms(median(s.ours.map((r) => r.modulesRequestMs))),
      samples_ours_modules_request_after_boot_ms: s.ours.map((r) => ms(r.modulesRequestMs)),
      qemu_machine_args: machineArgs.slice(1),
    },
  };
}

async function m2(ctx, mods) {
  const { guest } = ctx;
  const names = [...mods.benchNames, SAMPLE];
  const machineArgs = ['qemu-system-x86_64', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-machine', 'pc', '-accel', 'tcg', '-m', '512M', '-smp', '1', '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', `console=ttyS0 nokaslr ${LOAD_PARAM}=${names.join(',')}`];
  const s = { ours: [], gdb: [] };
  for (let i = 0; i < ctx.runs; i++) {
    const q = await bootForAttach({ machineArgs, names });
    try {
      const o = await modSession({ kind: 'm2', repo: ctx.repo, guest, sock: q.sock, names });
      // Ours' disconnect doesn't detach an attach session (see the README): its connection
      // stays open, and QEMU serves one client at a time, so the host goes (and with it the
      // connection) before gdb attaches. Each run's ours session starts in a fresh host.
      await closeModHost();
      const g = await gdbAttach({ guest, mods, sock: q.sock, dir: q.dir, names });
      s.ours.push(o);
      s.gdb.push(g);
      say(`M2 run ${i + 1}/${ctx.runs}: attach → ${names.length} modules' symbols: ours ${f(o.s)} (attach response ${f(o.attach_s)}; ${f(o.cold_s)} from loading the adapter), gdb target remote + lx-symbols ${f(g.s)} (${f(g.whole_s)} from spawning gdb)`);
    } finally {
      await q.stop();
    }
  }
  return {
    id: 'M2',
    what: `attach to a running guest with ${names.length} modules loaded → all their symbols ready`,
    ours: s.ours.map((r) => r.s),
    gdb: s.gdb.map((r) => r.s),
    oursRss: s.ours.map((r) => r.rssMb),
    gdbRss: s.gdb.map((r) => r.rssMb),
    ratioKind: 'gdb/ours',
    target: { text: 'ours ≤ 300 ms', test: (j) => j.ours_s <= 0.3 },
    runs: ctx.runs,
    extra: {
      modules: names.length,
      ours_attach_response_s: median(s.ours.map((r) => r.attach_s)),
      ours_cold_s: median(s.ours.map((r) => r.cold_s)),
      gdb_cold_s: median(s.gdb.map((r) => r.whole_s)),
      gdb_target_remote_s: median(s.gdb.map((r) => r.connect_s)),
      samples_ours_cold: s.ours.map((r) => r.cold_s),
      samples_gdb_cold: s.gdb.map((r) => r.whole_s),
    },
  };
}

export const notes = {
  M1a: `Per run, one session per side on the x86_64 sample guest under TCG (the adapter's own QEMU arguments, 1 vCPU, 512 MB), with a line breakpoint at qkd_sample.c's \`${MARKER}\` line set while the module is not loaded (pending; insmod doesn't hit it), then ${CYCLES} cycles of \`insmod /lib/modules/<release>/extra/qkd_sample.ko\` and \`rmmod qkd_sample\` typed into the guest's serial console, each waited for on the console. **ours**: a launch in the stand-in extension host (bench/lib/modhost.mjs) with \`rspLog\` set; no stop may reach the client, and each insmod must verify the breakpoint. **gdb**: the guest boots with no debugger, then \`gdb -batch vmlinux\` attaches, sources the tree's vmlinux-gdb.py, runs \`lx-symbols <modules dir>\` (its silent breakpoint on do_init_module loads each new module's .ko with add-symbol-file), \`break qkd_sample.c:LINE\` (pending), \`set debug timestamp on\`, \`set debug remote 1\` and \`continue\`; afterwards the breakpoint must have had a location in the module. The figure, on both sides, comes from the debugger's own packet log, stamped as each packet is written and as it is read (ours: rspLog; gdb: its remote debug log on stderr, to a file): from the stop reply that ends a continue at do_init_module (the PC from the \`g\` reply after it) to the next continue packet sent (a single step over the hook's breakpoint in between is part of the pause). Each insmod is a sample (${CYCLES} per run). The JSON splits first loads from repeats (gdb's lx-symbols reloads vmlinux and every module when a module it has seen loads again: \`gdb_reloads_all_symbols\`), gives for each side the median packets and the time waiting for QEMU (wire) vs. computing (host) in the pause, the longest computing gap and the packet that ended it, and ours' other hidden stops: the return hook after do_init_module (drops init-section breakpoints) and free_module on rmmod; \`*_hidden_pause_per_cycle_mean_ms\` adds every hidden stop up, per cycle (a mean).`,
  M1b: `Per run, three boots of the sample guest with \`${LOAD_PARAM}=qkd_bench_01,…,qkd_bench_20\` on the kernel command line (init modprobes them before its ready line): **ours** — launch in the stand-in extension host with that \`append\`, \`configurationDone\` with no breakpoints; the clock runs from the launch request to the ready line on the console log (QEMU starts a few ms after the request). **gdb** — QEMU (the adapter's exact machine arguments and command line, read back with \`qemuKernel.commandLine\`, \`-S\`, file serial, unix gdbstub) and \`gdb -batch vmlinux\` spawned together after the clock starts; gdb sources vmlinux-gdb.py, \`target remote\`, \`tbreak start_kernel\`, \`continue\` (lx-symbols reads the kernel's module list, unmapped at the reset vector), \`lx-symbols <modules dir>\`, \`continue\`. **QEMU alone** (the third column) — the same QEMU command line, not paused, no gdbstub client. The clock stops when the bench sees \`qkd-guest: ready\` in the console log (polled every 5 ms on all three sides). Each side must have loaded all 20 modules' symbols (ours: the \`modules\` response afterwards; gdb: lx-symbols' \`loading @…\` lines). Target: ours/limit ≤ 1.1. Two more boots per run, in the JSON only: the **hook floor** (bench/lib/hookfloor.mjs), QEMU driven by a bare RSP client that sends at each load only the packets of ours' pattern that change QEMU's state (at do_init_module: a breakpoint on the return address, a single step, a continue; at the return address: that breakpoint removed, a continue), with no reads or symbol work in between (\`hook_floor_ours_pattern_s\`), and with one stop + step per load, lx-symbols' count (\`hook_floor_one_stop_s\`): what the stops alone cost this QEMU, whose TCG drops every translated block at each breakpoint change and single step. Each boot's console lines are stamped as the bench reads them, giving \`*_phases_s\`: to the first module's \`loaded\` line, first to last module line, last module to the ready line.`,
  M2: 'Per run, one boot (QEMU alone, TCG, not paused, unix gdbstub in a private 0700 directory) with `qkd.load=` the 20 bench modules and qkd_sample; once its shell is up, ours then gdb attach to it in turn, while it runs. **ours**: in a fresh stand-in extension host (ended after the session: the adapter\'s disconnect of an attach session leaves the gdbstub connection open, and QEMU serves one client at a time), `attach` { target: the socket, vmlinux, arch }, then a `modules` request as soon as the attach response is in; the clock runs from the attach request to the `modules` response, which must list all 21 with `Symbols loaded` (the adapter reads the module list and links every .ko during attach). Then `configurationDone` and a disconnect that leaves the guest running. **gdb**: `gdb -batch vmlinux`, vmlinux-gdb.py sourced; in gdb\'s Python, `target remote SOCK` then `lx-symbols <modules dir>`, timed with `perf_counter` (lx-symbols reloads vmlinux with symbol-file and add-symbol-files each module); all 21 must be loaded; gdb detaches. The JSON adds `ours_cold_s` (from before loading the adapter bundle, as P3\'s clock) and `gdb_cold_s` (from spawning gdb, which reads vmlinux first).',
};
