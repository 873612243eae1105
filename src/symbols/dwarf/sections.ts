/**
 * Access to the DWARF sections of an ELF file without loading them whole: big sections
 * (.debug_info, .debug_line) are read one unit at a time; string and table sections go
 * through a small page cache so scattered lookups don't become one syscall each and memory
 * stays bounded on a 500 MB distribution vmlinux.
 */
import { SHT_NOBITS, type ElfFile, type ElfSection } from '../elf';
import { ByteReader, DwarfError, reportAt } from './reader';

const PAGE = 4096;
const MAX_PAGES = 1024;
const SHF_COMPRESSED = 0x800n;

export class PagedSection {
  private readonly pages = new Map<number, Buffer>();
  private lastPage = -1;

  constructor(
    private readonly elf: ElfFile,
    readonly info: ElfSection,
  ) {
    if ((info.flags & SHF_COMPRESSED) !== 0n) {
      throw new DwarfError(info.name, 0, 'section is compressed (SHF_COMPRESSED); decompress the vmlinux first with `objcopy --decompress-debug-sections`', elf.path);
    }
    // A section header pointing past the file (a truncated copy) fails on its first read, naming
    // the section, rather than at open, so the rest of the file's DWARF stays usable.
    const end = info.offset + info.size;
    if (!Number.isSafeInteger(end) || end > elf.fileSize) {
      this.overrun = `section of 0x${info.size.toString(16)} bytes at file offset 0x${info.offset.toString(16)} runs past the end of the file (size 0x${elf.fileSize.toString(16)}; truncated?)`;
    }
  }

  private readonly overrun: string | undefined;

  private inFile(): void {
    if (this.overrun !== undefined) throw new DwarfError(this.name, 0, this.overrun, this.file);
  }

  get name(): string {
    return this.info.name;
  }

  /** The ELF file's path, for errors. */
  get file(): string {
    return this.elf.path;
  }

  get size(): number {
    return this.info.size;
  }

  private page(index: number): Buffer {
    let p = this.pages.get(index);
    if (p) {
      // Re-insert so Map order is LRU order (already so when it was the last one used).
      if (index !== this.lastPage) {
        this.pages.delete(index);
        this.pages.set(index, p);
        this.lastPage = index;
      }
      return p;
    }
    this.inFile();
    this.lastPage = index;
    const start = index * PAGE;
    const len = Math.min(PAGE, this.info.size - start);
    p = this.elf.read(this.info.offset + start, len);
    this.pages.set(index, p);
    if (this.pages.size > MAX_PAGES) {
      const oldest = this.pages.keys().next().value;
      if (oldest !== undefined) this.pages.delete(oldest);
    }
    return p;
  }

  /** `length` bytes at `offset`, checked against the section's end. */
  bytes(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.info.size) {
      throw new DwarfError(this.name, reportAt(offset), `read of ${length} byte(s) at 0x${offset.toString(16)} runs past the section's end (size 0x${this.info.size.toString(16)})`, this.file);
    }
    const first = Math.floor(offset / PAGE);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / PAGE);
    if (first === last && length <= 1024) {
      const p = this.page(first);
      const o = offset - first * PAGE;
      return p.subarray(o, o + length);
    }
    // Large reads (a whole unit) bypass the cache so they don't evict the string pages.
    this.inFile();
    return this.elf.read(this.info.offset + offset, length);
  }

  /** Copy `length` bytes at `offset` into `target` (a reused buffer: no allocation). */
  readInto(offset: number, length: number, target: Buffer): void {
    if (offset < 0 || length < 0 || offset + length > this.info.size) {
      throw new DwarfError(this.name, reportAt(offset), `read of ${length} byte(s) at 0x${offset.toString(16)} runs past the section's end (size 0x${this.info.size.toString(16)})`, this.file);
    }
    this.inFile();
    this.elf.readInto(this.info.offset + offset, length, target);
  }

  /** A reader over [offset, offset+length) whose positions are section offsets. */
  reader(offset: number, length: number): ByteReader {
    return new ByteReader(this.bytes(offset, length), this.name, offset, 0, length, this.file);
  }

  /** A reader over whatever is left of the section from `offset`, up to `max` bytes. */
  readerFrom(offset: number, max = 64): ByteReader {
    return this.reader(offset, Math.min(max, this.info.size - offset));
  }

  cstr(offset: number): string {
    if (offset < 0 || offset >= this.info.size) throw new DwarfError(this.name, reportAt(offset), `string offset 0x${offset.toString(16)} is past the section's end`, this.file);
    // Most strings end in the page they start in: read them off the cached page, with no
    // view of it made per string (a line table header names hundreds of files).
    const first = Math.floor(offset / PAGE);
    const page = this.page(first);
    const o = offset - first * PAGE;
    const nul = page.indexOf(0, o);
    if (nul >= 0) return page.toString('utf8', o, nul);
    let len = 256;
    for (;;) {
      const avail = Math.min(len, this.info.size - offset);
      const b = this.bytes(offset, avail);
      const nul = b.indexOf(0);
      if (nul >= 0) return b.toString('utf8', 0, nul);
      if (avail < len) throw new DwarfError(this.name, offset, 'string runs past the end of the section (no NUL)', this.file);
      len *= 4;
    }
  }

  private shared: Map<number, string> | undefined;

  /** cstr, remembered: for small string sections whose strings are shared by many units. */
  cstrShared(offset: number): string {
    this.shared ??= new Map();
    let v = this.shared.get(offset);
    if (v === undefined) this.shared.set(offset, (v = this.cstr(offset)));
    return v;
  }

  /** The whole section, for small tables that are scanned end to end. */
  all(): Buffer {
    this.inFile();
    return this.elf.read(this.info.offset, this.info.size);
  }
}

export class DwarfSections {
  private readonly cache = new Map<string, PagedSection | null>();

  constructor(readonly elf: ElfFile) {}

  get(name: string): PagedSection | undefined {
    let s = this.cache.get(name);
    if (s === undefined) {
      const info = this.elf.section(name);
      // SHT_NOBITS (a debug-only file's .eh_frame) has no bytes to read: the same as absent.
      s = info && info.size > 0 && info.type !== SHT_NOBITS ? new PagedSection(this.elf, info) : null;
      this.cache.set(name, s);
    }
    return s ?? undefined;
  }

  require(name: string): PagedSection {
    const s = this.get(name);
    if (!s) throw new DwarfError(name, 0, `${this.elf.path} has no ${name} section`, this.elf.path);
    return s;
  }

  /** Whether the file carries DWARF at all (a stripped vmlinux does not). */
  hasDebugInfo(): boolean {
    return this.get('.debug_info') !== undefined;
  }
}
