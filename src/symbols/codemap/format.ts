/**
 * The code map: for every address of a vmlinux, the answer a one-off DWARF lookup gives
 * (the source line, and the function with each inlined call around it), written once to a
 * file so that a later process answers with a binary search and a few small reads instead
 * of decoding the units' line programs and DIEs (most of a cold `qkd decode`, bench D1).
 * It holds every address, not the answers some earlier run asked for: a new report is as
 * fast as an old one.
 *
 * Layout (little-endian): a header; the block index (each block's first address, u64);
 * the blocks (BLOCK records: u64 addresses, then u32 answers; an answer holds from its
 * address to the next record's); the scope nodes (parent, name, call file, call line, call
 * column: u32 each); the answers (innermost node, file, line, column: u32 each); the
 * strings (u32 offsets, then UTF-8); the code symbols by name (bucket starts by FNV-1a hash,
 * then name string, address low and high words: u32 each). NONE marks an absent node or string.
 */
import * as fs from 'node:fs';

export const MAGIC = 'QKDCMAP\0';
/** Bump when the answers change meaning (a fix in pcScopes' rules, say): old maps are then rebuilt. */
export const FORMAT_VERSION = 1;
export const BLOCK = 128;
export const HEADER_SIZE = 88;
export const NONE = 0xffff_ffff;
/** No unit covers these addresses. */
export const GAP = 0xffff_ffff;
/** The map could not answer for this unit (its DWARF did not read): ask the DWARF itself. */
export const ASK = 0xffff_fffe;

export interface Header {
  version: number;
  records: number;
  blocks: number;
  nodes: number;
  answers: number;
  strings: number;
  blockIndexAt: number;
  blocksAt: number;
  nodesAt: number;
  answersAt: number;
  stringOffsetsAt: number;
  stringDataAt: number;
  symbolBuckets: number;
  symbolBucketsAt: number;
  symbolsAt: number;
  /** The vmlinux it was built from: size and mtime (ms), checked again when it is opened. */
  sourceSize: number;
  sourceMtimeMs: number;
}

export function writeHeader(h: Header): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.write(MAGIC, 0, 'latin1');
  const u32 = [h.version, h.records, h.blocks, h.nodes, h.answers, h.strings, h.blockIndexAt, h.blocksAt, h.nodesAt, h.answersAt, h.stringOffsetsAt, h.stringDataAt, h.symbolBuckets, h.symbolBucketsAt, h.symbolsAt];
  u32.forEach((v, i) => b.writeUInt32LE(v, 8 + i * 4));
  b.writeDoubleLE(h.sourceSize, 72);
  b.writeDoubleLE(h.sourceMtimeMs, 80);
  return b;
}

function readHeader(b: Buffer): Header | undefined {
  if (b.length < HEADER_SIZE || b.toString('latin1', 0, 8) !== MAGIC) return undefined;
  const u = (i: number): number => b.readUInt32LE(8 + i * 4);
  return {
    version: u(0), records: u(1), blocks: u(2), nodes: u(3), answers: u(4), strings: u(5),
    blockIndexAt: u(6), blocksAt: u(7), nodesAt: u(8), answersAt: u(9), stringOffsetsAt: u(10), stringDataAt: u(11),
    symbolBuckets: u(12), symbolBucketsAt: u(13), symbolsAt: u(14),
    sourceSize: b.readDoubleLE(72), sourceMtimeMs: b.readDoubleLE(80),
  };
}

/** FNV-1a, 32 bits: the symbol buckets' hash. */
export function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ (name.charCodeAt(i) & 0xff), 0x01000193) >>> 0;
  return h;
}

export interface MappedLocation {
  path: string;
  line: number;
  column: number;
}

/** One frame of an address's answer, innermost first, as SourceInfo.inlineChainAt gives it. */
export interface MappedFrame {
  name: string;
  location?: MappedLocation;
  inlined: boolean;
}

/**
 * A code map file, read as asked: the header and block index at open, then per lookup one
 * block and the answer, nodes and strings it names, each a small read (a report needs a few
 * dozen; the tables are megabytes).
 */
export class CodeMap {
  private readonly strings = new Map<number, string>();
  private readonly scratch = Buffer.alloc(BLOCK * 12);

  private constructor(
    private readonly fd: number,
    readonly header: Header,
    private readonly firsts: BigUint64Array,
  ) {}

