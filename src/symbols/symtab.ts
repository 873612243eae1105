/**
 * Name → address and address → function+offset lookups over an ELF symbol table. The table
 * stays as the raw .symtab and .strtab bytes: a distribution vmlinux has about 150,000
 * symbols, and making an object of each cost more than the whole breakpoint lookup. A name
 * is found by searching the string table's bytes; the address order used to describe PCs is
 * a typed array built on first use. A table made with inFile leaves the tables (6 MB on a
 * distribution vmlinux) in the file until first needed, and its first name lookup streams
 * them through a small buffer instead, which costs a cold `qkd where` less than taking them
 * into memory.
 */
import { ElfError, SHT_NOBITS, SHT_SYMTAB, type ElfFile, type ElfSection, type ElfSymbol } from './elf';

export interface Location {
  symbol: ElfSymbol;
  offset: bigint;
}

const ENTRY = 24;
const STT_OBJECT = 1;
const STT_FUNC = 2;
/** The streamed lookup's read size: a multiple of ENTRY, so no entry straddles two reads. */
const CHUNK = ENTRY * 10_923;

interface Tables {
  syms: Buffer;
  strs: Buffer;
}

/**
 * Symbol lookups as the engine uses them: one table (vmlinux) or the union of every loaded
 * image's (src/symbols/imageset.ts).
 */
export interface SymbolLookup {
  readonly size: number;
  /** Every symbol with this name, functions first. */
  lookup(name: string): ElfSymbol[];
  /** The function covering addr. */
  locate(addr: bigint): Location | undefined;
  /** The data object whose bytes hold addr. */
  locateData(addr: bigint): Location | undefined;
  /** `name+0xoff` (with ` [module]` for a module's symbol), or the bare address. */
  describe(addr: bigint): string;
}

export class SymbolTable implements SymbolLookup {
  /**
   * Entry indexes of code symbols sorted by address. Data objects are left out: per-CPU
   * variables live at small offsets from 0 and would otherwise "name" real-mode addresses.
   */
  private order: Uint32Array | undefined;
  private values: BigUint64Array | undefined;
  private dataOrder: Uint32Array | undefined;
  private dataValues: BigUint64Array | undefined;
  private streamedOnce = false;
  /**
   * Names looked up before: a lookup scans the string table (megabytes for a vmlinux), and the
   * kernel-awareness code asks for the same few names (init_task, runqueues) at every stop.
   */
  private readonly named = new Map<string, readonly ElfSymbol[]>();

  private constructor(
    private loaded: Tables | undefined,
    /** Where the tables are read from, until they are. */
    private readonly file?: { elf: ElfFile; symtab: ElfSection; strtab: ElfSection },
  ) {}

  /** The tables read in now: for a debugger session, whose file may be closed before its last lookup. */
  static fromElf(elf: ElfFile): SymbolTable {
    const t = SymbolTable.inFile(elf);
    t.tables();
    return t;
  }

  /**
   * The tables left in the file until they are needed, for a short-lived tool that keeps the
   * file open throughout (`qkd where`): its one name lookup streams them instead.
   */
  static inFile(elf: ElfFile): SymbolTable {
    const symtab = elf.sections.find((s) => s.type === SHT_SYMTAB);
    if (!symtab) return new SymbolTable({ syms: Buffer.alloc(0), strs: Buffer.alloc(0) });
    const strtab = elf.sections[symtab.link];
    if (!strtab) throw new ElfError(elf.path, '.symtab has no string table');
    return new SymbolTable(undefined, { elf, symtab, strtab });
  }

  private get syms(): Buffer {
    return this.tables().syms;
  }

  private get strs(): Buffer {
    return this.tables().strs;
  }

  private tables(): Tables {
    if (!this.loaded) {
      const { elf, symtab, strtab } = this.file as NonNullable<SymbolTable['file']>;
      this.loaded = { syms: elf.sectionData(symtab), strs: elf.sectionData(strtab) };
    }
    return this.loaded;
  }

