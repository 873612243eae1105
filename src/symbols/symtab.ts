/**
 * Name → address and address → function+offset lookups over an ELF symbol table. The table
 * stays as the raw .symtab and .strtab bytes: a distribution vmlinux has about 150,000
 * symbols, and making an object of each cost more than the whole breakpoint lookup. A name
 * is found by searching the string table's bytes; the address order used to describe PCs is
 * a typed array built on first use.
 */
import { ElfError, SHT_SYMTAB, type ElfFile, type ElfSymbol } from './elf';

export interface Location {
  symbol: ElfSymbol;
  offset: bigint;
}

const ENTRY = 24;
const STT_OBJECT = 1;
const STT_FUNC = 2;

export class SymbolTable {
  /**
   * Entry indexes of code symbols sorted by address. Data objects are left out: per-CPU
   * variables live at small offsets from 0 and would otherwise "name" real-mode addresses.
   */
  private order: Uint32Array | undefined;
  private values: BigUint64Array | undefined;
  private dataOrder: Uint32Array | undefined;
  private dataValues: BigUint64Array | undefined;

  private constructor(
    private readonly syms: Buffer,
    private readonly strs: Buffer,
  ) {}

  static fromElf(elf: ElfFile): SymbolTable {
    const symtab = elf.sections.find((s) => s.type === SHT_SYMTAB);
    if (!symtab) return new SymbolTable(Buffer.alloc(0), Buffer.alloc(0));
    const strsec = elf.sections[symtab.link];
    if (!strsec) throw new ElfError(elf.path, '.symtab has no string table');
    return new SymbolTable(elf.sectionData(symtab), elf.sectionData(strsec));
  }

  /** The number of symbol entries (0 for a stripped file). */
  get size(): number {
    return Math.max(0, this.syms.length / ENTRY - 1);
  }

  private entry(i: number): ElfSymbol {
    const o = i * ENTRY;
    const info = this.syms[o + 4];
    const t = info & 0xf;
    const b = info >> 4;
    const nameOff = this.syms.readUInt32LE(o);
    const end = this.strs.indexOf(0, nameOff);
    return {
      name: this.strs.toString('latin1', nameOff, end < 0 ? this.strs.length : end),
      value: this.syms.readBigUInt64LE(o + 8),
      size: Number(this.syms.readBigUInt64LE(o + 16)),
      type: t === STT_FUNC ? 'func' : t === STT_OBJECT ? 'object' : 'other',
      bind: b === 0 ? 'local' : b === 1 ? 'global' : b === 2 ? 'weak' : 'other',
    };
  }

  private words(): Uint32Array {
    // Little-endian hosts only read st_name this way; Node runs on none other we support.
    if (this.syms.byteOffset % 4 === 0) return new Uint32Array(this.syms.buffer, this.syms.byteOffset, this.syms.length >> 2);
    return new Uint32Array(Uint8Array.from(this.syms).buffer);
  }

  private defined(i: number): boolean {
    return this.syms.readUInt16LE(i * ENTRY + 6) !== 0;
  }

  /** Every symbol with this name, functions first (a static function may exist in several units). */
  lookup(name: string): ElfSymbol[] {
    if (!name) return [];
    // String tables share tails ("foo" can point into "bar_foo"), so every place the bytes
    // occur followed by NUL is a possible st_name.
    const needle = Buffer.from(name + '\0', 'latin1');
    const offsets = new Set<number>();
    for (let p = this.strs.indexOf(needle); p >= 0; p = this.strs.indexOf(needle, p + 1)) offsets.add(p);
    if (!offsets.size) return [];
    const out: ElfSymbol[] = [];
    // st_name is the first word of each 24-byte entry: scan it as 32-bit words, not bytes.
    const words = this.words();
    const single = offsets.size === 1 ? [...offsets][0] : -1;
    for (let w = 6, i = 1; i <= this.size; i++, w += 6) {
      const n = words[w];
      if ((single >= 0 ? n === single : offsets.has(n)) && this.defined(i)) out.push(this.entry(i));
    }
    return out.sort((a, b) => rank(a) - rank(b));
  }

