// P3, P4, P5, P6 and P6b from one boot of the sample guest per run per side, so the boot
// isn't repeated for each measure.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { oursSession, closeHost, MIB } from '../lib/dap.mjs';
import { gdbSession } from '../lib/gdbsession.mjs';
import { qemuLimit } from '../lib/qemulimit.mjs';
import { say } from '../lib/proc.mjs';
import { median } from '../lib/stats.mjs';

const STEPS = 3;

export const ids = ['P3', 'P4', 'P5', 'P6', 'P6b'];

export const needs = () => ({ guest: true, gdb: true, qemu: true });

/**
 * gdb's QEMU gets the adapter's own arguments up to its first -chardev (binary, machine,
 * accelerator, memory, vCPUs, kernel, initrd, command line), read back from the adapter
 * with its qemuKernel.commandLine request, so the two guests can't drift apart. Only the
 * sockets differ: a file serial and a unix gdbstub, without the adapter's two monitors.
 */
function machineArgsOf(argv) {
  const end = argv.indexOf('-chardev');
  const m = argv.slice(0, end < 0 ? argv.length : end);
  const at = (flag) => m[m.indexOf(flag) + 1];
  if (at('-accel') !== 'tcg' || at('-smp') !== '1' || at('-m') !== '512M') throw new Error(`the adapter's QEMU is not TCG, 1 vCPU, 512M: ${argv.join(' ')}`);
  return m;
}

const hex = (b) => b.toString('hex');

