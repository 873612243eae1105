/** Sample guest recipes and the busybox helpers: what each arch's kernel and userspace are built from. */
import * as assert from 'node:assert/strict';
import { getArch } from '../../src/arch';
import { recipeFor } from '../../src/guest/build';
import { madisonVersions, withoutBinNmu } from '../../src/guest/busybox';
import { disabledOptions, RECIPES, requiredOptions } from '../../src/guest/recipes';
import { UserError } from '../../src/util/errors';

describe('guest/recipes', () => {
  it('has a recipe for x86_64, aarch64 and riscv64, each booting the image its ArchInfo names', () => {
    assert.deepEqual(Object.keys(RECIPES).sort(), ['aarch64', 'riscv64', 'x86_64']);
    for (const r of Object.values(RECIPES)) {
      assert.equal(r.image, getArch(r.arch).bootImage, r.arch);
      assert.ok(r.image.startsWith(`arch/${r.kernelArch}/boot/`), r.arch);
      assert.ok(r.packages.includes(getArch(r.arch).qemuPackage), `${r.arch} installs its QEMU`);
    }
  });

  it('keeps DWARF 5, frame pointers and debug info on every arch, and KASLR built in where the kernel has it', () => {
    for (const r of Object.values(RECIPES)) {
      const req = requiredOptions(r.fragment);
      for (const o of ['CONFIG_DEBUG_INFO_DWARF5=y', 'CONFIG_FRAME_POINTER=y', 'CONFIG_KALLSYMS_ALL=y', 'CONFIG_BLK_DEV_INITRD=y']) assert.ok(req.includes(o), `${r.arch}: ${o}`);
      // riscv 6.1 has no RANDOMIZE_BASE at all (it came in 6.6).
      if (r.arch !== 'riscv64') assert.ok(req.includes('CONFIG_RANDOMIZE_BASE=y'), r.arch);
    }
    // The page-table isolation a user-mode stop must see through: x86 PTI, arm64 KPTI.
    assert.ok(requiredOptions(RECIPES.x86_64.fragment).includes('CONFIG_PAGE_TABLE_ISOLATION=y'));
    assert.ok(requiredOptions(RECIPES.aarch64.fragment).includes('CONFIG_UNMAP_KERNEL_AT_EL0=y'));
  });

  it('reads the options a fragment turns off, so a selected one fails the build', () => {
    assert.deepEqual(disabledOptions('CONFIG_A=y\n# CONFIG_RANDOMIZE_BASE is not set\n  # CONFIG_B is not set\n# a comment\n'), ['CONFIG_RANDOMIZE_BASE', 'CONFIG_B']);
    assert.deepEqual(disabledOptions(RECIPES.aarch64.fragment), ['CONFIG_SLOB', 'CONFIG_UBSAN_SANITIZE_ALL', 'CONFIG_ARM64_PTR_AUTH', 'CONFIG_ARM64_BTI']);
    // x86: the mitigations that would change code generation stay off; only PTI is wanted.
    assert.ok(disabledOptions(RECIPES.x86_64.fragment).includes('CONFIG_RETPOLINE'));
  });

  it("builds each arch's serial console driver into the kernel", () => {
    const req = (arch: string): string[] => requiredOptions(recipeFor(arch).fragment);
    assert.ok(req('aarch64').includes('CONFIG_SERIAL_AMBA_PL011=y') && req('aarch64').includes('CONFIG_SERIAL_AMBA_PL011_CONSOLE=y'));
    for (const o of ['CONFIG_SERIAL_8250=y', 'CONFIG_SERIAL_8250_CONSOLE=y', 'CONFIG_SERIAL_OF_PLATFORM=y', 'CONFIG_SOC_VIRT=y', 'CONFIG_FPU=y']) assert.ok(req('riscv64').includes(o), o);
  });

  it('cross-builds with Debian cross compilers and says where each busybox comes from', () => {
    assert.equal(RECIPES.x86_64.crossCompile, undefined);
    assert.equal(RECIPES.x86_64.busybox, undefined);
    assert.equal(RECIPES.aarch64.crossCompile, 'aarch64-linux-gnu-');
    assert.ok(RECIPES.aarch64.packages.includes('gcc-aarch64-linux-gnu'));
    assert.deepEqual(RECIPES.aarch64.busybox, { kind: 'deb', debArch: 'arm64' });
    assert.equal(RECIPES.riscv64.crossCompile, 'riscv64-linux-gnu-');
    assert.ok(RECIPES.riscv64.packages.includes('gcc-riscv64-linux-gnu') && RECIPES.riscv64.packages.includes('libc6-dev-riscv64-cross'));
    assert.deepEqual(RECIPES.riscv64.busybox, { kind: 'source', debArch: 'riscv64' });
  });

  it('accepts the Debian and kernel names of an arch, and names the field for an unknown one', () => {
    assert.equal(recipeFor('arm64').arch, 'aarch64');
    assert.equal(recipeFor('riscv').arch, 'riscv64');
    assert.equal(recipeFor('amd64').arch, 'x86_64');
    assert.throws(
      () => recipeFor('mips'),
      (e: unknown) => e instanceof UserError && /'arch' has unknown value 'mips'.*x86_64, aarch64, riscv64/.test(e.message),
    );
  });
});

describe('guest/busybox', () => {
  it('strips a binNMU suffix to get the source version', () => {
    assert.equal(withoutBinNmu('1:1.35.0-4+deb12u1+b1'), '1:1.35.0-4+deb12u1');
    assert.equal(withoutBinNmu('1:1.35.0-4+deb12u1'), '1:1.35.0-4+deb12u1');
  });

  it("reads the versions from apt-cache madison's table", () => {
    const out = [
      'busybox-static | 1:1.35.0-4+deb12u2 | http://deb.debian.org/debian-security bookworm-security/main arm64 Packages',
      'busybox-static | 1:1.35.0-4+deb12u1+b1 | http://deb.debian.org/debian bookworm/main arm64 Packages',
      '',
    ].join('\n');
    assert.deepEqual(madisonVersions(out), ['1:1.35.0-4+deb12u2', '1:1.35.0-4+deb12u1+b1']);
    assert.deepEqual(madisonVersions(''), []);
  });
});
