/** .debug_abbrev: the templates DIEs are decoded with, one table per unit (shared tables cached once). */
import { DW_FORM } from './constants';
import type { DebugAbbrevOffset } from './offsets';
import { ByteReader } from './reader';
import type { DwarfSections } from './sections';

export interface AbbrevAttr {
  name: number;
  form: number;
  /** Only for DW_FORM_implicit_const, whose value lives in the abbreviation. */
  implicitConst: bigint;
}

export interface Abbrev {
  code: number;
  tag: number;
  hasChildren: boolean;
  attrs: AbbrevAttr[];
}

export type AbbrevTable = Map<number, Abbrev>;

/** Tables are unbounded in principle; reading in growing windows keeps small tables cheap. */
export function parseAbbrevTable(sections: DwarfSections, offset: DebugAbbrevOffset): AbbrevTable {
  const sec = sections.require('.debug_abbrev');
  if (offset >= sec.size) {
    throw sec.readerFrom(0, 0).fail(`abbreviation table offset 0x${offset.toString(16)} is past the section's end`);
  }
  let window = 16 * 1024;
  for (;;) {
    const len = Math.min(window, sec.size - offset);
    try {
      return decode(sec.reader(offset, len));
    } catch (e) {
      // A table cut by the window shows up as a truncation; retry larger until the real end.
      if (len === sec.size - offset || !(e instanceof Error) || !e.message.includes('truncated')) throw e;
      window *= 8;
    }
  }
}

/**
 * One abbreviation by code, decoding the table only up to it. `whole` is the entire
 * .debug_abbrev when the caller scans every unit (one read instead of one per unit).
 */
export function findAbbrev(sections: DwarfSections, offset: DebugAbbrevOffset, code: number, whole?: Buffer): Abbrev | undefined {
  if (!whole) return parseAbbrevTable(sections, offset).get(code);
  if (offset >= whole.length) throw new ByteReader(whole, '.debug_abbrev').fail(`abbreviation table offset 0x${offset.toString(16)} is past the section's end`, offset);
  const r = new ByteReader(whole, '.debug_abbrev', 0, offset);
  for (;;) {
    const a = decodeOne(r);
    if (!a || a.code === code) return a;
  }
}

function decodeOne(r: ByteReader): Abbrev | undefined {
  const code = r.uleb();
  if (code === 0) return undefined;
  const tag = r.uleb();
  const hasChildren = r.u8() !== 0;
  const attrs: AbbrevAttr[] = [];
  for (;;) {
    const name = r.uleb();
    const form = r.uleb();
    if (name === 0 && form === 0) break;
    const implicitConst = form === DW_FORM.implicit_const ? r.slebBig() : 0n;
    attrs.push({ name, form, implicitConst });
  }
  return { code, tag, hasChildren, attrs };
}

function decode(r: ByteReader): AbbrevTable {
  const table: AbbrevTable = new Map();
  for (;;) {
    const at = r.pos;
    const a = decodeOne(r);
    if (!a) return table;
    if (table.has(a.code)) r.fail(`duplicate abbreviation code ${a.code}`, at);
    table.set(a.code, a);
  }
}
