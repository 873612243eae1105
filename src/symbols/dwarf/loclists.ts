/** Location lists: v5 .debug_loclists and v4 .debug_loc, read with the same context as ranges. */
import { DW_LLE } from './opcodes';
import type { RangeContext } from './ranges';
import type { ByteReader } from './reader';
import { DwarfError, reportAt } from './reader';
import type { DwarfSections } from './sections';

export interface LocListEntry {
  start: bigint;
  end: bigint;
  expr: Buffer;
}

export interface LocList {
  entries: LocListEntry[];
  /** DW_LLE_default_location */
  fallback?: Buffer;
}

const MAX_ENTRIES = 1 << 20;
/** Most lists are a few dozen bytes: start with a read the section's page cache serves. */
const FIRST_WINDOW = 1024;

/**
 * Parse a list through a window of the section, widening it when the list runs past: a
 * DwarfError from a window that stops short of the section's end is retried wider, so only
 * a list that is corrupt at full width reports its error.
 */
function windowed(sections: DwarfSections, name: string, offset: number, parse: (r: ByteReader) => LocList): LocList {
  const sec = sections.require(name);
  const rest = sec.size - offset;
  if (offset < 0 || rest <= 0) throw new DwarfError(name, reportAt(offset), `location list offset 0x${offset.toString(16)} is past the section's end (size 0x${sec.size.toString(16)})`, sec.file);
  for (let window = FIRST_WINDOW; ; window *= 16) {
    const r = sec.readerFrom(offset, window);
    try {
      return parse(r);
    } catch (e) {
      if (!(e instanceof DwarfError) || window >= rest) throw e;
    }
  }
}

/** An entry's expression, copied out of the (possibly cached, shared) section page. */
function expression(r: ByteReader, length: number): Buffer {
  return Buffer.from(r.bytes(length));
}

export function readLocListV5(sections: DwarfSections, offset: number, ctx: RangeContext): LocList {
  return windowed(sections, '.debug_loclists', offset, (r) => {
    const list: LocList = { entries: [] };
    const add = (start: bigint, end: bigint): void => void list.entries.push({ start, end, expr: expression(r, r.uleb()) });
    let base = ctx.base;
    for (let n = 0; n < MAX_ENTRIES; n++) {
      const kind = r.u8();
      switch (kind) {
        case DW_LLE.end_of_list:
          return list;
        case DW_LLE.base_addressx:
          base = ctx.addrx(r.uleb());
          break;
        case DW_LLE.startx_endx: {
          const s = ctx.addrx(r.uleb());
          add(s, ctx.addrx(r.uleb()));
          break;
        }
        case DW_LLE.startx_length: {
          const s = ctx.addrx(r.uleb());
          add(s, s + r.ulebBig());
          break;
        }
        case DW_LLE.offset_pair: {
          const s = r.ulebBig();
          add(base + s, base + r.ulebBig());
          break;
        }
        case DW_LLE.default_location:
          list.fallback = expression(r, r.uleb());
          break;
        case DW_LLE.base_address:
          base = r.address(ctx.addressSize);
          break;
        case DW_LLE.start_end: {
          const s = r.address(ctx.addressSize);
          add(s, r.address(ctx.addressSize));
          break;
        }
        case DW_LLE.start_length: {
          const s = r.address(ctx.addressSize);
          add(s, s + r.ulebBig());
          break;
        }
        case DW_LLE.GNU_view_pair:
          // Location views only refine which of several entries at one pc is current; gdb ignores them too.
          r.ulebBig();
          r.ulebBig();
          break;
        default:
          return r.fail(`unknown location list entry kind 0x${kind.toString(16)}`, r.pos - 1);
      }
    }
    return r.fail('location list has no end');
  });
}

/** The offset of entry `index` of the offsets table that starts at `base` (DW_AT_loclists_base). */
export function locListIndex(sections: DwarfSections, base: number, index: number, offsetSize: 4 | 8): number {
  const r = sections.require('.debug_loclists').reader(base + index * offsetSize, offsetSize);
  return base + r.offsetOf(offsetSize);
}

export function readLocListV4(sections: DwarfSections, offset: number, ctx: RangeContext): LocList {
  return windowed(sections, '.debug_loc', offset, (r) => {
    const list: LocList = { entries: [] };
    const max = ctx.addressSize === 8 ? 0xffffffffffffffffn : 0xffffffffn;
    let base = ctx.base;
    for (let n = 0; n < MAX_ENTRIES; n++) {
      const s = r.address(ctx.addressSize);
      const e = r.address(ctx.addressSize);
      if (s === 0n && e === 0n) return list;
      if (s === max) base = e;
      else list.entries.push({ start: base + s, end: base + e, expr: expression(r, r.u16()) });
    }
    return r.fail('location list has no end');
  });
}

/** The expression of the entry covering pc (start <= pc < end), else the default location. */
export function expressionAt(list: LocList, pc: bigint): Buffer | undefined {
  for (const e of list.entries) if (pc >= e.start && pc < e.end) return e.expr;
  return list.fallback;
}
