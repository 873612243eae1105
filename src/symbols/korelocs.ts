/**
 * Applying a kernel module's RELA relocations to one of its sections, in place, for the
 * debug sections kolink.ts links. A module has thousands to tens of thousands of these, so
 * the loop reads the entries as words straight from the Buffer and does its 64-bit
 * arithmetic on two uint32 halves: a BigInt per relocation would allocate. Each arch's
 * relocation types map to one of a few operations (what drgn's apply_elf_reloc_* do, after
 * the arch ELF ABIs).
 */
import { EM_AARCH64, EM_RISCV, EM_X86_64, ElfError } from './elf';

/** Symbol values (after placement) as uint32 halves, indexed by symbol number. */
export interface SymbolValues {
  lo: Uint32Array;
  hi: Uint32Array;
}

/** One RELA section and the bytes it patches, both as ranges of `buf`. */
export interface RelaJob {
  file: string;
  buf: Buffer;
  relaName: string;
  relaOffset: number;
  /** A multiple of 24 (checked by the caller). */
  relaSize: number;
  targetName: string;
  targetOffset: number;
  targetSize: number;
  /** The target's address (0 for a non-alloc section, so P is an offset in it, as drgn has it). */
  targetAddrLo: number;
  targetAddrHi: number;
  syms: SymbolValues;
}

// What a relocation does. 0 is "unknown type"; values index WIDTH.
const UNKNOWN = 0;
const NONE = 1;
const ABS64 = 2;
const ABS32 = 3;
const ABS16 = 4;
const PREL64 = 5;
const PREL32 = 6;
const PREL16 = 7;
const ADD8 = 8;
const ADD16 = 9;
const ADD32 = 10;
const ADD64 = 11;
const SUB8 = 12;
const SUB16 = 13;
const SUB32 = 14;
const SUB64 = 15;
const SUB6 = 16;
const SET6 = 17;
const SET8 = 18;
const SET16 = 19;
const SET32 = 20;
const SET_ULEB128 = 21;
const SUB_ULEB128 = 22;

/** Bytes each operation touches (ULEB128 ones: at least one; the real length is read). */
const WIDTH = Uint8Array.from([0, 0, 8, 4, 2, 8, 4, 2, 1, 2, 4, 8, 1, 2, 4, 8, 1, 1, 1, 2, 4, 1, 1]);

function table(pairs: Array<[number, number]>): Uint8Array {
  const t = new Uint8Array(Math.max(...pairs.map((p) => p[0])) + 1);
  for (const [type, op] of pairs) t[type] = op;
  return t;
}

const OPS = new Map<number, Uint8Array>([
  // R_X86_64_32 and _32S store the same low 32 bits; only a linker checks which extension fits.
  [EM_X86_64, table([[0, NONE], [1, ABS64], [2, PREL32], [10, ABS32], [11, ABS32], [24, PREL64]])],
  // 256 is R_AARCH64_NULL, the early ABI's name for "no relocation", which binutils still accepts.
  [EM_AARCH64, table([[0, NONE], [256, NONE], [257, ABS64], [258, ABS32], [259, ABS16], [260, PREL64], [261, PREL32], [262, PREL16]])],
  [
    EM_RISCV,
    table([
      [0, NONE], [1, ABS32], [2, ABS64],
      [33, ADD8], [34, ADD16], [35, ADD32], [36, ADD64],
      [37, SUB8], [38, SUB16], [39, SUB32], [40, SUB64],
      [52, SUB6], [53, SET6], [54, SET8], [55, SET16], [56, SET32], [57, PREL32],
      [60, SET_ULEB128], [61, SUB_ULEB128],
    ]),
  ],
]);

const MACHINE_NAMES = new Map([[EM_X86_64, 'x86_64'], [EM_AARCH64, 'aarch64'], [EM_RISCV, 'riscv64']]);

export function relocatableMachine(machine: number): boolean {
  return OPS.has(machine);
}

export function machineName(machine: number): string {
  return MACHINE_NAMES.get(machine) ?? `machine ${machine}`;
}

