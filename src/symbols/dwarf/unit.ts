/**
 * .debug_info units and their DIE trees. A unit's header is cheap to read on its own, so
 * callers hop through headers and parse a DIE tree only for the units they need; each parsed
 * tree (or the error it raised) is cached by the Dwarf object that owns the unit.
 */
import { findAbbrev, parseAbbrevTable, type Abbrev, type AbbrevTable } from './abbrev';
import { DW_AT, DW_FORM, DW_UT } from './constants';
import { abbrevOffset, infoOffset, type DebugAbbrevOffset, type DebugInfoOffset } from './offsets';
import { ByteReader, DwarfError, reportAt } from './reader';
import type { DwarfSections } from './sections';

export interface UnitHeader {
  offset: DebugInfoOffset;
  /** Section offset one past the unit's last byte. */
  end: number;
  version: number;
  unitType: number;
  offsetSize: 4 | 8;
  addressSize: number;
  abbrevOffset: DebugAbbrevOffset;
  /** Section offset of the first DIE. */
  firstDie: number;
}

export type AttrValue =
  | { kind: 'addr'; value: bigint }
  | { kind: 'addrx'; value: number }
  | { kind: 'udata'; value: bigint }
  | { kind: 'sdata'; value: bigint }
  | { kind: 'string'; value: string }
  | { kind: 'strp'; value: number; section: '.debug_str' | '.debug_line_str' }
  | { kind: 'strx'; value: number }
  | { kind: 'ref'; value: DebugInfoOffset }
  | { kind: 'secOffset'; value: number }
  | { kind: 'block'; value: Buffer }
  | { kind: 'flag'; value: boolean }
  | { kind: 'listx'; value: number }
  | { kind: 'sig8'; value: bigint }
  | { kind: 'unsupported'; value: number };

export interface Die {
  offset: DebugInfoOffset;
  tag: number;
  attrs: Map<number, AttrValue>;
  hasChildren: boolean;
  children: Die[];
  parent: Die | undefined;
}

export function readUnitHeader(sections: DwarfSections, offset: DebugInfoOffset): UnitHeader {
  const sec = sections.require('.debug_info');
  // Offsets come from other sections too (.debug_aranges, references), so one may point anywhere.
  if (!(offset >= 0 && offset < sec.size)) throw new DwarfError('.debug_info', reportAt(offset), `unit offset 0x${offset.toString(16)} is outside the section (size 0x${sec.size.toString(16)})`, sec.file);
  const r = sec.readerFrom(offset, 32);
  const { length, offsetSize } = r.initialLength();
  const end = r.offset + length;
  if (end > sec.size) r.fail(`unit length 0x${length.toString(16)} runs past the section's end`, 0);
  const version = r.u16();
  if (version < 2 || version > 5) r.fail(`unsupported DWARF version ${version}`, r.pos - 2);
  let unitType: number = DW_UT.compile;
  let addressSize: number;
  let abbrev: number;
  if (version >= 5) {
    unitType = r.u8();
    addressSize = r.u8();
    abbrev = r.offsetOf(offsetSize);
    if (unitType === DW_UT.skeleton || unitType === DW_UT.split_compile) r.skip(8);
    else if (unitType === DW_UT.type || unitType === DW_UT.split_type) r.skip(8 + offsetSize);
  } else {
    abbrev = r.offsetOf(offsetSize);
    addressSize = r.u8();
  }
  if (addressSize !== 4 && addressSize !== 8) r.fail(`unsupported address size ${addressSize}`);
  return { offset, end, version, unitType, offsetSize, addressSize, abbrevOffset: abbrevOffset(abbrev), firstDie: r.offset };
}

/** Every unit header in section order, hopping by unit length: no DIE is decoded. */
export function* unitHeaders(sections: DwarfSections): Generator<UnitHeader> {
  const sec = sections.get('.debug_info');
  if (!sec) return;
  let off = 0;
  while (off < sec.size) {
    const h = readUnitHeader(sections, infoOffset(off));
    yield h;
    off = h.end;
  }
}

export interface ParseOptions {
  /** Stop after the unit's root DIE: enough for its name, ranges and line-table offset. */
  rootOnly?: boolean;
}

