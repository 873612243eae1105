/**
 * arm64's early KASLR hook on the sample arm64 vmlinux: the instruction after `bl
 * kaslr_early_init` in __primary_switch, found in vmlinux's own bytes, must be the one gdb's
 * disassembler shows, and its physical address must follow the image where a fake guest
 * memory holds its header. The integration test (kaslr.test.ts) hits it in a real boot.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { arm64EarlyHook, earlyOffset } from '../../src/kernel/earlykaslr';
import { ElfFile } from '../../src/symbols/elf';
import { SymbolTable } from '../../src/symbols/symtab';
import { gdbFor, haveGdb, NO_AUTOLOAD } from '../support/gdb';
import { requireOrSkip, sampleGuest } from '../support/env';

describe('kernel/earlykaslr: arm64 hook after kaslr_early_init, on the sample arm64 vmlinux', function () {
  this.timeout(60_000);

  it("finds the instruction after the bl that gdb disassembles, at the image's physical address", async function () {
    const g = sampleGuest(this, 'aarch64');
    requireOrSkip(this, haveGdb('aarch64'), `${gdbFor('aarch64')} is not installed`);
    const elf = ElfFile.open(g.vmlinux);
    try {
      const syms = SymbolTable.fromElf(elf);
      const sym = (n: string): bigint | undefined => syms.lookup(n).find((s) => s.value !== 0n)?.value;
      const dis = execFileSync(gdbFor('aarch64'), ['-q', '-nx', '-batch', ...NO_AUTOLOAD, '-ex', 'x/32i __primary_switch', g.vmlinux], { encoding: 'utf8' });
      const m = /^\s*(0x[0-9a-f]+) <__primary_switch\+\d+>:\s+bl\s+0x[0-9a-f]+ <(?:__pi_)?kaslr_early_init>/m.exec(dis);
      assert.ok(m, dis);
      const after = BigInt(m[1]) + 4n;
      const text = sym('_text') as bigint;
      const imagePa = 0x40200000n;
      const header = elf.readVirtual(text, 64) as Buffer;
      const hook = await arm64EarlyHook(
        {
          arch: 'aarch64',
          register: async () => undefined,
          readVirtual: async () => undefined,
          readPhysical: async (addr, n) => (addr === imagePa && n === 64 ? header : Buffer.alloc(n)),
          symbol: sym,
          fileBytes: (addr, n) => elf.readVirtual(addr, n),
        },
        0x40000000n,
      );
      assert.deepEqual(hook, { pa: imagePa + (after - text), imagePa });
    } finally {
      elf.close();
    }
  });

  it("takes the offset as head.S does: x0's 2 MiB-aligned part ORed with x23", () => {
    assert.equal(earlyOffset(0x137c2abcdefn, 0n), 0x137c2a00000n);
    assert.equal(earlyOffset(0x1fffffn, 0n), 0n);
    assert.equal(earlyOffset(0x400000n, 0x1000n), 0x401000n);
  });
});
