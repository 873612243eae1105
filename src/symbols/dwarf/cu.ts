/**
 * One compilation unit with what its DIEs need to be read: string offsets, the address
 * table, range lists. The root DIE is read eagerly (it is small); the full DIE tree is parsed
 * on first use and cached, and so is an error, so a corrupt unit fails once and clearly.
 */
import { parseAbbrevTable } from './abbrev';
import { DW_AT, DW_TAG } from './constants';
import type { DebugInfoOffset } from './offsets';
import { readRangesV4, readRngList, rngListIndex, type Range, type RangeContext } from './ranges';
import { DwarfError } from './reader';
import type { DwarfSections } from './sections';
import { attrNumber, parseUnitDies, type AttrValue, type Die, type UnitHeader } from './unit';

type Cached<T> = { ok: true; value: T } | { ok: false; error: unknown };

export class CompileUnit {
  readonly root: Die;
  private tree: Cached<Die> | undefined;
  private byOffset: Map<number, Die> | undefined;

  constructor(
    readonly sections: DwarfSections,
    readonly header: UnitHeader,
  ) {
    this.root = parseUnitDies(sections, header, undefined, { rootOnly: true });
  }

  get offset(): DebugInfoOffset {
    return this.header.offset;
  }

  get name(): string {
    return this.string(this.root, DW_AT.name) ?? '';
  }

  get compDir(): string {
    return this.string(this.root, DW_AT.comp_dir) ?? '';
  }

  get stmtList(): number | undefined {
    return attrNumber(this.root, DW_AT.stmt_list);
  }

  get isCompileUnit(): boolean {
    return this.root.tag === DW_TAG.compile_unit || this.root.tag === DW_TAG.partial_unit;
  }

  private get strOffsetsBase(): number {
    // DWARF 5 units without the attribute use the first table's header size.
    return attrNumber(this.root, DW_AT.str_offsets_base) ?? (this.header.offsetSize === 8 ? 16 : 8);
  }

  private get addrBase(): number {
    return attrNumber(this.root, DW_AT.addr_base) ?? attrNumber(this.root, DW_AT.GNU_addr_base) ?? 8;
  }

  /** The full DIE tree (root with children). */
  dies(): Die {
    if (!this.tree) {
      try {
        const table = parseAbbrevTable(this.sections, this.header.abbrevOffset);
        this.tree = { ok: true, value: parseUnitDies(this.sections, this.header, table) };
      } catch (error) {
        this.tree = { ok: false, error };
      }
    }
    if (!this.tree.ok) throw this.tree.error;
    return this.tree.value;
  }

  dieAt(offset: DebugInfoOffset): Die | undefined {
    if (!this.byOffset) {
      const map = new Map<number, Die>();
      // An explicit stack: corrupt DWARF can nest DIEs deeper than the JS call stack goes.
      const stack: Die[] = [this.dies()];
      for (let d = stack.pop(); d; d = stack.pop()) {
        map.set(d.offset, d);
        for (const c of d.children) stack.push(c);
      }
      this.byOffset = map;
    }
    return this.byOffset.get(offset);
  }

  contains(offset: number): boolean {
    return offset >= this.header.offset && offset < this.header.end;
  }

  str(v: AttrValue | undefined): string | undefined {
    if (!v) return undefined;
    switch (v.kind) {
      case 'string':
        return v.value;
      case 'strp':
        return this.sections.require(v.section).cstr(v.value);
      case 'strx': {
        const sec = this.sections.require('.debug_str_offsets');
        const size = this.header.offsetSize;
        const off = sec.reader(this.strOffsetsBase + v.value * size, size).offsetOf(size);
        return this.sections.require('.debug_str').cstr(off);
      }
      default:
        return undefined;
    }
  }

  string(die: Die, at: number): string | undefined {
    return this.str(die.attrs.get(at));
  }

  addrx(index: number): bigint {
    const size = this.header.addressSize;
    return this.sections.require('.debug_addr').reader(this.addrBase + index * size, size).address(size);
  }