export function parseUnitDies(sections: DwarfSections, header: UnitHeader, abbrevs: AbbrevTable | undefined, options: ParseOptions = {}): Die {
  const sec = sections.require('.debug_info');
  const len = options.rootOnly ? Math.min(header.end - header.firstDie, 4096) : header.end - header.firstDie;
  const r = sec.reader(header.firstDie, len);
  const table = abbrevs ?? (options.rootOnly ? rootAbbrev(sections, header, r) : parseAbbrevTable(sections, header.abbrevOffset));
  const root = readDie(r, table, header, undefined);
  if (!root) return r.fail('unit has no root DIE');
  if (options.rootOnly) return root;
  const stack: Die[] = [];
  if (root.hasChildren) stack.push(root);
  while (stack.length > 0 && !r.atEnd()) {
    const parent = stack[stack.length - 1];
    const die = readDie(r, table, header, parent);
    if (!die) {
      stack.pop();
      continue;
    }
    parent.children.push(die);
    if (die.hasChildren) stack.push(die);
  }
  return root;
}

/** The root's own abbreviation: decoding the unit's whole table for it cost a cold lookup about 2 ms. */
function rootAbbrev(sections: DwarfSections, header: UnitHeader, r: ByteReader): AbbrevTable {
  const start = r.pos;
  const code = r.uleb();
  r.pos = start;
  const abbrev = code === 0 ? undefined : findAbbrev(sections, header.abbrevOffset, code);
  return new Map(abbrev ? [[code, abbrev]] : []);
}

function readDie(r: ByteReader, table: AbbrevTable, h: UnitHeader, parent: Die | undefined): Die | undefined {
  const at = r.offset;
  const code = r.uleb();
  if (code === 0) return undefined;
  const abbrev = table.get(code);
  if (!abbrev) return r.fail(`DIE uses abbreviation code ${code}, which the unit's table (at .debug_abbrev 0x${h.abbrevOffset.toString(16)}) lacks`, r.pos - 1);
  const attrs = new Map<number, AttrValue>();
  for (const a of abbrev.attrs) attrs.set(a.name, readForm(r, a.form, a.implicitConst, h));
  return { offset: infoOffset(at), tag: abbrev.tag, attrs, hasChildren: abbrev.hasChildren, children: [], parent };
}

