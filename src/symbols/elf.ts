/**
 * ELF64 reader: section headers, .symtab, and the bytes of allocated sections.
 * Only the parts asked for are read from disk, so a 500 MB distribution vmlinux opens fast.
 */
import * as fs from 'node:fs';

export interface ElfSection {
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
  /** sh_link: for .symtab, the index of its string table. */
  link: number;
}

export interface ElfSymbol {
  name: string;
  value: bigint;
  size: number;
  type: 'func' | 'object' | 'other';
  bind: 'local' | 'global' | 'weak' | 'other';
}

export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_NOBITS = 8;
const SHF_ALLOC = 0x2n;

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const EM_RISCV = 243;

export class ElfError extends Error {
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'ElfError';
  }
}

export class ElfFile {
  readonly machine: number;
  readonly sections: ElfSection[];
  readonly entry: bigint;

  /** `source` is an open file descriptor, or the file's bytes already in memory (fromBuffer). */
  private constructor(readonly path: string, private readonly source: number | Buffer, header: Buffer, readonly fileSize: number) {
    this.machine = header.readUInt16LE(18);
    this.entry = header.readBigUInt64LE(24);
    const shoff = Number(header.readBigUInt64LE(40));
    const shentsize = header.readUInt16LE(58);
    const shnum = header.readUInt16LE(60);
    const shstrndx = header.readUInt16LE(62);
    if (shentsize !== 64) throw new ElfError(path, `unexpected section header size ${shentsize}`);
    if (shoff + shnum * shentsize > fileSize) throw new ElfError(path, 'section headers run past the end of the file (truncated?)');
    const table = this.read(shoff, shnum * shentsize);
    const raw = Array.from({ length: shnum }, (_, i) => {
      const o = i * shentsize;
      return {
        nameOff: table.readUInt32LE(o),
        type: table.readUInt32LE(o + 4),
        flags: table.readBigUInt64LE(o + 8),
        addr: table.readBigUInt64LE(o + 16),
        offset: Number(table.readBigUInt64LE(o + 24)),
        size: Number(table.readBigUInt64LE(o + 32)),
        link: table.readUInt32LE(o + 40),
      };
    });
    const strtab = raw[shstrndx];
    if (!strtab) throw new ElfError(path, 'no section name table');
    const names = this.read(strtab.offset, strtab.size);
    this.sections = raw.map((s) => ({ ...s, name: cstr(names, s.nameOff) }));
  }

  /** Open a file and check that it is a little-endian ELF64; errors name the file and what is wrong. */
  static open(path: string): ElfFile {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw new ElfError(path, `cannot open: ${(e as Error).message}`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      const header = Buffer.alloc(64);
      const n = fs.readSync(fd, header, 0, 64, 0);
      checkHeader(path, header, n);
      return new ElfFile(path, fd, header, size);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** An ELF image already in memory (a test's mutated copy, a file read whole); `path` only names it in errors. */
  static fromBuffer(path: string, bytes: Buffer): ElfFile {
    const header = Buffer.alloc(64);
    const n = bytes.copy(header, 0, 0, 64);
    checkHeader(path, header, n);
    return new ElfFile(path, bytes, header, bytes.length);
  }

  close(): void {
    if (typeof this.source === 'number') fs.closeSync(this.source);
  }

  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  read(offset: number, length: number): Buffer {
    // Checked before allocating: a corrupt header's size (up to 2^64) must not become a huge Buffer.alloc.
    this.checkRange(offset, length);
    const buf = Buffer.alloc(length);
    this.readInto(offset, length, buf);
    return buf;
  }

  private checkRange(offset: number, length: number): void {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.fileSize)) throw new ElfError(this.path, `read of ${length} bytes at ${offset} runs past the end of the file (truncated?)`);
  }

  /** Like read, into the start of a caller's buffer. */
  readInto(offset: number, length: number, target: Buffer): void {
    this.checkRange(offset, length);
    if (typeof this.source !== 'number') {
      this.source.copy(target, 0, offset, offset + length);
      return;
    }
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.source, target, done, length - done, offset + done);
      if (n === 0) throw new ElfError(this.path, `unexpected end of file at ${offset + done}`);
      done += n;
    }
  }

  sectionData(s: ElfSection): Buffer {
    if (s.type !== SHT_NOBITS) return this.read(s.offset, s.size);
    // Its zeros are made, not read: only a corrupt header asks for more than any real .bss.
    if (!(s.size <= MAX_NOBITS)) throw new ElfError(this.path, `section ${s.name} (SHT_NOBITS) claims 0x${s.size.toString(16)} bytes, too many to make as zeros`);
    return Buffer.alloc(s.size);
  }

  /** The file's bytes at a virtual address, from the allocated section that holds them. */
  readVirtual(addr: bigint, length: number): Buffer | undefined {
    const s = this.sections.find((x) => (x.flags & SHF_ALLOC) !== 0n && x.type === SHT_PROGBITS && addr >= x.addr && addr + BigInt(length) <= x.addr + BigInt(x.size));
    if (!s) return undefined;
    return this.read(s.offset + Number(addr - s.addr), length);
  }

  symbols(): ElfSymbol[] {
    const symtab = this.sections.find((s) => s.type === SHT_SYMTAB);
    if (!symtab) return [];
    const strsec = this.sections[symtab.link];
    if (!strsec) throw new ElfError(this.path, '.symtab has no string table');
    const data = this.sectionData(symtab);
    const strs = this.sectionData(strsec);
    const out: ElfSymbol[] = [];
    for (let o = 24; o + 24 <= data.length; o += 24) {
      const info = data[o + 4];
      const shndx = data.readUInt16LE(o + 6);
      if (shndx === 0) continue;
      const t = info & 0xf;
      const b = info >> 4;
      out.push({
        name: cstr(strs, data.readUInt32LE(o)),
        value: data.readBigUInt64LE(o + 8),
        size: Number(data.readBigUInt64LE(o + 16)),
        type: t === 2 ? 'func' : t === 1 ? 'object' : 'other',
        bind: b === 0 ? 'local' : b === 1 ? 'global' : b === 2 ? 'weak' : 'other',
      });
    }
    return out;
  }
}

const MAX_NOBITS = 1 << 26;

function checkHeader(path: string, header: Buffer, n: number): void {
  if (n < 4 || header.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(path, 'not an ELF file (no \\x7fELF magic); give the uncompressed vmlinux, not bzImage or Image');
  if (n < 64) throw new ElfError(path, 'file is too short for an ELF header');
  if (header[4] !== 2) throw new ElfError(path, 'not a 64-bit ELF file');
  if (header[5] !== 1) throw new ElfError(path, 'not a little-endian ELF file');
}

function cstr(buf: Buffer, offset: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('latin1', offset, end < 0 ? buf.length : end);
}
