/**
 * x86_64's early KASLR hook on the sample x86 bzImage: the `call extract_kernel` found in the
 * bzImage's own bytes must be where the decompressor's symbols (arch/x86/boot/compressed/
 * vmlinux, which users don't have but the sample build keeps) put it, in the copy head_64.S
 * relocates to. The offset is then read from relocated pointer tables in a fake physical
 * memory made of vmlinux's bytes as the decompressor leaves them. kaslr.test.ts hits the hook
 * in a real boot and checks the offset against /proc/kallsyms.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KaslrProbe } from '../../src/kernel/kaslr';
import { x86BootHook, x86EarlyOffset } from '../../src/kernel/x86early';
import { ElfFile } from '../../src/symbols/elf';
import { sampleGuest } from '../support/env';

function nm(file: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of execFileSync('nm', [file], { encoding: 'utf8', maxBuffer: 256 << 20 }).split('\n')) {
    const [addr, , name] = line.split(' ');
    if (name && addr) out.set(name, BigInt('0x' + addr));
  }
  return out;
}

describe('kernel/x86early: the decompressor hook, on the sample x86_64 bzImage', function () {
  this.timeout(60_000);

  it("finds `call extract_kernel` where the decompressor's own symbols put it, in its relocated copy", function () {
    const g = sampleGuest(this, 'x86_64');
    const compressed = path.join(g.source, 'arch', 'x86', 'boot', 'compressed', 'vmlinux');
    const image = fs.readFileSync(g.kernel);
    const syms = nm(compressed);
    const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', compressed], { encoding: 'utf8', maxBuffer: 256 << 20 });
    const m = /^\s*([0-9a-f]+):\s+call\s+[0-9a-f]+ <extract_kernel>/m.exec(dis);
    assert.ok(m, 'no call to extract_kernel in the decompressor');
    const hook = x86BootHook(image);
    assert.ok(hook);
    // head_64.S: LOAD_PHYSICAL_ADDR (16 MiB; QEMU loads bzImage's protected-mode code at 1 MiB) + init_size - _end.
    const initSize = BigInt(image.readUInt32LE(0x260));
    const base = 0x1000000n + initSize - (syms.get('_end') as bigint);
    assert.equal(hook.relocatedBase.toString(16), base.toString(16));
    assert.equal(hook.pa.toString(16), (base + BigInt('0x' + m[1]) - (syms.get('startup_32') as bigint)).toString(16));
  });

  it('refuses what is not a bzImage (vmlinux, an empty file)', function () {
    const g = sampleGuest(this, 'x86_64');
    assert.equal(x86BootHook(fs.readFileSync(g.vmlinux).subarray(0, 1 << 20)), undefined);
    assert.equal(x86BootHook(Buffer.alloc(0)), undefined);
  });

  it('reads the offset from the relocated system call table, and proves the image by linux_banner', async function () {
    const g = sampleGuest(this, 'x86_64');
    const elf = ElfFile.open(g.vmlinux);
    try {
      const table = nm(g.vmlinux);
      const sym = (n: string): bigint | undefined => table.get(n);
      const text = sym('_text') as bigint;
      const calls = sym('sys_call_table') as bigint;
      const banner = sym('linux_banner') as bigint;
      const loadedAt = 0x12c00000n;
      const offset = 0x26200000n;
      // What the decompressor leaves: the banner as linked, the table's pointers moved by the offset.
      const relocated = Buffer.from(elf.readVirtual(calls, 0x1000) as Buffer);
      for (let i = 0; i + 8 <= relocated.length; i += 8) {
        const v = relocated.readBigUInt64LE(i);
        if (v >= text && v < (sym('_end') as bigint)) relocated.writeBigUInt64LE(v + offset, i);
      }
      const memory = (shifted: boolean) => async (addr: bigint, n: number): Promise<Buffer | undefined> => {
        if (addr === loadedAt + (banner - text)) return elf.readVirtual(banner, n);
        if (addr === loadedAt + (calls - text)) return shifted ? relocated.subarray(0, n) : elf.readVirtual(calls, n);
        return Buffer.alloc(n);
      };
      const probe = (shifted: boolean): KaslrProbe => ({
        arch: 'x86_64',
        register: async () => undefined,
        readVirtual: async () => undefined,
        readPhysical: memory(shifted),
        symbol: sym,
        fileBytes: (addr, n) => elf.readVirtual(addr, n),
      });
      assert.deepEqual(await x86EarlyOffset(probe(true), loadedAt + ((sym('startup_64') as bigint) - text)), { offset, method: 'extract_kernel', physBase: loadedAt - 0x1000000n });
      // Nothing moved: offset 0 (a kernel booted with nokaslr, or built without RANDOMIZE_BASE).
      assert.equal((await x86EarlyOffset(probe(false), loadedAt))?.offset, 0n);
      // No banner where rax says the kernel is: no offset rather than a wrong one.
      assert.equal(await x86EarlyOffset(probe(true), loadedAt + 0x200000n), undefined);
    } finally {
      elf.close();
    }
  });
});