export async function run(ctx) {
  const s = { ours: [], gdb: [], limit: [] };
  let machineArgs = null;
  try {
    for (let i = 0; i < ctx.runs; i++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-bench-'));
      try {
        const o = await oursSession({ repo: ctx.repo, guest: ctx.guest, dir, steps: STEPS });
        machineArgs ??= machineArgsOf(o.argv);
        const g = await gdbSession({ guest: ctx.guest, dir, steps: STEPS, machineArgs, readSize: MIB });
        check(o, g, i);
        // P3's floor, in the same alternation: QEMU alone, spawn → stop reply at kernel_clone.
        const l = await qemuLimit({ machineArgs, vmlinux: ctx.guest.vmlinux });
        s.ours.push(o);
        s.gdb.push(g);
        s.limit.push(l);
        const f = (x) => `${(x * 1000).toFixed(0)} ms`;
        say(`guest run ${i + 1}/${ctx.runs}: P3 ours ${f(o.p3)} gdb ${f(g.p3)} QEMU alone ${f(l.s)}; P6 ours ${f(o.p6)} gdb ${f(g.p6)}; P4 ours ${o.p4.map(f).join('/')} gdb ${g.p4.map(f).join('/')}; P5 ours ${f(o.p5)} gdb ${f(g.p5)}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    closeHost();
  }
  const o0 = s.ours[0];
  const g0 = s.gdb[0];
  const rss = { oursRss: s.ours.map((r) => r.rssMb), gdbRss: s.gdb.map((r) => r.rssMb) };
  const pick = (k) => ({ ours: s.ours.map((r) => r[k]), gdb: s.gdb.map((r) => r[k]) });
  return [
    {
      id: 'P3',
      what: 'sample guest: launch → stopped at kernel_clone with stack and args shown',
      ...pick('p3'),
      ...rss,
      limit: s.limit.map((l) => l.s),
      ratioKind: 'ours/gdb',
      target: { text: 'ours/gdb ≤ 1.0', test: (j) => j.ratio <= 1.0 },
      extra: {
        ours_to_stopped_s: median(s.ours.map((r) => r.toStop)),
        gdb_to_stopped_s: median(s.gdb.map((r) => r.toStop)),
        limit_connect_s: median(s.limit.map((l) => l.connect_s)),
        ours_to_stopped_limit_ratio: Number((median(s.ours.map((r) => r.toStop)) / median(s.limit.map((l) => l.s))).toFixed(3)),
        limit_address: `0x${s.limit[0].address.toString(16)}`,
        qemu_machine_args: machineArgs.slice(1),
      },
    },
    {
      id: 'P4',
      what: `one source step-over (\`next\`) inside kernel_clone, stop to stop (${STEPS} in a row per run)`,
      ours: s.ours.flatMap((r) => r.p4),
      gdb: s.gdb.flatMap((r) => r.p4),
      ...rss,
      ratioKind: 'ours/gdb',
      target: { text: 'ours/gdb ≤ 0.5', test: (j) => j.ratio <= 0.5 },
      extra: { lines: o0.lines },
    },
    {
      id: 'P5',
      what: 'read 1 MiB of guest memory at _text',
      ...pick('p5'),
      ...rss,
      ratioKind: 'gdb/ours',
      target: { text: 'gdb/ours ≥ 1', test: (j) => j.ratio >= 1 },
      extra: { address: `0x${o0.textAddr.toString(16)}`, ours_address_from: o0.textFrom, whole_mib_identical: s.ours.every((o, i) => sha(o.mem) === s.gdb[i].memSha), gdb_sha256: g0.memSha },
    },
    { id: 'P6', what: "first stop → top frame's stackTrace + scopes + variables", ...pick('p6'), ...rss, ratioKind: 'gdb/ours', target: { text: 'ours ≤ 50 ms', test: (j) => j.ours_s <= 0.05 } },
    { id: 'P6b', what: 'as P6 at the second kernel_clone stop (info)', ...pick('p6b'), ...rss, ratioKind: 'gdb/ours', target: null },
  ];
}

const sha = (b) => createHash('sha256').update(b).digest('hex');

/** Both sides must have done the same work: same lines stepped through, same bytes read. */
function check(o, g, i) {
  if (o.lines.join() !== g.lines.join()) throw new Error(`run ${i + 1}: the step-overs reached different lines: ours ${o.lines.join(' → ')}, gdb ${g.lines.join(' → ')}`);
  if (o.textAddr !== g.textAddr) throw new Error(`run ${i + 1}: _text is 0x${o.textAddr.toString(16)} for ours, 0x${g.textAddr.toString(16)} for gdb`);
  const first = hex(o.mem.subarray(0, 64));
  const last = hex(o.mem.subarray(-64));
  if (first !== g.memFirst || last !== g.memLast) {
    throw new Error(`run ${i + 1}: the 1 MiB read at _text differs between the sides\nfirst 64: ours ${first}\n          gdb  ${g.memFirst}\nlast 64:  ours ${last}\n          gdb  ${g.memLast}`);
  }
  if (sha(o.mem) !== g.memSha) say(`run ${i + 1}: note: the first and last 64 bytes agree but the whole MiB at _text differs between the sides (runtime patching?)`);
}

export const notes = {
  P3: "One boot per run per side. **ours**: the adapter runs inside the bench's stand-in extension host (bench/lib/host.mjs), as VS Code runs it by default; the clock starts just before that process loads `dist/adapter-inline.js` (as the extension does on F5) and creates a session, and a DAP client in the same process sends `initialize`, `launch` { kernel, vmlinux, initrd, accel: 'tcg', memory: '512M', kaslr: false (gdb is not told an offset), consoleLog }, `setFunctionBreakpoints` [kernel_clone] after `initialized`, `configurationDone`; after the `stopped` event, what VS Code asks: `threads`, `stackTrace` {startFrame 0, levels 1}, `scopes`, and `variables` of every scope not marked expensive. It stops when the Arguments scope's variables arrive holding `args`. **gdb**: the clock starts just before QEMU (paused, `-S`, the adapter's exact machine arguments read back with its `qemuKernel.commandLine` request: `-nodefaults -no-user-config -display none -no-reboot -machine pc -accel tcg -m 512M -smp 1 -kernel -initrd -append 'console=ttyS0 nokaslr'`, with a file serial and a unix-socket gdbstub) and `gdb -q -nx -batch vmlinux` are spawned together; gdb runs `target remote` once the socket exists, `break kernel_clone`, `continue`, then `bt`, `info args`, `info locals`; it stops when `args = ` appears on gdb's stdout. The JSON's `ours_to_stopped_s` and `gdb_to_stopped_s` are the medians from the same clock start to the `stopped` event and to gdb's `Breakpoint 1, ` line: the boot, apart from showing the stop. **QEMU alone (limit)**, third in each run's alternation: no debugger, a bare RSP client (bench/lib/qemulimit.mjs) spawns the same QEMU command line as gdb's side (unix-socket gdbstub in a private 0700 directory, `-S`), connects once the socket listens, sends one `Z0` at kernel_clone's address from the vmlinux's symbol table and `c`; the clock runs from the spawn to the stop reply (the PC is then checked to be kernel_clone's). The same stop as ours and gdb (both put the breakpoint at the function's entry, as the limit does), so what no debugger of this QEMU can beat; `ours/limit` is P3's ours over it, and the JSON's `ours_to_stopped_limit_ratio` compares the stop alone (`ours_to_stopped_s`).",
  P4: "At the first kernel_clone stop (after P6's requests), 3 source-line step-overs in a row, each a sample. **ours**: from sending `next` to the `stopped` event; the top frame's line is then read with `stackTrace`. **gdb**: `gdb.execute('next')` timed in gdb's Python with `time.perf_counter()`, the line from `gdb.selected_frame().find_sal().line`. The two sides' line sequences (stop line, then each step's) must be identical, else the bench fails.",
  P5: "After P4, 1 MiB at `_text` (`(unsigned long)&_text`, 0xffffffff81000000 with nokaslr). **ours**: one DAP `readMemory` {count 1048576}, request to response, decoded length checked. **gdb**: `gdb.selected_inferior().read_memory(addr, 1 << 20)` timed in Python. The first and last 64 bytes must agree between the sides (else the bench fails); whether the whole MiB is identical is recorded as `whole_mib_identical`.",
  P6: "At the first kernel_clone stop. **ours**: from the `stopped` event reaching the client to the last of the `threads`, `stackTrace` (levels 1), `scopes`, `variables` responses (the requests of P3, so this is the tail of P3). **gdb**: `bt`, `info args`, `info locals` timed in gdb's Python right after `continue` returns (gdb has already printed the stop line with the frame and its arguments by then, which is not in its figure).",
  P6b: "As P6 at the second kernel_clone stop, reached with `continue` after P5: the caches a first stop fills are warm.",
};