  addr(v: AttrValue | undefined): bigint | undefined {
    if (!v) return undefined;
    if (v.kind === 'addr') return v.value;
    if (v.kind === 'addrx') return this.addrx(v.value);
    return undefined;
  }

  get baseAddress(): bigint {
    return this.addr(this.root.attrs.get(DW_AT.low_pc)) ?? 0n;
  }

  // Stepping asks for the same inline and block ranges at every stop; reading a range list
  // means a file read, so each DIE's list is read once.
  private readonly rangeMemo = new WeakMap<Die, readonly Range[]>();

  /** A DIE's code ranges, empty when it has none (a declaration, an abstract instance). */
  ranges(die: Die): readonly Range[] {
    let r = this.rangeMemo.get(die);
    if (!r) this.rangeMemo.set(die, (r = this.readRanges(die)));
    return r;
  }

  private readRanges(die: Die): Range[] {
    const low = this.addr(die.attrs.get(DW_AT.low_pc));
    const high = die.attrs.get(DW_AT.high_pc);
    if (low !== undefined && high) {
      if (high.kind === 'addr' || high.kind === 'addrx') return [[low, this.addr(high) ?? low]];
      if (high.kind === 'udata' || high.kind === 'sdata') return [[low, low + high.value]];
    }
    const r = die.attrs.get(DW_AT.ranges);
    if (!r) return low !== undefined && die.tag !== DW_TAG.compile_unit ? [[low, low + 1n]] : [];
    const ctx: RangeContext = {
      addressSize: this.header.addressSize,
      offsetSize: this.header.offsetSize,
      base: this.baseAddress,
      addrx: (i) => this.addrx(i),
    };
    if (this.header.version >= 5) {
      if (r.kind === 'listx') {
        const base = attrNumber(this.root, DW_AT.rnglists_base) ?? (this.header.offsetSize === 8 ? 20 : 12);
        return readRngList(this.sections, rngListIndex(this.sections, base, r.value, this.header.offsetSize), ctx);
      }
      if (r.kind === 'secOffset') return readRngList(this.sections, r.value, ctx);
    } else if (r.kind === 'secOffset' || r.kind === 'udata') {
      const gnuBase = attrNumber(this.root, DW_AT.GNU_ranges_base) ?? 0;
      return readRangesV4(this.sections, Number(r.value) + (die === this.root ? 0 : gnuBase), ctx);
    }
    throw new DwarfError('.debug_info', die.offset, `DW_AT_ranges has an unexpected form (${r.kind})`, this.sections.elf.path);
  }

  /**
   * Where a block starts as gdb counts it (BLOCK_ENTRY_PC): low_pc, else the first range as
   * listed. DW_AT_entry_pc is deliberately not used, so our frames and breakpoint addresses
   * match gdb's; GCC often points it past the first scheduled instruction.
   */
  blockEntry(die: Die): bigint | undefined {
    const low = this.addr(die.attrs.get(DW_AT.low_pc));
    if (low !== undefined) return low;
    return this.ranges(die)[0]?.[0];
  }

  /** The entry address of a function or inlined call: entry_pc, else low_pc, else its first range. */
  entry(die: Die): bigint | undefined {
    const e = die.attrs.get(DW_AT.entry_pc);
    if (e) {
      const a = this.addr(e);
      if (a !== undefined) return a;
      if (e.kind === 'udata') return this.baseAddress + e.value;
    }
    const low = this.addr(die.attrs.get(DW_AT.low_pc));
    if (low !== undefined) return low;
    const rs = this.ranges(die);
    return rs.length ? rs.reduce((m, r) => (r[0] < m ? r[0] : m), rs[0][0]) : undefined;
  }
}

export function rangesContain(ranges: readonly Range[], pc: bigint): boolean {
  for (const [s, e] of ranges) if (pc >= s && pc < e) return true;
  return false;
}
