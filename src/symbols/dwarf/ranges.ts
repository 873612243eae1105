/** Address ranges of DIEs: low_pc/high_pc, v4 .debug_ranges and v5 .debug_rnglists. */
import { DW_RLE } from './constants';
import { DwarfError, type ByteReader } from './reader';
import type { DwarfSections, PagedSection } from './sections';

export type Range = readonly [start: bigint, end: bigint];

export interface RangeContext {
  addressSize: number;
  offsetSize: 4 | 8;
  /** The unit's base address (its DW_AT_low_pc), which offset pairs are relative to. */
  base: bigint;
  addrx(index: number): bigint;
}

const MAX_ENTRIES = 1 << 20;

/**
 * Most lists are a few dozen bytes: a small window comes from the section's page cache, and
 * only a list that runs past it is read again through a large one (an uncached file read).
 */
function growing<T>(sec: PagedSection, offset: number, parse: (r: ByteReader) => T): T {
  const small = 512;
  try {
    return parse(sec.readerFrom(offset, small));
  } catch (e) {
    if (!(e instanceof DwarfError) || sec.size - offset <= small) throw e;
    return parse(sec.readerFrom(offset, 1 << 16));
  }
}

export function readRngList(sections: DwarfSections, offset: number, ctx: RangeContext): Range[] {
  return growing(sections.require('.debug_rnglists'), offset, (r) => rngList(r, ctx));
}

function rngList(r: ByteReader, ctx: RangeContext): Range[] {
  const out: Range[] = [];
  let base = ctx.base;
  for (let n = 0; n < MAX_ENTRIES; n++) {
    const kind = r.u8();
    switch (kind) {
      case DW_RLE.end_of_list:
        return out;
      case DW_RLE.base_addressx:
        base = ctx.addrx(r.uleb());
        break;
      case DW_RLE.startx_endx: {
        const s = ctx.addrx(r.uleb());
        out.push([s, ctx.addrx(r.uleb())]);
        break;
      }
      case DW_RLE.startx_length: {
        const s = ctx.addrx(r.uleb());
        out.push([s, s + r.ulebBig()]);
        break;
      }
      case DW_RLE.offset_pair: {
        const s = r.ulebBig();
        out.push([base + s, base + r.ulebBig()]);
        break;
      }
      case DW_RLE.base_address:
        base = r.address(ctx.addressSize);
        break;
      case DW_RLE.start_end: {
        const s = r.address(ctx.addressSize);
        out.push([s, r.address(ctx.addressSize)]);
        break;
      }
      case DW_RLE.start_length: {
        const s = r.address(ctx.addressSize);
        out.push([s, s + r.ulebBig()]);
        break;
      }
      default:
        return r.fail(`unknown range list entry kind 0x${kind.toString(16)}`, r.pos - 1);
    }
  }
  return r.fail('range list has no end');
}

/** The offset of entry `index` of the offsets table that starts at `base` (DW_AT_rnglists_base). */
export function rngListIndex(sections: DwarfSections, base: number, index: number, offsetSize: 4 | 8): number {
  const r = sections.require('.debug_rnglists').reader(base + index * offsetSize, offsetSize);
  return base + r.offsetOf(offsetSize);
}

export function readRangesV4(sections: DwarfSections, offset: number, ctx: RangeContext): Range[] {
  return growing(sections.require('.debug_ranges'), offset, (r) => rangesV4(r, ctx));
}

function rangesV4(r: ByteReader, ctx: RangeContext): Range[] {
  const out: Range[] = [];
  const max = ctx.addressSize === 8 ? 0xffffffffffffffffn : 0xffffffffn;
  let base = ctx.base;
  for (let n = 0; n < MAX_ENTRIES; n++) {
    const s = r.address(ctx.addressSize);
    const e = r.address(ctx.addressSize);
    if (s === 0n && e === 0n) return out;
    if (s === max) base = e;
    else out.push([base + s, base + e]);
  }
  return r.fail('range list has no end');
}

/** .debug_aranges as sorted parallel arrays: address → unit offset by binary search. */
export class ArangeIndex {
  private constructor(
    private readonly starts: BigUint64Array,
    private readonly ends: BigUint64Array,
    private readonly units: Float64Array,
  ) {}

  static read(sections: DwarfSections): ArangeIndex {
    return ArangeIndex.readPlain(sections) ?? ArangeIndex.readGeneral(sections);
  }

