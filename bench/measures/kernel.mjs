// K1, K2, K3: kernel awareness on the x86_64 sample guest booted with KASLR and running
// 200 extra sleeping processes: the offset found at the first stop (K1), the task list (K2)
// and the whole printk ring (K3), ours through the DAP against gdb with the kernel's own
// lx-ps and lx-dmesg on the same guest, attached in turn.
import { modSession, closeModHost } from '../lib/modours.mjs';
import { guestModules } from '../lib/modules.mjs';
import { bootKaslrGuest, TASKS } from '../lib/kguest.mjs';
import { gdbKernel } from '../lib/kgdb.mjs';
import { say } from '../lib/proc.mjs';
import { median } from '../lib/stats.mjs';

export const ids = ['K1', 'K2', 'K3'];

export const needs = () => ({ guest: true, gdb: true, qemu: true });

const f = (s) => `${(s * 1000).toFixed(1)} ms`;

export async function run(ctx, sel) {
  const mods = guestModules(ctx.guest);
  const o = [];
  const g = [];
  try {
    for (let i = 0; i < ctx.runs; i++) {
      const q = await bootKaslrGuest(ctx.guest);
      try {
        const ours = await modSession({ kind: 'k', repo: ctx.repo, guest: ctx.guest, sock: q.sock, offset: q.offset.toString() });
        // The adapter's attach keeps its connection until its host goes; QEMU serves one client.
        await closeModHost();
        const gdb = await gdbKernel({ guest: ctx.guest, scripts: mods.gdbScripts, sock: q.sock, dir: q.dir, offset: q.offset });
        o.push(ours);
        g.push(gdb);
        say(`K run ${i + 1}/${ctx.runs}: offset 0x${q.offset.toString(16)} found in ${f(ours.k1_s)} (${ours.k1_method}); ${ours.tasks} tasks: ours ${f(ours.k2_s)} (cold ${f(ours.k2_cold_s)}, settled ${f(ours.k2_settled_s)}), lx-ps ${f(gdb.ps_s)} (cold ${f(gdb.ps_cold_s)}); log: ours ${f(ours.k3_s)} (cold ${f(ours.k3_cold_s)}, settled ${f(ours.k3_settled_s)}), lx-dmesg ${f(gdb.dmesg_s)} (cold ${f(gdb.dmesg_cold_s)})`);
      } finally {
        await q.stop();
      }
    }
  } finally {
    await closeModHost();
  }
  const rows = [];
  const base = { runs: ctx.runs, oursRss: [], gdbRss: [] };
  if (sel.has('K1'))
    rows.push({ ...base, id: 'K1', what: 'KASLR offset found at the attach stop (x86_64: page tables, proven by linux_banner)', ours: o.map((r) => r.k1_s), gdb: null, ratioKind: 'gdb/ours', target: { text: 'ours ≤ 50 ms', test: (j) => j.ours_s <= 0.05 }, extra: { method: o[0]?.k1_method } });
  if (sel.has('K2'))
    rows.push({
      ...base,
      id: 'K2',
      what: `task list at a stop (${median(o.map((r) => r.tasks))} tasks) vs lx-ps`,
      ours: o.map((r) => r.k2_s),
      gdb: g.map((r) => r.ps_s),
      ratioKind: 'gdb/ours',
      target: { text: 'ours ≤ 100 ms and ≥ 10× faster than lx-ps', test: (j) => j.ours_s <= 0.1 && j.gdb_s / j.ours_s >= 10 },
      extra: { tasks: median(o.map((r) => r.tasks)), ours_settled_s: median(o.map((r) => r.k2_settled_s)), ours_cold_s: median(o.map((r) => r.k2_cold_s)), gdb_cold_s: median(g.map((r) => r.ps_cold_s)), adapter_ms: median(o.map((r) => r.tasks_adapter_ms)), extra_sleepers: TASKS },
    });
  if (sel.has('K3'))
    rows.push({
      ...base,
      id: 'K3',
      what: `the whole printk ring at a stop (${median(o.map((r) => r.log_records))} records) vs lx-dmesg`,
      ours: o.map((r) => r.k3_s),
      gdb: g.map((r) => r.dmesg_s),
      ratioKind: 'gdb/ours',
      target: { text: 'ours ≤ 100 ms and ≥ 10× faster than lx-dmesg', test: (j) => j.ours_s <= 0.1 && j.gdb_s / j.ours_s >= 10 },
      extra: { ours_settled_s: median(o.map((r) => r.k3_settled_s)), ours_cold_s: median(o.map((r) => r.k3_cold_s)), gdb_cold_s: median(g.map((r) => r.dmesg_cold_s)), lines: median(o.map((r) => r.log_lines)) },
    });
  return rows;
}

export const notes = {
  K1: 'Per run, one boot of the x86_64 sample guest with `kaslr` on its command line (QEMU alone, TCG, 1 vCPU, 512 MB in a memfd RAM backend, not paused; gdbstub and console on unix sockets in a private 0700 directory); once its shell is up, 200 `sleep` processes are started from the console and `_text` is read from /proc/kallsyms. **ours**: `attach` in the stand-in extension host; the figure is the adapter\'s own timing in its Debug Console line `KASLR: vmlinux runs at offset … (found by … in N ms)`, from the first read at the attach stop to the offset proven by `linux_banner`; the offset must equal /proc/kallsyms `_text` minus vmlinux\'s. gdb has no way to find the offset: it is given it (no gdb column).',
  K2: 'Same boots. **ours** reads guest RAM from the QEMU\'s memfd (found behind the gdbstub socket), walking page tables itself; gdb reads through the gdbstub. **ours**: the `qemuKernel.tasks` request as the DAP client times it, at a second stop (a continue, 300 ms, a pause): what every stop after the first costs. The first read at the attach stop, which also reads struct task_struct\'s layout from DWARF, is `ours_cold_s`; `ours_settled_s` is a third stop read 1 s after it came, once the stop\'s own background work (the stepper\'s read-ahead of the stopped function) is done. **gdb**: after ours has gone, `gdb -batch` with `add-symbol-file vmlinux -o OFFSET -s .data..percpu 0` (the guest\'s own offset; x86\'s per-CPU variables stay at their link addresses under KASLR), the tree\'s vmlinux-gdb.py sourced, `target remote`, then `lx-ps` twice in gdb\'s Python timed with perf_counter; the second is the figure, the first `gdb_cold_s`. Both lists hold every task (200 sleepers, the sample daemons, kernel threads).',
  K3: 'Same boots and sessions as K2: ours\' `qemuKernel.kernelLog` request (the whole printk ring read at the stop and formatted as dmesg prints it) at the second stop, the first read at the attach stop as `ours_cold_s`; gdb\'s `lx-dmesg`, run twice, the second the figure.',
};
