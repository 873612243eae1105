/** Name → address and address → function+offset lookups over an ELF symbol table. */
import { ElfFile, ElfSymbol } from './elf';

export interface Location {
  symbol: ElfSymbol;
  offset: bigint;
}

export class SymbolTable {
  private readonly byName = new Map<string, ElfSymbol[]>();
  /**
   * Code symbols sorted by address, for describing PCs. Data objects are left out: per-CPU
   * variables live at small offsets from 0 and would otherwise "name" real-mode addresses.
   */
  private sortedCache: ElfSymbol[] | undefined;

  constructor(private readonly all: ElfSymbol[]) {
    const symbols = all;
    for (const s of symbols) {
      if (!s.name) continue;
      const list = this.byName.get(s.name);
      if (list) list.push(s);
      else this.byName.set(s.name, [s]);
    }
  }

  /** Sorted on first use: resolving a breakpoint by name never pays for it. */
  private get sorted(): ElfSymbol[] {
    this.sortedCache ??= this.all
      // Sized untyped symbols are assembly code (SYM_CODE_START/END, e.g. secondary_startup_64).
      .filter((s) => s.name && s.value !== 0n && (s.type === 'func' || (s.type === 'other' && s.size > 0)))
      .sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : rank(a) - rank(b)));
    return this.sortedCache;
  }

  static fromElf(elf: ElfFile): SymbolTable {
    return new SymbolTable(elf.symbols());
  }

  get size(): number {
    return this.byName.size;
  }

  /** Every symbol with this name, functions first (a static function may exist in several units). */
  lookup(name: string): ElfSymbol[] {
    return [...(this.byName.get(name) ?? [])].sort((a, b) => rank(a) - rank(b));
  }

  /** The function covering `addr`: the closest one at or below it, preferring one whose size covers it. */
  locate(addr: bigint): Location | undefined {
    let lo = 0;
    let hi = this.sorted.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid].value <= addr) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (best < 0) return undefined;
    // Several symbols can share an address; walk back to prefer a sized function that covers addr.
    let pick = this.sorted[best];
    for (let i = best; i >= 0 && this.sorted[i].value === pick.value; i--) {
      const s = this.sorted[i];
      if (s.type !== 'object' && covers(s, addr) && (pick.type !== 'func' || !covers(pick, addr) || s.type === 'func')) pick = s;
    }
    // Past the end of a sized function means code we have no symbol for.
    if (pick.size > 0 && !covers(pick, addr)) return undefined;
    if (pick.size === 0 && addr - pick.value > 0x1000n) return undefined;
    return { symbol: pick, offset: addr - pick.value };
  }

  /** `name+0xoff`, or the bare address when no symbol is near. */
  describe(addr: bigint): string {
    const loc = this.locate(addr);
    if (!loc) return `0x${addr.toString(16)}`;
    return loc.offset === 0n ? loc.symbol.name : `${loc.symbol.name}+0x${loc.offset.toString(16)}`;
  }
}

function covers(s: ElfSymbol, addr: bigint): boolean {
  return addr >= s.value && addr < s.value + BigInt(Math.max(1, s.size));
}

function rank(s: ElfSymbol): number {
  return (s.type === 'func' ? 0 : s.type === 'object' ? 1 : 2) * 3 + (s.bind === 'global' ? 0 : s.bind === 'weak' ? 1 : 2);
}
