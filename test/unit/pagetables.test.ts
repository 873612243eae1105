/**
 * The page-table walkers over tables laid out in a fake physical memory the way each MMU
 * reads them; the integration test (pti.test.ts) walks a real guest's and checks the bytes.
 */
import * as assert from 'node:assert/strict';
import { translate, walkArm64, walkRiscv, walkX86, type PhysRead } from '../../src/kernel/pagetables';

class Phys {
  private readonly words = new Map<bigint, bigint>();
  set(addr: bigint, value: bigint): void {
    this.words.set(addr, value);
  }
  read: PhysRead = async (addr, n) => {
    if (n !== 8) return undefined;
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(this.words.get(addr) ?? 0n);
    return b;
  };
}

const idx = (va: bigint, shift: number): bigint => (va >> BigInt(shift)) & 511n;

describe('page-table walkers', () => {
  it('x86_64 4-level: a 4 KiB page, a 2 MiB page, and a hole named by its level', async () => {
    const m = new Phys();
    const va = 0xffff888000123456n;
    const pml4 = 0x1000n;
    m.set(pml4 + idx(va, 39) * 8n, 0x2000n | 0x63n);
    m.set(0x2000n + idx(va, 30) * 8n, 0x3000n | 0x63n);
    m.set(0x3000n + idx(va, 21) * 8n, 0x4000n | 0x63n);
    m.set(0x4000n + idx(va, 12) * 8n, 0xabcde000n | 0x63n | (1n << 63n));
    // CR3's PCID (low 12 bits) is not part of the root.
    const t = await walkX86(m.read, pml4 | 0x5n, false, va);
    assert.equal(t.physical, 0xabcde456n);
    assert.equal(t.pageSize, 4096n);
    assert.deepEqual(
      t.levels.map((l) => l.name),
      ['PML4', 'PDPT', 'PD', 'PT'],
    );
    const big = va + 0x200000n;
    m.set(0x3000n + idx(big, 21) * 8n, 0x40000000n | 0xe3n);
    const b = await walkX86(m.read, pml4, false, big);
    assert.equal(b.physical, 0x40000000n + (big & 0x1fffffn));
    assert.equal(b.pageSize, 0x200000n);
    const hole = await walkX86(m.read, pml4, false, 0xffffc90000000000n);
    assert.equal(hole.physical, undefined);
    assert.equal(hole.fault, 'not present in the PML4');
  });

  it('x86_64 5-level (LA57) walks PML5 first', async () => {
    const m = new Phys();
    const va = 0xff11000000001000n;
    m.set(0x1000n + idx(va, 48) * 8n, 0x2000n | 1n);
    m.set(0x2000n + idx(va, 39) * 8n, 0x3000n | 1n);
    m.set(0x3000n + idx(va, 30) * 8n, 0x80000000n | 0x81n);
    const t = await walkX86(m.read, 0x1000n, true, va);
    assert.deepEqual(
      t.levels.map((l) => l.name),
      ['PML5', 'PML4', 'PDPT'],
    );
    assert.equal(t.physical, 0x80000000n + (va & 0x3fffffffn));
    assert.equal(t.pageSize, 1n << 30n);
  });

  it('arm64 4 KiB granule, 48-bit VA: four levels, and a level 2 block', async () => {
    const m = new Phys();
    const va = 0xffffffc008123456n;
    m.set(0x10000n + idx(va, 39) * 8n, 0x11000n | 3n);
    m.set(0x11000n + idx(va, 30) * 8n, 0x12000n | 3n);
    m.set(0x12000n + idx(va, 21) * 8n, 0x13000n | 3n);
    m.set(0x13000n + idx(va, 12) * 8n, 0x40123000n | 0x703n);
    const t = await walkArm64(m.read, 0x10000n, 4096, 48, va);
    assert.equal(t.physical, 0x40123456n);
    assert.deepEqual(
      t.levels.map((l) => l.name),
      ['L0', 'L1', 'L2', 'L3'],
    );
    m.set(0x12000n + idx(va, 21) * 8n, 0x40200000n | 0x701n);
    const b = await walkArm64(m.read, 0x10000n, 4096, 48, va);
    assert.equal(b.physical, 0x40200000n + (va & 0x1fffffn));
    assert.equal(b.pageSize, 0x200000n);
  });

  it('arm64 39-bit VA starts at level 1; 64 KiB granule with 42 bits needs two levels', async () => {
    const m = new Phys();
    const va = 0xffffffc000201000n;
    m.set(0x20000n + ((va >> 30n) & 511n) * 8n, 0x21000n | 3n);
    m.set(0x21000n + idx(va, 21) * 8n, 0x22000n | 3n);
    m.set(0x22000n + idx(va, 12) * 8n, 0x50000000n | 3n);
    const t = await walkArm64(m.read, 0x20000n, 4096, 39, va);
    assert.equal(t.levels[0].name, 'L1');
    assert.equal(t.physical, 0x50000000n);
    const k = new Phys();
    const va64 = 0x3ff0012345n;
    k.set(0x30000n + ((va64 >> 29n) & 0x1fffn) * 8n, 0x40000n | 3n);
    k.set(0x40000n + ((va64 >> 16n) & 0x1fffn) * 8n, 0x60010000n | 3n);
    const g = await walkArm64(k.read, 0x30000n, 65536, 42, va64);
    assert.deepEqual(
      g.levels.map((l) => l.name),
      ['L2', 'L3'],
    );
    assert.equal(g.physical, 0x60010000n + (va64 & 0xffffn));
  });

  it('riscv64 Sv39 with a megapage leaf, and satp.MODE chosen by translate()', async () => {
    const m = new Phys();
    const va = 0xffffffff80201234n;
    const root = 0x80a00000n;
    m.set(root + ((va >> 30n) & 511n) * 8n, ((0x80a01000n >> 12n) << 10n) | 1n);
    m.set(0x80a01000n + idx(va, 21) * 8n, ((0x80200000n >> 12n) << 10n) | 0xcfn);
    const t = await walkRiscv(m.read, root >> 12n, 3, va);
    assert.equal(t.physical, 0x80200000n + (va & 0x1fffffn));
    assert.deepEqual(
      t.levels.map((l) => l.name),
      ['VPN[2]', 'VPN[1]'],
    );
    const satp = (8n << 60n) | (root >> 12n);
    const viaRegs = await translate(m.read, { arch: 'riscv64', get: async (n) => (n === 'satp' ? satp : undefined) }, va);
    assert.equal(viaRegs.physical, t.physical);
    const bare = await translate(m.read, { arch: 'riscv64', get: async () => 0n }, va);
    assert.match(bare.fault ?? '', /Bare/);
  });
});
