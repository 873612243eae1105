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
 * One abbreviation by code, decoding none of the others: a unit's root needs only its own,
 * and GCC orders a table by use, so the root's (used once) comes near the end. `whole` is
 * the entire .debug_abbrev when the caller scans every unit (one read instead of one per
 * unit). Unlike parseAbbrevTable, this does not check the rest of the table.
 */
export function findAbbrev(sections: DwarfSections, offset: DebugAbbrevOffset, code: number, whole?: Buffer): Abbrev | undefined {
  if (whole) {
    const r = new ByteReader(whole, '.debug_abbrev', 0, offset, whole.length, sections.elf.path);
    if (offset >= whole.length) r.fail(`abbreviation table offset 0x${offset.toString(16)} is past the section's end`, offset);
    return seek(r, code);
  }
  const sec = sections.require('.debug_abbrev');
  if (offset >= sec.size) {
    throw sec.readerFrom(0, 0).fail(`abbreviation table offset 0x${offset.toString(16)} is past the section's end`);
  }
  for (let window = 16 * 1024; ; window *= 8) {
    const len = Math.min(window, sec.size - offset);
    try {
      return seek(sec.reader(offset, len), code);
    } catch (e) {
      if (len === sec.size - offset || !(e instanceof Error) || !e.message.includes('truncated')) throw e;
    }
  }
}

/**
 * Skips abbreviations up to `code` without building them. Attribute names and forms are
 * nearly always one byte each, so pairs are read straight off the buffer, and only a longer
 * encoding goes through the reader's LEB128 decoding.
 */
function seek(r: ByteReader, code: number): Abbrev | undefined {
  const buf = r.buf;
  for (;;) {
    const at = r.pos;
    const c = r.uleb();
    if (c === 0) return undefined;
    if (c === code) {
      r.pos = at;
      return decodeOne(r);
    }
    skipLeb(r); // tag
    r.skip(1); // has_children
    for (;;) {
      const p = r.pos;
      let name: number;
      let form: number;
      if (p + 1 < r.end && buf[p] < 0x80 && buf[p + 1] < 0x80) {
        name = buf[p];
        form = buf[p + 1];
        r.pos = p + 2;
      } else {
        name = r.uleb();
        form = r.uleb();
      }
      if (name === 0 && form === 0) break;
      if (form === DW_FORM.implicit_const) skipLeb(r);
    }
  }
}

function skipLeb(r: ByteReader): void {
  const buf = r.buf;
  let pos = r.pos;
  while (pos < r.end && buf[pos] & 0x80) pos++;
  if (pos >= r.end) r.fail('truncated LEB128');
  r.pos = pos + 1;
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
