/**
 * Bounds-checked little-endian reader over one section's bytes. Every read checks the end
 * first, so corrupt or truncated DWARF fails with a DwarfError that names the section and
 * offset instead of returning garbage or looping. `base` is the section offset of buf[0],
 * so positions in errors are section offsets a user can look up with readelf.
 */

export class DwarfError extends Error {
  /** The message without the file: for wrapping into another DwarfError that names it once. */
  readonly local: string;

  constructor(
    readonly section: string,
    readonly offset: number,
    readonly detail: string,
    /** The ELF file the section is in, when the reader knows it; named after the rest so messages still start with the section. */
    readonly file?: string,
  ) {
    const local = `${section} at 0x${offset.toString(16)}: ${detail}`;
    super(file ? `${local} (in ${file})` : local);
    this.local = local;
    this.name = 'DwarfError';
  }
}

/**
 * Where to report an error about a wild offset (one read from another section, possibly past
 * 2^53 and so rounded): there is no byte of it to point at, so at the section's start; the
 * detail still names the value.
 */
export function reportAt(offset: number): number {
  return Number.isSafeInteger(offset) && offset >= 0 ? offset : 0;
}

export class ByteReader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    readonly section: string,
    readonly base = 0,
    start = 0,
    readonly end = buf.length,
    readonly file?: string,
  ) {
    this.pos = start;
  }

  /** Section offset of the next byte. */
  get offset(): number {
    return this.base + this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  fail(detail: string, at = this.pos): never {
    throw new DwarfError(this.section, this.base + at, detail, this.file);
  }

  need(n: number): void {
    if (n < 0 || this.pos + n > this.end) this.fail(`truncated: needs ${n} byte(s), only ${Math.max(0, this.end - this.pos)} left`);
  }

  /** A reader over the next `n` bytes; this reader skips past them. */
  sub(n: number): ByteReader {
    this.need(n);
    const r = new ByteReader(this.buf, this.section, this.base, this.pos, this.pos + n, this.file);
    this.pos += n;
    return r;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  i8(): number {
    this.need(1);
    return this.buf.readInt8(this.pos++);
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = this.buf.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A 64-bit value that must fit a JS number, such as an offset or a length. */
  u64n(what = 'value'): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} 0x${v.toString(16)} is too large`, this.pos - 8);
    return Number(v);
  }

  /** Unsigned value of 1, 2, 4 or 8 bytes. */
  uN(size: number): bigint {
    switch (size) {
      case 1:
        return BigInt(this.u8());
      case 2:
        return BigInt(this.u16());
      case 4:
        return BigInt(this.u32());
      case 8:
        return this.u64();
      default:
        return this.fail(`unsupported field size ${size}`);
    }
  }

  address(size: number): bigint {
    return this.uN(size);
  }

  /** A section offset: 4 bytes in 32-bit DWARF, 8 in 64-bit DWARF. */
  offsetOf(offsetSize: 4 | 8): number {
    return offsetSize === 4 ? this.u32() : this.u64n('offset');
  }

  /** ULEB128 as a number; values past 2^53 are an error rather than silently rounded. */
  uleb(): number {
    let result = 0;
    let mul = 1;
    const start = this.pos;
    for (;;) {
      if (this.pos >= this.end) this.fail('truncated LEB128', start);
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) break;
      mul *= 128;
      if (mul > 2 ** 56) return this.lebTail(start);
    }
    if (result > Number.MAX_SAFE_INTEGER) this.fail('LEB128 value too large', start);
    return result;
  }

  private lebTail(start: number): never {
    this.pos = start;
    const v = this.ulebBig();
    return this.fail(`LEB128 value 0x${v.toString(16)} too large`, start);
  }

  ulebBig(): bigint {
    let result = 0n;
    let shift = 0n;
    const start = this.pos;
    for (;;) {
      if (this.pos >= this.end) this.fail('truncated LEB128', start);
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) break;
      if (shift > 70n) this.fail('LEB128 longer than 10 bytes', start);
    }
    return result;
  }

  sleb(): number {
    const v = this.slebBig();
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) this.fail('SLEB128 value out of range');
    return Number(v);
  }

  slebBig(): bigint {
    let result = 0n;
    let shift = 0n;
    const start = this.pos;
    let b: number;
    do {
      if (this.pos >= this.end) this.fail('truncated LEB128', start);
      b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (shift > 70n && b & 0x80) this.fail('LEB128 longer than 10 bytes', start);
    } while (b & 0x80);
    if (b & 0x40) result -= 1n << shift;
    return result;
  }

  /** NUL-terminated string; a missing NUL is an error. */
  cstr(): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) this.fail('string runs past the end of the section (no NUL)');
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  /** Past a NUL-terminated string without decoding it. */
  cstrSkip(): void {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) this.fail('string runs past the end of the section (no NUL)');
    this.pos = nul + 1;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /**
   * The initial length of a unit: returns the unit's byte count after the length field and
   * whether it uses 64-bit DWARF offsets.
   */
  initialLength(): { length: number; offsetSize: 4 | 8 } {
    const at = this.pos;
    const l = this.u32();
    if (l === 0xffffffff) return { length: this.u64n('unit length'), offsetSize: 8 };
    if (l >= 0xfffffff0) this.fail(`reserved initial length 0x${l.toString(16)}`, at);
    return { length: l, offsetSize: 4 };
  }
}