export function readForm(r: ByteReader, form: number, implicitConst: bigint, h: UnitHeader): AttrValue {
  switch (form) {
    case DW_FORM.addr:
      return { kind: 'addr', value: r.address(h.addressSize) };
    case DW_FORM.addrx:
    case DW_FORM.GNU_addr_index:
      return { kind: 'addrx', value: r.uleb() };
    case DW_FORM.addrx1:
      return { kind: 'addrx', value: r.u8() };
    case DW_FORM.addrx2:
      return { kind: 'addrx', value: r.u16() };
    case DW_FORM.addrx3:
      return { kind: 'addrx', value: r.u24() };
    case DW_FORM.addrx4:
      return { kind: 'addrx', value: r.u32() };
    case DW_FORM.data1:
      return { kind: 'udata', value: BigInt(r.u8()) };
    case DW_FORM.data2:
      return { kind: 'udata', value: BigInt(r.u16()) };
    case DW_FORM.data4:
      return { kind: 'udata', value: BigInt(r.u32()) };
    case DW_FORM.data8:
      return { kind: 'udata', value: r.u64() };
    case DW_FORM.data16:
      return { kind: 'block', value: r.bytes(16) };
    case DW_FORM.udata:
      return { kind: 'udata', value: r.ulebBig() };
    case DW_FORM.sdata:
      return { kind: 'sdata', value: r.slebBig() };
    case DW_FORM.implicit_const:
      return { kind: 'sdata', value: implicitConst };
    case DW_FORM.string:
      return { kind: 'string', value: r.cstr() };
    case DW_FORM.strp:
      return { kind: 'strp', value: r.offsetOf(h.offsetSize), section: '.debug_str' };
    case DW_FORM.line_strp:
      return { kind: 'strp', value: r.offsetOf(h.offsetSize), section: '.debug_line_str' };
    case DW_FORM.strx:
    case DW_FORM.GNU_str_index:
      return { kind: 'strx', value: r.uleb() };
    case DW_FORM.strx1:
      return { kind: 'strx', value: r.u8() };
    case DW_FORM.strx2:
      return { kind: 'strx', value: r.u16() };
    case DW_FORM.strx3:
      return { kind: 'strx', value: r.u24() };
    case DW_FORM.strx4:
      return { kind: 'strx', value: r.u32() };
    case DW_FORM.ref1:
      return { kind: 'ref', value: infoOffset(h.offset + r.u8()) };
    case DW_FORM.ref2:
      return { kind: 'ref', value: infoOffset(h.offset + r.u16()) };
    case DW_FORM.ref4:
      return { kind: 'ref', value: infoOffset(h.offset + r.u32()) };
    case DW_FORM.ref8:
      return { kind: 'ref', value: infoOffset(h.offset + r.u64n('reference')) };
    case DW_FORM.ref_udata:
      return { kind: 'ref', value: infoOffset(h.offset + r.uleb()) };
    case DW_FORM.ref_addr:
      // DWARF 2 sized ref_addr like an address; later versions like an offset.
      return { kind: 'ref', value: infoOffset(h.version <= 2 ? Number(r.address(h.addressSize)) : r.offsetOf(h.offsetSize)) };
    case DW_FORM.ref_sig8:
      return { kind: 'sig8', value: r.u64() };
    case DW_FORM.ref_sup4:
      return { kind: 'unsupported', value: r.u32() };
    case DW_FORM.ref_sup8:
      return { kind: 'unsupported', value: r.u64n() };
    case DW_FORM.strp_sup:
    case DW_FORM.GNU_strp_alt:
    case DW_FORM.GNU_ref_alt:
      return { kind: 'unsupported', value: r.offsetOf(h.offsetSize) };
    case DW_FORM.sec_offset:
      return { kind: 'secOffset', value: r.offsetOf(h.offsetSize) };
    case DW_FORM.exprloc:
    case DW_FORM.block:
      return { kind: 'block', value: r.bytes(r.uleb()) };
    case DW_FORM.block1:
      return { kind: 'block', value: r.bytes(r.u8()) };
    case DW_FORM.block2:
      return { kind: 'block', value: r.bytes(r.u16()) };
    case DW_FORM.block4:
      return { kind: 'block', value: r.bytes(r.u32()) };
    case DW_FORM.flag:
      return { kind: 'flag', value: r.u8() !== 0 };
    case DW_FORM.flag_present:
      return { kind: 'flag', value: true };
    case DW_FORM.loclistx:
    case DW_FORM.rnglistx:
      return { kind: 'listx', value: r.uleb() };
    case DW_FORM.indirect: {
      const real = r.uleb();
      if (real === DW_FORM.indirect) r.fail('DW_FORM_indirect names itself');
      return readForm(r, real, implicitConst, h);
    }
    default:
      return r.fail(`unknown attribute form 0x${form.toString(16)}`);
  }
}

/** Step over one attribute value without decoding it. */
export function skipForm(r: ByteReader, form: number, h: UnitHeader): void {
  switch (form) {
    case DW_FORM.flag_present:
    case DW_FORM.implicit_const:
      return;
    case DW_FORM.data1:
    case DW_FORM.ref1:
    case DW_FORM.flag:
    case DW_FORM.strx1:
    case DW_FORM.addrx1:
      return r.skip(1);
    case DW_FORM.data2:
    case DW_FORM.ref2:
    case DW_FORM.strx2:
    case DW_FORM.addrx2:
      return r.skip(2);
    case DW_FORM.strx3:
    case DW_FORM.addrx3:
      return r.skip(3);
    case DW_FORM.data4:
    case DW_FORM.ref4:
    case DW_FORM.strx4:
    case DW_FORM.addrx4:
    case DW_FORM.ref_sup4:
      return r.skip(4);
    case DW_FORM.data8:
    case DW_FORM.ref8:
    case DW_FORM.ref_sig8:
    case DW_FORM.ref_sup8:
      return r.skip(8);
    case DW_FORM.data16:
      return r.skip(16);
    case DW_FORM.addr:
      return r.skip(h.addressSize);
    case DW_FORM.strp:
    case DW_FORM.line_strp:
    case DW_FORM.sec_offset:
    case DW_FORM.strp_sup:
    case DW_FORM.GNU_strp_alt:
    case DW_FORM.GNU_ref_alt:
      return r.skip(h.offsetSize);
    case DW_FORM.ref_addr:
      return r.skip(h.version <= 2 ? h.addressSize : h.offsetSize);
    case DW_FORM.udata:
    case DW_FORM.sdata:
    case DW_FORM.ref_udata:
    case DW_FORM.strx:
    case DW_FORM.addrx:
    case DW_FORM.loclistx:
    case DW_FORM.rnglistx:
    case DW_FORM.GNU_addr_index:
    case DW_FORM.GNU_str_index:
      skipLeb(r);
      return;
    case DW_FORM.string:
      r.cstrSkip();
      return;
    case DW_FORM.exprloc:
    case DW_FORM.block:
      return r.skip(r.uleb());
    case DW_FORM.block1:
      return r.skip(r.u8());
    case DW_FORM.block2:
      return r.skip(r.u16());
    case DW_FORM.block4:
      return r.skip(r.u32());
    case DW_FORM.indirect: {
      const real = r.uleb();
      if (real === DW_FORM.indirect) r.fail('DW_FORM_indirect names itself');
      return skipForm(r, real, h);
    }
    default:
      r.fail(`unknown attribute form 0x${form.toString(16)}`);
  }
}

