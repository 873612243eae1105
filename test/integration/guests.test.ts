/**
 * The sample guest of every arch: cached by `qkd guest build --arch A`, a vmlinux and a busybox
 * for that arch, and a kernel that boots under TCG to the init's ready line, with a console
 * that answers typed commands.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { recipeFor } from '../../src/guest/build';
import { READY_LINE } from '../../src/guest/initramfs';
import { ElfFile, EM_AARCH64, EM_RISCV, EM_X86_64 } from '../../src/symbols/elf';
import { artifact, CLI, requireBuilt, sampleGuest } from '../support/env';

const MACHINE: Record<string, number> = { x86_64: EM_X86_64, aarch64: EM_AARCH64, riscv64: EM_RISCV };

for (const arch of Object.keys(MACHINE)) {
  describe(`${arch} sample guest`, function () {
    // A cold TCG boot of a foreign arch takes 10-40 s on a loaded 2-core machine.
    this.timeout(240_000);

    it('is in the cache with the paths guest.json records', function () {
      const g = sampleGuest(this, arch);
      assert.equal(g.arch, arch);
      assert.equal(path.relative(g.source, g.kernel), recipeFor(arch).image);
      assert.equal(path.relative(g.source, g.vmlinux), 'vmlinux');
    });

    it(`has a vmlinux and a busybox built for ${arch} (e_machine ${MACHINE[arch]})`, function () {
      const g = sampleGuest(this, arch);
      const elf = ElfFile.open(g.vmlinux);
      try {
        assert.equal(elf.machine, MACHINE[arch]);
      } finally {
        elf.close();
      }
      const busybox = execFileSync('cpio', ['-i', '--to-stdout', '--quiet', 'bin/busybox'], { input: fs.readFileSync(g.initrd), maxBuffer: 64 << 20 });
      assert.equal(busybox.readUInt32BE(0), 0x7f454c46, 'bin/busybox is an ELF');
      assert.equal(busybox.readUInt16LE(18), MACHINE[arch], 'bin/busybox e_machine');
    });

    it('boots under TCG to the ready line, and its console answers', async function () {
      requireBuilt(this);
      sampleGuest(this, arch);
      const child = spawn('node', [CLI, 'boot', '--arch', arch, '--accel', 'tcg', '--console-log', artifact(this, 'console.log')], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const seen = (re: RegExp, ms: number): Promise<void> =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => done(new Error(`${re} not seen within ${ms} ms; console: ${out.slice(-600)}\nqkd: ${err.slice(-600)}`)), ms);
          const check = (): void => {
            if (re.test(out)) done();
          };
          const done = (e?: Error): void => {
            clearTimeout(timer);
            child.stdout.off('data', check);
            child.off('exit', gone);
            if (e) reject(e);
            else resolve();
          };
          const gone = (): void => done(new Error(`qkd boot exited before ${re}; console: ${out.slice(-600)}\nqkd: ${err.slice(-600)}`));
          child.stdout.on('data', check);
          child.on('exit', gone);
          check();
        });
      try {
        await seen(new RegExp(`${READY_LINE} \\(kernel 6\\.1\\.`), 180_000);
        assert.match(out, /Linux version 6\.1/);
        child.stdin.write('uname -m\n');
        await seen(new RegExp(`\\r?\\n${arch}\\r?\\n`), 30_000);
        // -no-reboot turns the guest's reset (ACPI, PSCI or SBI) into QEMU exiting.
        child.stdin.write('reboot -f\n');
        assert.equal(await exited, 0);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });
}