  /** The map in `file` if it is one of this format built from a file of `size` bytes and `mtimeMs`; else undefined. */
  static open(file: string, source?: { size: number; mtimeMs: number }): CodeMap | undefined {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return undefined;
    }
    try {
      const hb = Buffer.alloc(HEADER_SIZE);
      const h = fs.readSync(fd, hb, 0, HEADER_SIZE, 0) === HEADER_SIZE ? readHeader(hb) : undefined;
      if (!h || h.version !== FORMAT_VERSION) throw new Error('not a map of this version');
      if (source && (h.sourceSize !== source.size || h.sourceMtimeMs !== source.mtimeMs)) throw new Error('built from another file');
      const firsts = new BigUint64Array(h.blocks);
      const want = h.blocks * 8;
      if (fs.readSync(fd, new Uint8Array(firsts.buffer), 0, want, h.blockIndexAt) !== want) throw new Error('truncated');
      return new CodeMap(fd, h, firsts);
    } catch {
      fs.closeSync(fd);
      return undefined;
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  /**
   * The frames at pc, innermost first; `toLocal` maps the DWARF's paths to the user's. An
   * empty array: no unit covers pc. Undefined: the map has no answer there (ask the DWARF).
   */
  framesAt(pc: bigint, toLocal: (p: string) => string): MappedFrame[] | undefined {
    const answer = this.answerAt(pc);
    if (answer === undefined || answer === ASK) return undefined;
    if (answer === GAP) return [];
    const [leaf, file, line, column] = this.u32s(this.header.answersAt + answer * 16, 4);
    let where: MappedLocation | undefined = file === NONE ? undefined : { path: toLocal(this.str(file)), line, column };
    if (leaf === NONE) return [{ name: '', location: where, inlined: false }];
    const out: MappedFrame[] = [];
    for (let n = leaf; n !== NONE; ) {
      const [parent, name, cf, cl, cc] = this.u32s(this.header.nodesAt + n * 20, 5);
      out.push({ name: this.str(name), location: where, inlined: parent !== NONE });
      where = cf === NONE ? undefined : { path: toLocal(this.str(cf)), line: cl, column: cc };
      n = parent;
    }
    return out;
  }

  /**
   * The address of the code symbol `name` as the decoder takes it (of several, a function
   * before other kinds, a global before a local, then the symbol table's order); undefined
   * when the file has no code symbol of that name.
   */
  symbol(name: string): bigint | undefined {
    const h = this.header;
    if (!h.symbolBuckets) return undefined;
    const bucket = nameHash(name) & (h.symbolBuckets - 1);
    const [from, to] = this.u32s(h.symbolBucketsAt + bucket * 4, 2);
    if (to <= from) return undefined;
    const entries = Buffer.from(this.read(h.symbolsAt + from * 12, (to - from) * 12));
    for (let i = 0; i < to - from; i++) {
      if (this.str(entries.readUInt32LE(i * 12)) === name) return (BigInt(entries.readUInt32LE(i * 12 + 8)) << 32n) | BigInt(entries.readUInt32LE(i * 12 + 4));
    }
    return undefined;
  }

  private answerAt(pc: bigint): number | undefined {
    const f = this.firsts;
    let lo = 0;
    let hi = f.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (f[mid] <= pc) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    const bytes = this.read(this.header.blocksAt + found * BLOCK * 12, BLOCK * 12);
    let i = Math.min(BLOCK, this.header.records - found * BLOCK) - 1;
    while (i > 0 && bytes.readBigUInt64LE(i * 8) > pc) i--;
    return bytes.readUInt32LE(BLOCK * 8 + i * 4);
  }

  private read(at: number, n: number): Buffer {
    const b = n <= this.scratch.length ? this.scratch.subarray(0, n) : Buffer.alloc(n);
    if (fs.readSync(this.fd, b, 0, n, at) !== n) throw new Error('the code map is truncated');
    return b;
  }

  private u32s(at: number, count: number): number[] {
    const b = this.read(at, count * 4);
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(b.readUInt32LE(i * 4));
    return out;
  }

  private str(id: number): string {
    let s = this.strings.get(id);
    if (s === undefined) {
      const [from, to] = this.u32s(this.header.stringOffsetsAt + id * 4, 2);
      this.strings.set(id, (s = this.read(this.header.stringDataAt + from, to - from).toString('utf8')));
    }
    return s;
  }
}