function skipLeb(r: ByteReader): void {
  while (r.u8() & 0x80) {
    // continuation bytes
  }
}

/**
 * DW_AT_stmt_list of a unit's root DIE, decoding only the root's abbreviation: the file
 * index needs it for every unit, and parsing each unit's whole abbreviation table for one
 * attribute was most of that index's cost.
 */
export function rootStmtList(sections: DwarfSections, header: UnitHeader, abbrevSection?: Buffer): number | undefined {
  // Root DIEs are small (their strings are usually in .debug_str): a page-cached window, then all.
  for (const window of [256, header.end - header.firstDie]) {
    try {
      return rootStmtListIn(sections, header, Math.min(header.end - header.firstDie, window), abbrevSection);
    } catch (e) {
      if (window === header.end - header.firstDie || !(e instanceof DwarfError) || !e.message.includes('truncated')) throw e;
    }
  }
  return undefined;
}

/** Reused for every root: the page cache would churn through one page per unit. */
let scratch = Buffer.alloc(256);

function rootStmtListIn(sections: DwarfSections, header: UnitHeader, length: number, abbrevSection: Buffer | undefined): number | undefined {
  if (scratch.length < length) scratch = Buffer.alloc(length);
  sections.require('.debug_info').readInto(header.firstDie, length, scratch);
  const r = new ByteReader(scratch, '.debug_info', header.firstDie, 0, length, sections.elf.path);
  const code = r.uleb();
  if (code === 0) return undefined;
  const abbrev = findAbbrev(sections, header.abbrevOffset, code, abbrevSection);
  if (!abbrev) return r.fail(`root DIE uses abbreviation code ${code}, which the unit's table (at .debug_abbrev 0x${header.abbrevOffset.toString(16)}) lacks`, 0);
  for (const a of abbrev.attrs) {
    if (a.name !== DW_AT.stmt_list) {
      skipForm(r, a.form, header);
      continue;
    }
    const v = readForm(r, a.form, a.implicitConst, header);
    return v.kind === 'secOffset' ? v.value : v.kind === 'udata' ? Number(v.value) : undefined;
  }
  return undefined;
}

/** Attribute helpers that don't need the unit's string or address tables. */
export function attrNumber(die: Die, at: number): number | undefined {
  const v = die.attrs.get(at);
  if (!v) return undefined;
  if (v.kind === 'udata' || v.kind === 'sdata') return Number(v.value);
  if (v.kind === 'secOffset' || v.kind === 'listx') return v.value;
  return undefined;
}

export function attrRef(die: Die, at: number): DebugInfoOffset | undefined {
  const v = die.attrs.get(at);
  return v?.kind === 'ref' ? v.value : undefined;
}

export function attrFlag(die: Die, at: number): boolean {
  const v = die.attrs.get(at);
  return v?.kind === 'flag' ? v.value : false;
}

export { DwarfError, DW_AT };
export type { Abbrev };