  /**
   * The common shape (version 2, 8-byte addresses, no segments, every linked kernel's) read
   * straight from the bytes into typed arrays: the general reader's objects and bigints per
   * tuple were most of a cold `qkd decode`'s first lookup. Undefined for any other shape.
   */
  private static readPlain(sections: DwarfSections): ArangeIndex | undefined {
    const sec = sections.get('.debug_aranges');
    if (!sec) return new ArangeIndex(new BigUint64Array(0), new BigUint64Array(0), new Float64Array(0));
    const buf = sec.all();
    const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const max = buf.length >> 4;
    let starts = new BigUint64Array(max);
    let ends = new BigUint64Array(max);
    let units = new Float64Array(max);
    let n = 0;
    let sorted = true;
    let off = 0;
    while (off + 4 <= buf.length) {
      const setStart = off;
      const length = view.getUint32(off, true);
      off += 4;
      const setEnd = off + length;
      if (length === 0xffffffff || setEnd > buf.length || length < 8) return undefined;
      const unit = view.getUint32(off + 2, true);
      if (view.getUint16(off, true) !== 2 || view.getUint8(off + 6) !== 8 || view.getUint8(off + 7) !== 0) return undefined;
      for (let t = setStart + 16; t + 16 <= setEnd; t += 16) {
        const s = view.getBigUint64(t, true);
        const l = view.getBigUint64(t + 8, true);
        if (s === 0n && l === 0n) break;
        if (l === 0n) continue;
        if (n > 0 && s < starts[n - 1]) sorted = false;
        starts[n] = s;
        ends[n] = s + l;
        units[n++] = unit;
      }
      off = setEnd;
    }
    if (!sorted) {
      const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (starts[a] < starts[b] ? -1 : starts[a] > starts[b] ? 1 : 0));
      starts = BigUint64Array.from(order, (i) => starts[i]);
      ends = BigUint64Array.from(order, (i) => ends[i]);
      units = Float64Array.from(order, (i) => units[i]);
      return new ArangeIndex(starts, ends, units);
    }
    return new ArangeIndex(starts.slice(0, n), ends.slice(0, n), units.slice(0, n));
  }

  /** Any shape .debug_aranges may have, through the general reader (which names what is wrong). */
  static readGeneral(sections: DwarfSections): ArangeIndex {
    const sec = sections.get('.debug_aranges');
    const entries: Array<[bigint, bigint, number]> = [];
    if (sec) {
      const all = sec.reader(0, sec.size);
      while (!all.atEnd()) {
        const setStart = all.offset;
        const { length, offsetSize } = all.initialLength();
        const set = all.sub(length);
        const version = set.u16();
        if (version !== 2) set.fail(`unsupported .debug_aranges version ${version}`);
        const unit = set.offsetOf(offsetSize);
        const addressSize = set.u8();
        const segSize = set.u8();
        if (addressSize !== 4 && addressSize !== 8) set.fail(`unsupported address size ${addressSize}`);
        // Tuples start at a multiple of twice the address size from the set's start.
        const tuple = 2 * addressSize + segSize;
        while ((set.offset - setStart) % tuple !== 0 && !set.atEnd()) set.skip(1);
        while (set.remaining >= tuple) {
          if (segSize) set.skip(segSize);
          const s = set.address(addressSize);
          const l = set.address(addressSize);
          if (s === 0n && l === 0n) break;
          if (l > 0n) entries.push([s, s + l, unit]);
        }
      }
    }
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return new ArangeIndex(
      BigUint64Array.from(entries.map((e) => e[0])),
      BigUint64Array.from(entries.map((e) => e[1])),
      Float64Array.from(entries.map((e) => e[2])),
    );
  }

  /**
   * One lookup without building the index: a single pass over the section's tuples. A
   * cold breakpoint lookup needs one answer, and sorting every range first costs more.
   */
  static scan(sections: DwarfSections, pc: bigint): number | undefined {
    const sec = sections.get('.debug_aranges');
    if (!sec) return undefined;
    const buf = sec.all();
    const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const pcHi = Number(pc >> 32n);
    const pcLo = Number(pc & 0xffffffffn);
    let off = 0;
    while (off + 4 <= buf.length) {
      const setStart = off;
      let length = view.getUint32(off, true);
      let offsetSize = 4;
      off += 4;
      if (length === 0xffffffff) {
        if (off + 8 > buf.length) return undefined;
        length = Number(view.getBigUint64(off, true));
        offsetSize = 8;
        off += 8;
      }
      const setEnd = off + length;
      if (setEnd > buf.length || length < 4 + offsetSize) return undefined;
      const unit = offsetSize === 4 ? view.getUint32(off + 2, true) : Number(view.getBigUint64(off + 2, true));
      const addressSize = view.getUint8(off + 2 + offsetSize);
      const segSize = view.getUint8(off + 3 + offsetSize);
      // Anything unusual goes through the full parser, which reports errors properly.
      if (view.getUint16(off, true) !== 2 || addressSize !== 8 || segSize !== 0 || !Number.isSafeInteger(unit)) return ArangeIndex.read(sections).unitFor(pc);
      let t = setStart + Math.ceil((off + 4 + offsetSize - setStart) / 16) * 16;
      // Compared as 32-bit halves: a bigint per tuple is most of this loop's cost when it
      // runs cold (interpreted), which is when it runs.
      for (; t + 16 <= setEnd; t += 16) {
        const hi = view.getUint32(t + 4, true);
        if (hi > pcHi) continue;
        const lo = view.getUint32(t, true);
        if (hi === pcHi && lo > pcLo) continue;
        const lenHi = view.getUint32(t + 12, true);
        if (lenHi === 0 && pcHi - hi <= 1) {
          // Exact: below 2^33 on both sides.
          if ((pcHi - hi) * 0x100000000 + pcLo - lo < view.getUint32(t + 8, true)) return unit;
        } else if (pc < view.getBigUint64(t, true) + view.getBigUint64(t + 8, true)) return unit;
      }
      off = setEnd;
    }
    return undefined;
  }

  get size(): number {
    return this.starts.length;
  }

  /** Each range with its unit's offset, in address order. */
  *entries(): Generator<{ start: bigint; end: bigint; unit: number }> {
    for (let i = 0; i < this.starts.length; i++) yield { start: this.starts[i], end: this.ends[i], unit: this.units[i] };
  }

  unitFor(pc: bigint): number | undefined {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] <= pc) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Ranges of different units don't overlap in a linked vmlinux, but look back a little in case.
    for (let i = found; i >= 0 && i > found - 8; i--) if (pc >= this.starts[i] && pc < this.ends[i]) return this.units[i];
    return undefined;
  }
}
