/**
 * DWARF 5 line-table directory and file entries: their self-describing formats and the
 * string forms a name may use (inline, .debug_str, .debug_line_str, str_offsets).
 */
import { DW_FORM, DW_LNCT } from './constants';
import { type ByteReader, DwarfError } from './reader';
import type { DwarfSections } from './sections';

/** Resolves the indirect string forms a v5 entry may use, turning their errors into .debug_line ones. */
export class StringResolver {
  constructor(
    private readonly sections: DwarfSections,
    private readonly offsetSize: 4 | 8,
    private readonly strOffsetsBase: number | undefined,
  ) {}

  at(r: ByteReader, sectionName: string, offset: number, at: number): string {
    try {
      const sec = this.sections.require(sectionName);
      // .debug_line_str is small and each name in it is used by hundreds of units.
      return sectionName === '.debug_line_str' ? sec.cstrShared(offset) : sec.cstr(offset);
    } catch (e) {
      if (e instanceof DwarfError) return r.fail(`name via ${sectionName}: ${e.local}`, at);
      throw e;
    }
  }

  indexed(r: ByteReader, index: number, at: number): string {
    if (this.strOffsetsBase === undefined) return r.fail('DW_FORM_strx name needs the unit\'s DW_AT_str_offsets_base, which the caller did not give', at);
    let strOff: number;
    try {
      const offs = this.sections.require('.debug_str_offsets');
      strOff = offs.reader(this.strOffsetsBase + index * this.offsetSize, this.offsetSize).offsetOf(this.offsetSize);
    } catch (e) {
      if (e instanceof DwarfError) return r.fail(`string index ${index}: ${e.local}`, at);
      throw e;
    }
    return this.at(r, '.debug_str', strOff, at);
  }
}

export interface Entry {
  path: string;
  dirIndex: number;
  md5: string | undefined;
}

type FormValue = string | number | bigint | Buffer;

/** A v5 directory or file table: its entry format, count, and entries. */
export function readEntryTable(r: ByteReader, kind: 'directory' | 'file', offsetSize: 4 | 8, strings: StringResolver): Entry[] {
  const formatCount = r.u8();
  const formats: { type: number; form: number }[] = [];
  for (let i = 0; i < formatCount; i++) formats.push({ type: r.uleb(), form: r.uleb() });
  const countAt = r.pos;
  const count = r.uleb();
  if (count > 0 && formats.length === 0) r.fail(`${kind} table has ${count} entries but no entry format`, countAt);
  // Every accepted form takes at least one byte, so a count beyond the bytes left is corrupt;
  // checking first avoids looping (or allocating) for a count like 2^50.
  if (count > r.remaining) r.fail(`${kind} table claims ${count} entries, more than the ${r.remaining} header bytes left`, countAt);
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const entryAt = r.pos;
    let path: string | undefined;
    let dirIndex = 0;
    let md5: string | undefined;
    for (const f of formats) {
      const at = r.pos;
      const value = readFormValue(r, f.form, kind, offsetSize, strings);
      switch (f.type) {
        case DW_LNCT.path:
          if (typeof value !== 'string') r.fail(`${kind} entry has DW_LNCT_path in non-string form 0x${f.form.toString(16)}`, at);
          path = value;
          break;
        case DW_LNCT.directory_index:
          if (typeof value !== 'number') r.fail(`${kind} entry has DW_LNCT_directory_index in form 0x${f.form.toString(16)}`, at);
          dirIndex = value;
          break;
        case DW_LNCT.MD5:
          if (!Buffer.isBuffer(value) || value.length !== 16) r.fail(`${kind} entry has DW_LNCT_MD5 in form 0x${f.form.toString(16)} (needs DW_FORM_data16)`, at);
          md5 = value.toString('hex');
          break;
        default:
          // Timestamps, sizes and vendor content (e.g. LLVM's embedded source) are not needed.
          break;
      }
    }
    if (path === undefined) r.fail(`${kind} entry ${i} has no DW_LNCT_path`, entryAt);
    out.push({ path, dirIndex, md5 });
  }
  return out;
}

function readFormValue(r: ByteReader, form: number, kind: string, offsetSize: 4 | 8, strings: StringResolver): FormValue {
  const at = r.pos;
  switch (form) {
    case DW_FORM.string:
      return r.cstr();
    case DW_FORM.line_strp:
      return strings.at(r, '.debug_line_str', r.offsetOf(offsetSize), at);
    case DW_FORM.strp:
      return strings.at(r, '.debug_str', r.offsetOf(offsetSize), at);
    case DW_FORM.strx:
    case DW_FORM.GNU_str_index:
      return strings.indexed(r, r.uleb(), at);
    case DW_FORM.strx1:
    case DW_FORM.strx2:
    case DW_FORM.strx3:
    case DW_FORM.strx4:
      return strings.indexed(r, fixed(r, form - DW_FORM.strx1 + 1), at);
    case DW_FORM.strp_sup:
    case DW_FORM.GNU_strp_alt:
      return r.fail(`${kind} name is in a supplementary object file (form 0x${form.toString(16)}), which is not supported`, at);
    case DW_FORM.udata:
      return r.uleb();
    case DW_FORM.sdata:
      return r.sleb();
    case DW_FORM.data1:
    case DW_FORM.flag:
      return r.u8();
    case DW_FORM.data2:
      return r.u16();
    case DW_FORM.data4:
      return r.u32();
    case DW_FORM.data8:
      return r.u64();
    case DW_FORM.sec_offset:
      return r.offsetOf(offsetSize);
    case DW_FORM.data16:
      return r.bytes(16);
    case DW_FORM.block:
      return r.bytes(r.uleb());
    case DW_FORM.block1:
      return r.bytes(r.u8());
    case DW_FORM.block2:
      return r.bytes(r.u16());
    case DW_FORM.block4:
      return r.bytes(r.u32());
    default:
      return r.fail(`${kind} entry format uses form 0x${form.toString(16)}, which a line table header may not`, at);
  }
}

/** Little-endian unsigned of 1 to 6 bytes (the sizes a double holds exactly). */
export function fixed(r: ByteReader, size: number): number {
  r.need(size);
  const v = r.buf.readUIntLE(r.pos, size);
  r.pos += size;
  return v;
}