  /** The number of symbol entries (0 for a stripped file). */
  get size(): number {
    const bytes = this.loaded ? this.loaded.syms.length : (this.file?.symtab.size ?? 0);
    // Whole entries only: a size that is no multiple of 24 (corrupt) must not make typed-array lengths fractional.
    return Math.max(0, Math.floor(bytes / ENTRY) - 1);
  }

  private entry(i: number): ElfSymbol {
    const nameOff = this.syms.readUInt32LE(i * ENTRY);
    const end = this.strs.indexOf(0, nameOff);
    return decode(this.syms, i * ENTRY, this.strs.toString('latin1', nameOff, end < 0 ? this.strs.length : end));
  }

  /** Every symbol with this name, functions first (a static function may exist in several units). */
  lookup(name: string): ElfSymbol[] {
    if (!name) return [];
    const known = this.named.get(name);
    if (known) return [...known];
    const found = this.search(name);
    // Bounded: a user's expressions could otherwise grow it without end.
    if (this.named.size >= 8192) this.named.clear();
    this.named.set(name, found);
    return [...found];
  }

  private search(name: string): ElfSymbol[] {
    const name0 = Buffer.from(name + '\0', 'latin1');
    const file = this.file;
    // Only the first: once a second name is asked for, more will be, and a search of the
    // tables in memory costs less than streaming them again.
    const stream = !this.loaded && !this.streamedOnce && file && file.symtab.type !== SHT_NOBITS && file.strtab.type !== SHT_NOBITS;
    this.streamedOnce = true;
    const hits = stream ? this.streamed(name0, file) : this.inMemory(name0);
    // Table order, then by kind: the order the symbols had before they were ranked.
    return hits.sort((a, b) => a[0] - b[0]).map((h) => h[1]).sort((a, b) => rank(a) - rank(b));
  }

  /**
   * String tables share tails ("foo" can point into "bar_foo"), so every place the name's
   * bytes occur followed by NUL is a possible st_name. st_name is the first word of each
   * entry: the symbol table is searched natively for it too, rather than in a loop over
   * every entry, which in a cold process runs interpreted; a hit that is not at an entry's
   * start is some other field's bytes.
   */
  private inMemory(name0: Buffer): Array<[number, ElfSymbol]> {
    const { syms, strs } = this.tables();
    const offsets = new Set<number>();
    for (let p = strs.indexOf(name0); p >= 0; p = strs.indexOf(name0, p + 1)) offsets.add(p);
    const out: Array<[number, ElfSymbol]> = [];
    for (const off of offsets) {
      for (const o of entriesNamed(syms, off, 0)) {
        const i = o / ENTRY;
        if (i <= this.size && defined(syms, i)) out.push([i, this.entry(i)]);
      }
    }
    return out;
  }

  /** As inMemory, reading the tables from the file a chunk at a time into one buffer. */
  private streamed(name0: Buffer, file: NonNullable<SymbolTable['file']>): Array<[number, ElfSymbol]> {
    const { elf, symtab, strtab } = file;
    const chunk = Buffer.allocUnsafe(Math.max(CHUNK, 2 * name0.length));
    const offsets = new Set<number>();
    // Consecutive reads overlap by the name's length, so a name across their seam is found.
    const step = chunk.length - name0.length;
    for (let at = 0; at < strtab.size; at += step) {
      const len = Math.min(chunk.length, strtab.size - at);
      elf.readInto(strtab.offset + at, len, chunk);
      const view = chunk.subarray(0, len);
      for (let p = view.indexOf(name0); p >= 0; p = view.indexOf(name0, p + 1)) offsets.add(at + p);
      if (at + len >= strtab.size) break;
    }
    if (!offsets.size) return [];
    // What entry() would decode: the bytes up to the first NUL.
    const name = name0.toString('latin1', 0, name0.indexOf(0));
    const out: Array<[number, ElfSymbol]> = [];
    const entries = Math.floor(symtab.size / ENTRY);
    for (let first = 0; first < entries; first += CHUNK / ENTRY) {
      const len = Math.min(CHUNK, (entries - first) * ENTRY);
      elf.readInto(symtab.offset + first * ENTRY, len, chunk);
      const view = chunk.subarray(0, len);
      for (const off of offsets) {
        for (const o of entriesNamed(view, off, first * ENTRY)) {
          const i = first + o / ENTRY;
          if (i <= this.size && defined(view, o / ENTRY)) out.push([i, decode(view, o, name)]);
        }
      }
    }
    return out;
  }

