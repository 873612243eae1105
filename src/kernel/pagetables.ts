/**
 * Virtual to physical, walked over guest-physical reads as the MMU walks it, each level kept
 * for the Translate Address command:
 * - x86_64: 4 or 5 levels (CR4.LA57), 1 GiB and 2 MiB pages; CR3's PCID bits (CR4.PCIDE) and
 *   PTI's user-copy bit (bit 12: the user PGD sits 4 KiB above the kernel's) are not address bits;
 * - arm64: TTBR0/TTBR1 by the address's top bit, the granule (4K/16K/64K) and the number of
 *   levels from TCR_EL1 (TG0/TG1, T0SZ/T1SZ), block entries at any level but the last;
 * - riscv64: Sv39/Sv48/Sv57 from satp.MODE, leaves at any level (R or X set).
 */

export interface WalkLevel {
  /** 0 is the root. */
  level: number;
  /** What the level is called in the arch's manuals (PML4, PUD, L1, VPN[2], …). */
  name: string;
  index: number;
  /** Physical address of the entry read. */
  entryAddress: bigint;
  entry: bigint;
}

export interface Translation {
  virtual: bigint;
  /** Undefined when a level's entry is not present (`levels` ends with it). */
  physical?: bigint;
  /** The size of the page (or block) that maps it. */
  pageSize?: bigint;
  levels: WalkLevel[];
  /** Why there is no physical address. */
  fault?: string;
}

export type PhysRead = (addr: bigint, length: number) => Promise<Buffer | undefined>;

/** The MMU state of a vCPU, by register name as QEMU's target description has it. */
export interface MmuRegisters {
  arch: string;
  get(name: string): Promise<bigint | undefined>;
}

const X86_PHYS = 0x000ffffffffff000n;

async function entryAt(read: PhysRead, addr: bigint): Promise<bigint | undefined> {
  const b = await read(addr, 8);
  return b && b.length === 8 ? b.readBigUInt64LE(0) : undefined;
}

/** x86_64. `root` is CR3 (its low bits are dropped); `la57` is CR4.LA57. */
export async function walkX86(read: PhysRead, root: bigint, la57: boolean, va: bigint): Promise<Translation> {
  const names = la57 ? ['PML5', 'PML4', 'PDPT', 'PD', 'PT'] : ['PML4', 'PDPT', 'PD', 'PT'];
  const out: Translation = { virtual: va, levels: [] };
  let table = root & X86_PHYS;
  for (let level = 0; level < names.length; level++) {
    const shift = BigInt(12 + 9 * (names.length - 1 - level));
    const index = Number((va >> shift) & 511n);
    const entryAddress = table + BigInt(index) * 8n;
    const entry = await entryAt(read, entryAddress);
    if (entry === undefined) return { ...out, fault: `the ${names[level]} at physical 0x${table.toString(16)} cannot be read` };
    out.levels.push({ level, name: names[level], index, entryAddress, entry });
    if ((entry & 1n) === 0n) return { ...out, fault: `not present in the ${names[level]}` };
    const leaf = level === names.length - 1 || ((names[level] === 'PDPT' || names[level] === 'PD') && (entry & 0x80n) !== 0n);
    if (leaf) {
      const size = 1n << shift;
      return { ...out, physical: (entry & X86_PHYS & ~(size - 1n)) | (va & (size - 1n)), pageSize: size };
    }
    table = entry & X86_PHYS;
  }
  return { ...out, fault: 'no leaf entry' };
}

/**
 * arm64 with a `granule` of 4096, 16384 or 65536 and a `vaBits`-bit region (64 - TnSZ). The
 * walk starts at the level that resolves the top bits, as the MMU does.
 */
export async function walkArm64(read: PhysRead, root: bigint, granule: number, vaBits: number, va: bigint): Promise<Translation> {
  const pageShift = granule === 65536 ? 16 : granule === 16384 ? 14 : 12;
  const bitsPer = pageShift - 3;
  const levelsNeeded = Math.ceil((vaBits - pageShift) / bitsPer);
  const first = 4 - levelsNeeded;
  const out: Translation = { virtual: va, levels: [] };
  const addrMask = ((1n << 48n) - 1n) & ~((1n << BigInt(pageShift)) - 1n);
  let table = root & ((1n << 48n) - 1n) & ~1n;
  for (let level = first; level <= 3; level++) {
    const shift = pageShift + bitsPer * (3 - level);
    const width = level === first ? vaBits - shift : bitsPer;
    const index = Number((va >> BigInt(shift)) & ((1n << BigInt(width)) - 1n));
    const entryAddress = table + BigInt(index) * 8n;
    const entry = await entryAt(read, entryAddress);
    const name = `L${level}`;
    if (entry === undefined) return { ...out, fault: `the ${name} table at physical 0x${table.toString(16)} cannot be read` };
    out.levels.push({ level: level - first, name, index, entryAddress, entry });
    if ((entry & 1n) === 0n) return { ...out, fault: `not valid in ${name}` };
    const isTable = (entry & 2n) !== 0n && level < 3;
    if (!isTable) {
      if (level === 3 && (entry & 2n) === 0n) return { ...out, fault: `reserved entry in ${name}` };
      const size = 1n << BigInt(shift);
      return { ...out, physical: (entry & addrMask & ~(size - 1n)) | (va & (size - 1n)), pageSize: size };
    }
    table = entry & addrMask;
  }
  return { ...out, fault: 'no leaf entry' };
}