  private sorted(): { order: Uint32Array; values: BigUint64Array } {
    if (!this.order || !this.values) {
      const picked: number[] = [];
      for (let i = 1; i <= this.size; i++) {
        const o = i * ENTRY;
        const t = this.syms[o + 4] & 0xf;
        if (!this.defined(i) || this.syms.readUInt32LE(o) === 0) continue;
        const value = this.syms.readBigUInt64LE(o + 8);
        // Sized untyped symbols are assembly code (SYM_CODE_START/END, e.g. secondary_startup_64).
        if (value !== 0n && (t === STT_FUNC || (t !== STT_OBJECT && this.syms.readBigUInt64LE(o + 16) > 0n))) picked.push(i);
      }
      const all = new BigUint64Array(this.size + 1);
      for (const i of picked) all[i] = this.syms.readBigUInt64LE(i * ENTRY + 8);
      const ranks = new Uint8Array(this.size + 1);
      for (const i of picked) ranks[i] = rankAt(this.syms, i);
      picked.sort((a, b) => (all[a] < all[b] ? -1 : all[a] > all[b] ? 1 : ranks[a] - ranks[b]));
      this.order = Uint32Array.from(picked);
      this.values = BigUint64Array.from(picked, (i) => all[i]);
    }
    return { order: this.order, values: this.values };
  }

  /** The function covering `addr`: the closest one at or below it, preferring one whose size covers it. */
  locate(addr: bigint): Location | undefined {
    const { order, values } = this.sorted();
    const best = lastAtOrBelow(values, addr);
    if (best < 0) return undefined;
    // Several symbols can share an address; walk back to prefer a sized function that covers addr.
    let pick = this.entry(order[best]);
    for (let i = best - 1; i >= 0 && values[i] === pick.value; i--) {
      const s = this.entry(order[i]);
      if (covers(s, addr) && (pick.type !== 'func' || !covers(pick, addr) || s.type === 'func')) pick = s;
    }
    // Past the end of a sized function means code we have no symbol for.
    if (pick.size > 0 && !covers(pick, addr)) return undefined;
    if (pick.size === 0 && addr - pick.value > 0x1000n) return undefined;
    return { symbol: pick, offset: addr - pick.value };
  }

  /**
   * The data object (a global or static variable) whose bytes hold `addr`. Only objects in
   * the kernel's upper half count: per-CPU variables have small section-relative values.
   */
  locateData(addr: bigint): Location | undefined {
    if (!this.dataOrder || !this.dataValues) {
      const picked: number[] = [];
      // Upper-half addresses as signed doubles are exact (|v| < 2^47) and sort natively fast.
      const key = new Float64Array(this.size + 1);
      for (let i = 1; i <= this.size; i++) {
        const o = i * ENTRY;
        if ((this.syms[o + 4] & 0xf) !== STT_OBJECT || !this.defined(i)) continue;
        const v = this.syms.readBigUInt64LE(o + 8);
        if (v < 0xffff800000000000n || this.syms.readBigUInt64LE(o + 16) === 0n) continue;
        key[i] = Number(BigInt.asIntN(64, v));
        picked.push(i);
      }
      picked.sort((a, b) => key[a] - key[b] || rankAt(this.syms, a) - rankAt(this.syms, b));
      this.dataOrder = Uint32Array.from(picked);
      this.dataValues = BigUint64Array.from(picked, (i) => this.syms.readBigUInt64LE(i * ENTRY + 8));
    }
    const values = this.dataValues;
    let best = lastAtOrBelow(values, addr);
    // Objects can share an address (aliases); take the first at that address that covers addr.
    while (best > 0 && values[best - 1] === values[best]) best--;
    for (let i = best; i >= 0 && i < values.length && values[i] <= addr; i++) {
      const s = this.entry(this.dataOrder[i]);
      if (covers(s, addr)) return { symbol: s, offset: addr - s.value };
      if (i + 1 < values.length && values[i + 1] !== values[best]) break;
    }
    return undefined;
  }

  /** `name+0xoff`, or the bare address when no symbol is near. */
  describe(addr: bigint): string {
    const loc = this.locate(addr);
    if (!loc) return `0x${addr.toString(16)}`;
    return loc.offset === 0n ? loc.symbol.name : `${loc.symbol.name}+0x${loc.offset.toString(16)}`;
  }
}

/** Index of the last value <= addr in an ascending array, or -1. */
function lastAtOrBelow(values: BigUint64Array, addr: bigint): number {
  let lo = 0;
  let hi = values.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid] <= addr) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

function covers(s: ElfSymbol, addr: bigint): boolean {
  return addr >= s.value && addr < s.value + BigInt(Math.max(1, s.size));
}

function rank(s: ElfSymbol): number {
  return (s.type === 'func' ? 0 : s.type === 'object' ? 1 : 2) * 3 + (s.bind === 'global' ? 0 : s.bind === 'weak' ? 1 : 2);
}

function rankAt(syms: Buffer, i: number): number {
  const info = syms[i * ENTRY + 4];
  const t = info & 0xf;
  const b = info >> 4;
  return (t === STT_FUNC ? 0 : t === STT_OBJECT ? 1 : 2) * 3 + (b === 1 ? 0 : b === 2 ? 1 : 2);
}