  private sorted(): { order: Uint32Array; values: BigUint64Array } {
    if (!this.order || !this.values) {
      const syms = this.syms;
      const n = this.size;
      const picked: number[] = [];
      for (let i = 1; i <= n; i++) {
        const o = i * ENTRY;
        const t = syms[o + 4] & 0xf;
        if (!defined(syms, i) || syms.readUInt32LE(o) === 0) continue;
        const value = syms.readBigUInt64LE(o + 8);
        // Sized untyped symbols are assembly code (SYM_CODE_START/END, e.g. secondary_startup_64).
        if (value !== 0n && (t === STT_FUNC || (t !== STT_OBJECT && syms.readBigUInt64LE(o + 16) > 0n))) picked.push(i);
      }
      const all = new BigUint64Array(n + 1);
      for (const i of picked) all[i] = syms.readBigUInt64LE(i * ENTRY + 8);
      const ranks = new Uint8Array(n + 1);
      for (const i of picked) ranks[i] = rankAt(syms, i);
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
      const syms = this.syms;
      const n = this.size;
      const picked: number[] = [];
      // Upper-half addresses as signed doubles are exact (|v| < 2^47) and sort natively fast.
      const key = new Float64Array(n + 1);
      for (let i = 1; i <= n; i++) {
        const o = i * ENTRY;
        if ((syms[o + 4] & 0xf) !== STT_OBJECT || !defined(syms, i)) continue;
        const v = syms.readBigUInt64LE(o + 8);
        if (v < 0xffff800000000000n || syms.readBigUInt64LE(o + 16) === 0n) continue;
        key[i] = Number(BigInt.asIntN(64, v));
        picked.push(i);
      }
      picked.sort((a, b) => key[a] - key[b] || rankAt(syms, a) - rankAt(syms, b));
      this.dataOrder = Uint32Array.from(picked);
      this.dataValues = BigUint64Array.from(picked, (i) => syms.readBigUInt64LE(i * ENTRY + 8));
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

/** Byte offsets in `syms` of the entries (not entry 0) whose st_name is `nameOff`; `base` is syms[0]'s offset in the table. */
function entriesNamed(syms: Buffer, nameOff: number, base: number): number[] {
  const needle = Buffer.alloc(4);
  needle.writeUInt32LE(nameOff);
  const out: number[] = [];
  for (let p = syms.indexOf(needle, base === 0 ? ENTRY : 0); p >= 0; p = syms.indexOf(needle, p + 1)) if (p % ENTRY === 0 && p + ENTRY <= syms.length) out.push(p);
  return out;
}

/** Whether entry i is defined (st_shndx not SHN_UNDEF). */
function defined(syms: Buffer, i: number): boolean {
  return syms.readUInt16LE(i * ENTRY + 6) !== 0;
}

/** The entry at byte `o` of `syms`, with its name already read. */
function decode(syms: Buffer, o: number, name: string): ElfSymbol {
  const info = syms[o + 4];
  const t = info & 0xf;
  const b = info >> 4;
  return {
    name,
    value: syms.readBigUInt64LE(o + 8),
    size: Number(syms.readBigUInt64LE(o + 16)),
    type: t === STT_FUNC ? 'func' : t === STT_OBJECT ? 'object' : 'other',
    bind: b === 0 ? 'local' : b === 1 ? 'global' : b === 2 ? 'weak' : 'other',
  };
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