/** riscv64 Sv39/48/57 (`levels` 3, 4 or 5); `satp`'s PPN is the root. */
export async function walkRiscv(read: PhysRead, satp: bigint, levels: number, va: bigint): Promise<Translation> {
  const out: Translation = { virtual: va, levels: [] };
  let table = (satp & ((1n << 44n) - 1n)) << 12n;
  for (let level = 0; level < levels; level++) {
    const shift = BigInt(12 + 9 * (levels - 1 - level));
    const index = Number((va >> shift) & 511n);
    const entryAddress = table + BigInt(index) * 8n;
    const entry = await entryAt(read, entryAddress);
    const name = `VPN[${levels - 1 - level}]`;
    if (entry === undefined) return { ...out, fault: `the table at physical 0x${table.toString(16)} cannot be read` };
    out.levels.push({ level, name, index, entryAddress, entry });
    if ((entry & 1n) === 0n) return { ...out, fault: `not valid at ${name}` };
    const ppn = (entry >> 10n) & ((1n << 44n) - 1n);
    if ((entry & 0xan) !== 0n) {
      const size = 1n << shift;
      return { ...out, physical: ((ppn << 12n) & ~(size - 1n)) | (va & (size - 1n)), pageSize: size };
    }
    table = ppn << 12n;
  }
  return { ...out, fault: 'no leaf entry' };
}

/**
 * Translate `va` as the vCPU's MMU would with the root `roots` chooses (the registers', or a
 * kernel root given in their place), reading the registers that say how.
 */
export async function translate(read: PhysRead, regs: MmuRegisters, va: bigint, root?: bigint): Promise<Translation> {
  if (regs.arch === 'x86_64') {
    const cr3 = root ?? (await regs.get('cr3'));
    const cr4 = (await regs.get('cr4')) ?? 0n;
    if (cr3 === undefined) return { virtual: va, levels: [], fault: 'no CR3' };
    return walkX86(read, cr3, ((cr4 >> 12n) & 1n) === 1n, va);
  }
  if (regs.arch === 'aarch64') {
    const high = va >> 63n === 1n;
    const ttbr = root ?? (await regs.get(high ? 'TTBR1_EL1' : 'TTBR0_EL1'));
    const tcr = (await regs.get('TCR_EL1')) ?? 0n;
    if (ttbr === undefined) return { virtual: va, levels: [], fault: `no ${high ? 'TTBR1_EL1' : 'TTBR0_EL1'}` };
    const tsz = Number(high ? (tcr >> 16n) & 63n : tcr & 63n);
    const tg = Number(high ? (tcr >> 30n) & 3n : (tcr >> 14n) & 3n);
    // TG1 encodes 16K=1, 4K=2, 64K=3; TG0 encodes 4K=0, 64K=1, 16K=2.
    const granule = high ? ({ 1: 16384, 2: 4096, 3: 65536 } as Record<number, number>)[tg] ?? 4096 : ({ 0: 4096, 1: 65536, 2: 16384 } as Record<number, number>)[tg] ?? 4096;
    // TTBR's BADDR keeps bits 47:1 here (52-bit PAs put more bits low); ASID in 63:48.
    return walkArm64(read, ttbr & ((1n << 48n) - 2n), granule, 64 - (tsz || 16), va);
  }
  if (regs.arch === 'riscv64') {
    const satp = root ?? (await regs.get('satp'));
    if (satp === undefined) return { virtual: va, levels: [], fault: 'no satp' };
    const mode = Number(satp >> 60n);
    const levels = ({ 8: 3, 9: 4, 10: 5 } as Record<number, number>)[mode];
    if (!levels) return { virtual: va, levels: [], fault: mode === 0 ? 'satp.MODE is Bare: no translation' : `satp.MODE ${mode} is not Sv39/48/57` };
    return walkRiscv(read, satp, levels, va);
  }
  return { virtual: va, levels: [], fault: `no page-table walker for ${regs.arch}` };
}
