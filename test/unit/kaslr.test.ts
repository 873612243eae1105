/**
 * kernel/kaslr.ts on a guest simulated from the real sample vmlinux: its bytes where a
 * relocated kernel would have them (virtual and physical), and x86 page tables built as
 * __startup_64 leaves them (no entry below _text in __START_KERNEL_map's 2 MiB table). Each
 * method must find the offset the simulation chose, and prove it by linux_banner; nothing may
 * be found where the banner is not. The real guests' offsets are checked against
 * /proc/kallsyms in the integration tests.
 */
import * as assert from 'node:assert/strict';
import { findKaslrOffset, type KaslrProbe } from '../../src/kernel/kaslr';
import { ElfFile } from '../../src/symbols/elf';
import { SymbolTable } from '../../src/symbols/symtab';
import { sampleGuest } from '../support/env';

const MAP = 0xffffffff80000000n;
const MiB2 = 0x200000n;

interface Guest {
  offset: bigint;
  physBase: bigint;
  /** Kernel memory as the stopped vCPU sees it (false: a user-mode stop under PTI). */
  kernelMapped: boolean;
  regs: Record<string, bigint>;
  /** Physical pages of the page tables. */
  tables: Map<bigint, Buffer>;
}

describe('kernel/kaslr: the offset of a relocated kernel, on the sample vmlinux', function () {
  this.timeout(60_000);
  let elf: ElfFile;
  let syms: SymbolTable;
  let text: bigint;
  let end: bigint;

  before(function () {
    const g = sampleGuest(this);
    elf = ElfFile.open(g.vmlinux);
    syms = SymbolTable.fromElf(elf);
    text = sym('_text');
    end = sym('_end');
  });
  after(() => elf?.close());

  function sym(name: string): bigint {
    const s = syms.lookup(name)[0];
    assert.ok(s, name);
    return s.value;
  }

  /** A guest whose kernel runs `offset` above its link addresses, loaded at physical `physBase` + 16 MiB. */
  function guest(offset: bigint, opts: { kernelMapped?: boolean; withTables?: boolean; la57?: boolean } = {}): Guest {
    const physBase = 0x2c00000n;
    const tables = new Map<bigint, Buffer>();
    const regs: Record<string, bigint> = {};
    if (opts.withTables !== false) {
      const page = (): Buffer => Buffer.alloc(4096);
      const pgd = 0x100000n;
      const p4d = 0x101000n;
      const pud = 0x102000n;
      const pmd = 0x103000n;
      const entry = (b: Buffer, i: bigint, v: bigint): void => {
        b.writeBigUInt64LE(v, Number(i) * 8);
      };
      const [gPgd, gP4d, gPud, gPmd] = [page(), page(), page(), page()];
      if (opts.la57) {
        entry(gPgd, (MAP >> 48n) & 511n, p4d | 0x63n);
        entry(gP4d, (MAP >> 39n) & 511n, pud | 0x63n);
      } else entry(gPgd, (MAP >> 39n) & 511n, pud | 0x63n);
      entry(gPud, (MAP >> 30n) & 511n, pmd | 0x63n);
      // __startup_64 leaves the 2 MiB entries from _text to the image's end present, and none below.
      for (let va = text + offset; va < end + offset; va += MiB2) entry(gPmd, ((va - MAP) / MiB2) & 511n, (physBase + (va - offset - MAP)) | 0xe3n);
      tables.set(pgd, gPgd).set(p4d, gP4d).set(pud, gPud).set(pmd, gPmd);
      // PCID 5, and PTI's user copy of the root (bit 12) as a user-mode stop has it.
      regs.cr3 = pgd | 0x1000n | 5n;
      regs.cr0 = 0x80050033n;
      regs.cr4 = opts.la57 ? 1n << 12n : 0n;
    }
    return { offset, physBase, kernelMapped: opts.kernelMapped !== false, regs, tables };
  }

  function probe(g: Guest, reads: string[] = []): KaslrProbe {
    const kernelRange = (a: bigint, n: number): boolean => a >= text + g.offset && a + BigInt(n) <= end + g.offset;
    return {
      arch: 'x86_64',
      register: async (name) => g.regs[name],
      readVirtual: async (a, n) => {
        reads.push(`v:${a.toString(16)}`);
        return g.kernelMapped && kernelRange(a, n) ? elf.readVirtual(a - g.offset, n) : undefined;
      },
      readPhysical: async (a, n) => {
        reads.push(`p:${a.toString(16)}`);
        const pageAt = a & ~0xfffn;
        const table = g.tables.get(pageAt);
        if (table) return table.subarray(Number(a - pageAt), Number(a - pageAt) + n);
        const link = a - g.physBase + MAP;
        return link >= text && link + BigInt(n) <= end ? elf.readVirtual(link, n) : undefined;
      },
      symbol: (name) => syms.lookup(name)[0]?.value,
      fileBytes: (a, n) => elf.readVirtual(a, n),
    };
  }

  it('walks the page tables to _text, with phys_base, in a few reads', async () => {
    const offset = 37n * MiB2;
    const reads: string[] = [];
    const r = await findKaslrOffset(probe(guest(offset), reads));
    assert.deepEqual(r, { offset, method: 'page tables', physBase: 0x2c00000n });
    assert.ok(reads.length <= 5, reads.join(' '));
  });

  it('does the same with 5-level paging', async () => {
    const r = await findKaslrOffset(probe(guest(12n * MiB2, { la57: true })));
    assert.equal(r?.offset, 12n * MiB2);
  });

  it('proves it through physical memory when a user-mode stop under PTI cannot see the kernel', async () => {
    const r = await findKaslrOffset(probe(guest(200n * MiB2, { kernelMapped: false })));
    assert.deepEqual(r, { offset: 200n * MiB2, method: 'page tables', physBase: 0x2c00000n });
  });

  it('finds it from a PC in kernel text when there are no page tables to walk', async () => {
    const offset = 5n * MiB2;
    const r = await findKaslrOffset(probe(guest(offset, { withTables: false })), sym('kernel_clone') + offset + 0x17n);
    assert.deepEqual(r, { offset, method: 'pc' });
  });

  it('probes the 2 MiB slots of the 1 GiB window as the last resort', async () => {
    const offset = 300n * MiB2;
    const r = await findKaslrOffset(probe(guest(offset, { withTables: false })));
    assert.deepEqual(r, { offset, method: 'probe' });
  });

  it('finds 0 for a kernel at its link addresses (nokaslr)', async () => {
    const r = await findKaslrOffset(probe(guest(0n)));
    assert.equal(r?.offset, 0n);
  });

  it('finds nothing when the banner is nowhere (the kernel not running yet)', async () => {
    const g = guest(9n * MiB2, { withTables: false, kernelMapped: false });
    assert.equal(await findKaslrOffset(probe(g), 0xfff0n), undefined);
  });

  it('reads nothing but CR0 at the reset vector, where paging is off', async () => {
    const g = guest(9n * MiB2);
    g.regs.cr0 = 0x60000010n;
    const reads: string[] = [];
    assert.equal(await findKaslrOffset(probe(g, reads), 0xfff0n), undefined);
    assert.deepEqual(reads, []);
  });
});
