/**
 * The base names of the files each unit's line table lists, for the file → units index.
 * A distribution vmlinux has ~2,400 line tables listing ~1,000,000 file entries; reading
 * them as full headers made enough short-lived garbage to add ~40 MB of RSS. This reads the
 * common DWARF 5 shape (GCC and clang: names as line_strp/strp, directory as an index) into
 * one reused buffer and names each distinct string once. Any other shape returns false and
 * the caller uses the general header parser.
 */
import { DW_FORM, DW_LNCT } from './constants';
import type { DwarfSections } from './sections';

/** Thrown inside the scan when the bytes don't fit the fast shape; never escapes it. */
class NotFastShape extends Error {}

export class FileNameScanner {
  private buf = Buffer.alloc(1 << 16);
  private p = 0;
  private end = 0;
  private readonly names = new Map<number, string>();

  constructor(private readonly sections: DwarfSections) {}

  /** Calls `out` with each file's base name. False when the header needs the general parser. */
  scan(offset: number, out: (base: string) => void): boolean {
    const sec = this.sections.get('.debug_line');
    if (!sec || offset + 18 > sec.size) return false;
    let b = this.fill(offset, 18);
    const unitLength = b.readUInt32LE(0);
    if (unitLength >= 0xfffffff0 || b.readUInt16LE(4) !== 5) return false;
    const headerEnd = 12 + b.readUInt32LE(8);
    if (headerEnd > unitLength + 4 || offset + headerEnd > sec.size) return false;
    b = this.fill(offset, headerEnd);
    this.end = headerEnd;
    // After the fixed fields: opcode_base at 17, then its standard_opcode_lengths.
    this.p = 18 + Math.max(0, b[17] - 1);
    try {
      const dirFormats = this.formats();
      const dirs = this.count(dirFormats);
      for (let i = 0; i < dirs; i++) for (const f of dirFormats) this.skip(f.form);
      const fileFormats = this.formats();
      const files = this.count(fileFormats);
      for (let i = 0; i < files; i++) {
        for (const f of fileFormats) {
          if (f.type === DW_LNCT.path && (f.form === DW_FORM.line_strp || f.form === DW_FORM.strp)) {
            this.need(4);
            out(this.baseName(f.form, b.readUInt32LE(this.p)));
            this.p += 4;
          } else this.skip(f.form);
        }
      }
      return true;
    } catch (e) {
      if (e instanceof NotFastShape) return false;
      throw e;
    }
  }

  private fill(offset: number, length: number): Buffer {
    if (length > this.buf.length) this.buf = Buffer.alloc(length);
    this.sections.require('.debug_line').readInto(offset, length, this.buf);
    return this.buf;
  }

  private need(n: number): void {
    if (this.p + n > this.end) throw new NotFastShape();
  }

  private uleb(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      this.need(1);
      const x = this.buf[this.p++];
      v += (x & 0x7f) * mul;
      if (!(x & 0x80)) return v;
      mul *= 128;
    }
    throw new NotFastShape();
  }

  /**
   * An entry count. Every form here takes a byte or more, so a count past the bytes left is
   * corrupt; and with no formats the entries take no bytes, where a count like 2^50 would
   * spin with nothing to read. Both go to the general parser, which reports them.
   */
  private count(formats: ReadonlyArray<{ form: number }>): number {
    const n = this.uleb();
    if (n > 0 && (formats.length === 0 || n > this.end - this.p)) throw new NotFastShape();
    return n;
  }

  private formats(): Array<{ type: number; form: number }> {
    this.need(1);
    const count = this.buf[this.p++];
    const list: Array<{ type: number; form: number }> = [];
    for (let i = 0; i < count; i++) list.push({ type: this.uleb(), form: this.uleb() });
    return list;
  }

  private skip(form: number): void {
    const size = FIXED.get(form);
    if (size !== undefined) {
      this.need(size);
      this.p += size;
    } else if (form === DW_FORM.udata) this.uleb();
    else throw new NotFastShape();
  }

  private baseName(form: number, off: number): string {
    // line_strp and strp offsets live in different sections: keep them apart in one map.
    const key = form === DW_FORM.line_strp ? off : -1 - off;
    let v = this.names.get(key);
    if (v === undefined) {
      const full = this.sections.require(form === DW_FORM.line_strp ? '.debug_line_str' : '.debug_str').cstr(off);
      v = full.slice(full.lastIndexOf('/') + 1);
      this.names.set(key, v);
    }
    return v;
  }
}

/** Sizes of the forms the fast path steps over (32-bit DWARF only). */
const FIXED = new Map<number, number>([
  [DW_FORM.line_strp, 4],
  [DW_FORM.strp, 4],
  [DW_FORM.data1, 1],
  [DW_FORM.data2, 2],
  [DW_FORM.data4, 4],
  [DW_FORM.data8, 8],
  [DW_FORM.data16, 16],
]);
