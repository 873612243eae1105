// I1: an unchanged initramfs list checked, as a launch with the `initramfs` field does before
// QEMU starts: `qkd initramfs --json LIST` reports the time its check took inside the process
// (stat each named file, find the archive for their content hashes). Beside it, the kernel's
// usr/gen_init_cpio (from the sample guest's tree) writing the same list's archive, which it
// does in full every time (the kernel's build runs it when a file it names is newer). The
// list holds busybox, the sample kernel's bzImage and initramfs and the sample module: about
// as much as a developer's test initramfs.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { say, toolEnv } from '../lib/proc.mjs';

export const ids = ['I1'];

export const needs = () => ({ guest: true });

export async function run(ctx, sel) {
  if (!sel.has('I1')) return [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-bench-i1-'));
  try {
    const files = [['/bin/busybox', '/bin/busybox'], ['/boot/bzImage', ctx.guest.kernel], ['/boot/initrd.cpio', ctx.guest.initrd]];
    if (ctx.guest.modules?.sample) files.push(['/lib/modules/qkd_sample.ko', ctx.guest.modules.sample]);
    const list = path.join(dir, 'initramfs.list');
    fs.writeFileSync(list, ['dir /bin 0755 0 0', 'dir /boot 0755 0 0', 'dir /lib 0755 0 0', 'dir /lib/modules 0755 0 0', 'dir /dev 0755 0 0', 'nod /dev/console 0600 0 0 c 5 1', ...files.map(([n, f]) => `file ${n} ${f} 0755 0 0`), 'slink /bin/sh busybox 0777 0 0'].join('\n') + '\n');
    const bytes = files.reduce((n, [, f]) => n + fs.statSync(f).size, 0);
    const env = { ...toolEnv(), XDG_CACHE_HOME: path.join(dir, 'cache') };
    const cli = path.join(ctx.repo, 'dist', 'cli.js');
    const check = () => {
      const r = spawnSync(cli, ['initramfs', '--json', list], { env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`qkd initramfs failed (${r.status}):\n${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    const first = check();
    if (!first.rebuilt) throw new Error('I1: the first check found an archive in a new cache');
    const tool = path.join(path.dirname(ctx.guest.vmlinux), 'usr', 'gen_init_cpio');
    const ours = [];
    const theirs = [];
    const whole = [];
    for (let i = 0; i < ctx.runs; i++) {
      const t0 = process.hrtime.bigint();
      const o = check();
      whole.push(Number(process.hrtime.bigint() - t0) / 1e9);
      if (o.rebuilt || o.file !== first.file) throw new Error('I1: an unchanged list was made again');
      ours.push(o.ms / 1000);
      const t1 = process.hrtime.bigint();
      const g = spawnSync(tool, ['-t', '0', list], { encoding: 'buffer', maxBuffer: 1 << 28 });
      theirs.push(Number(process.hrtime.bigint() - t1) / 1e9);
      if (g.status !== 0) throw new Error(`gen_init_cpio failed (${g.status}): ${g.stderr}`);
      if (!g.stdout.equals(fs.readFileSync(first.file))) throw new Error('I1: gen_init_cpio wrote other bytes than our archive');
      say(`I1 run ${i + 1}/${ctx.runs}: unchanged list checked in ${o.ms.toFixed(2)} ms (${(whole[i] * 1000).toFixed(0)} ms as a process), gen_init_cpio ${(theirs[i] * 1000).toFixed(1)} ms`);
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return [
      {
        id: 'I1',
        what: `an unchanged initramfs list checked (${files.length} files, ${(bytes / 2 ** 20).toFixed(1)} MB): qkd's check vs gen_init_cpio writing the archive`,
        ours,
        gdb: theirs,
        oursRss: [],
        gdbRss: null,
        ratioKind: 'gdb/ours',
        runs: ctx.runs,
        target: { text: 'ours ≤ 20 ms', test: (j) => j.ours_s <= 0.02 },
        extra: { oracle: 'usr/gen_init_cpio -t 0 (the sample guest tree)', whole_process_ms: Math.round(median(whole) * 1000), first_build_ms: Math.round(first.ms) },
      },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