const TWO32 = 0x1_0000_0000;
/** The ULEB128 value being rewritten, as two uint32 halves: module scope so no call allocates. */
let ulebLo = 0;
let ulebHi = 0;

/**
 * Apply every relocation of one RELA section. Unknown types are skipped and counted in
 * `unknown` (type → count) for the caller to warn about; an entry that points outside its
 * section or names a symbol that does not exist means a corrupt or cut-short file.
 */
export function applyRela(job: RelaJob, machine: number, unknown: Map<number, number>): void {
  const ops = OPS.get(machine);
  if (!ops) throw new ElfError(job.file, `relocations for ${machineName(machine)} are not supported`);
  const { buf, targetOffset: base, targetSize: size, targetAddrLo: pLo0, targetAddrHi: pHi0 } = job;
  // Locals, not property reads per entry: a module is linked once, so this loop mostly runs
  // in the interpreter, where every load counts.
  const symLo = job.syms.lo;
  const symHi = job.syms.hi;
  const nsyms = symLo.length;
  const nops = ops.length;
  const w = wordsOf(buf, job.relaOffset, job.relaSize);
  const end = w.length;
  for (let i = 0; i < end; i += 6) {
    // r_offset (lo, hi), r_info (type, symbol), r_addend (lo, hi)
    const type = w[i + 2];
    const op = type < nops ? ops[type] : UNKNOWN;
    // UNKNOWN (0) or NONE (1).
    if (op <= NONE) {
      if (op === UNKNOWN) unknown.set(type, (unknown.get(type) ?? 0) + 1);
      continue;
    }
    const offLo = w[i];
    const sym = w[i + 3];
    if (w[i + 1] !== 0 || offLo + WIDTH[op] > size) throw corrupt(job, i / 6, `its ${WIDTH[op]} bytes at offset 0x${(w[i + 1] * TWO32 + offLo).toString(16)} run past ${job.targetName} (size 0x${size.toString(16)})`);
    if (sym >= nsyms) throw corrupt(job, i / 6, `its symbol ${sym} is past the end of the symbol table (${nsyms} entries)`);
    const at = base + offLo;
    if (op === ABS32) {
      // Most entries by far (offsets into .debug_str, .debug_abbrev, ...): only the low half
      // of S + A is stored, so the 64-bit arithmetic and the switch are skipped.
      const v = symLo[sym] + w[i + 4];
      buf[at] = v;
      buf[at + 1] = v >>> 8;
      buf[at + 2] = v >>> 16;
      buf[at + 3] = v >>> 24;
      continue;
    }
    // V = S + A, with the addend's sign carried by two's complement in the high half.
    let lo = symLo[sym] + w[i + 4];
    let hi = (symHi[sym] + w[i + 5] + (lo >= TWO32 ? 1 : 0)) >>> 0;
    lo >>>= 0;
    if (op === PREL64 || op === PREL32 || op === PREL16) {
      // V -= P, P = target address + offset.
      let pLo = pLo0 + offLo;
      const pHi = (pHi0 + (pLo >= TWO32 ? 1 : 0)) >>> 0;
      pLo >>>= 0;
      const d = lo - pLo;
      hi = (hi - pHi - (d < 0 ? 1 : 0)) >>> 0;
      lo = d >>> 0;
    }
    switch (op) {
      case PREL32:
      case SET32:
        put32(buf, at, lo);
        break;
      case ABS64:
      case PREL64:
        put32(buf, at, lo);
        put32(buf, at + 4, hi);
        break;
      case ABS16:
      case PREL16:
      case SET16:
        buf[at] = lo;
        buf[at + 1] = lo >>> 8;
        break;
      case SET8:
        buf[at] = lo;
        break;
      case SET6:
        buf[at] = (buf[at] & 0xc0) | (lo & 0x3f);
        break;
      case SUB6:
        buf[at] = (buf[at] & 0xc0) | ((buf[at] - lo) & 0x3f);
        break;
      case ADD8:
        buf[at] += lo;
        break;
      case SUB8:
        buf[at] -= lo;
        break;
      case ADD16:
      case SUB16: {
        const v = (buf[at] | (buf[at + 1] << 8)) + (op === ADD16 ? lo : -lo);
        buf[at] = v;
        buf[at + 1] = v >>> 8;
        break;
      }
      case ADD32:
        put32(buf, at, get32(buf, at) + lo);
        break;
      case SUB32:
        put32(buf, at, get32(buf, at) - lo);
        break;
      case ADD64: {
        const s = get32(buf, at) + lo;
        put32(buf, at + 4, get32(buf, at + 4) + hi + (s >= TWO32 ? 1 : 0));
        put32(buf, at, s);
        break;
      }
      case SUB64: {
        const d = get32(buf, at) - lo;
        put32(buf, at + 4, get32(buf, at + 4) - hi - (d < 0 ? 1 : 0));
        put32(buf, at, d);
        break;
      }
      case SET_ULEB128:
      case SUB_ULEB128: {
        // The assembler padded the field to its final length; the value is rewritten in
        // exactly that many bytes, as binutils does (bits that do not fit are dropped).
        const len = ulebLength(buf, at, base + size);
        if (len < 0) throw corrupt(job, i / 6, `its ULEB128 at offset 0x${offLo.toString(16)} runs past ${job.targetName}`);
        if (op === SUB_ULEB128) {
          readUleb(buf, at, len);
          const d = ulebLo - lo;
          hi = (ulebHi - hi - (d < 0 ? 1 : 0)) >>> 0;
          lo = d >>> 0;
        }
        writeUleb(buf, at, len, lo, hi);
        break;
      }
    }
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A table (RELA entries, symbols) as little-endian 32-bit words, for reading. Word loads are
 * what keep a cold link (run once per module, mostly in the interpreter) fast: a
 * Buffer.readUInt32LE is a checked call per field. The bytes are viewed in place when
 * aligned, else copied once; `size` is a multiple of 4.
 */
export function wordsOf(buf: Buffer, offset: number, size: number): Uint32Array {
  const at = buf.byteOffset + offset;
  if (LITTLE_ENDIAN_HOST && at % 4 === 0) return new Uint32Array(buf.buffer, at, size / 4);
  const w = new Uint32Array(size / 4);
  for (let i = 0; i < w.length; i++) w[i] = buf.readUInt32LE(offset + i * 4);
  return w;
}

// Byte-wise so a field at any alignment works; a Uint8Array store keeps the low 8 bits.
function get32(buf: Buffer, at: number): number {
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
}

export function put32(buf: Buffer, at: number, v: number): void {
  buf[at] = v;
  buf[at + 1] = v >>> 8;
  buf[at + 2] = v >>> 16;
  buf[at + 3] = v >>> 24;
}

function corrupt(job: RelaJob, index: number, what: string): ElfError {
  return new ElfError(job.file, `${job.relaName} entry ${index}: ${what}; the file is corrupt or truncated`);
}

/** Bytes in the ULEB128 at `at`, or -1 if it has no last byte before `limit`. */
function ulebLength(buf: Buffer, at: number, limit: number): number {
  for (let p = at; p < limit; p++) if ((buf[p] & 0x80) === 0) return p - at + 1;
  return -1;
}

function readUleb(buf: Buffer, at: number, len: number): void {
  let lo = 0;
  let hi = 0;
  // From the last byte back: each step shifts the 64-bit value left 7 and ors in 7 bits.
  for (let i = len - 1; i >= 0; i--) {
    hi = ((hi << 7) | (lo >>> 25)) >>> 0;
    lo = ((lo << 7) | (buf[at + i] & 0x7f)) >>> 0;
  }
  ulebLo = lo;
  ulebHi = hi;
}

function writeUleb(buf: Buffer, at: number, len: number, lo: number, hi: number): void {
  for (let i = 0; i < len; i++) {
    buf[at + i] = (lo & 0x7f) | (i < len - 1 ? 0x80 : 0);
    lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
    hi >>>= 7;
  }
}
