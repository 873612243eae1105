/**
 * .debug_line: line-number program headers and the address/line matrix they encode, for
 * DWARF versions 2 to 5 (GCC and clang kernel builds). Only the bytes of the requested unit
 * are read, because a distribution vmlinux carries tens of megabytes of line programs and a
 * debugger needs just the units that cover the code being looked at.
 *
 * Corrupt input fails with a DwarfError naming .debug_line and the offset of the bad byte:
 * every read is bounded by the unit, and every loop consumes at least one byte per turn.
 */
import { posix } from 'node:path';
import type { DebugLineOffset } from './offsets';
import { ByteReader, DwarfError, reportAt } from './reader';
import { fixed, readEntryTable, StringResolver } from './lineentries';
import type { DwarfSections, PagedSection } from './sections';

// Numbering from the DWARF 5 standard, section 7.22; kept here because only this file uses it.
const DW_LNS = { copy: 1, advance_pc: 2, advance_line: 3, set_file: 4, set_column: 5, negate_stmt: 6, set_basic_block: 7, const_add_pc: 8, fixed_advance_pc: 9, set_prologue_end: 10, set_epilogue_begin: 11, set_isa: 12 } as const;
const DW_LNE = { end_sequence: 1, set_address: 2, define_file: 3, set_discriminator: 4 } as const;

const SECTION = '.debug_line';

export interface LineFile {
  name: string;
  dirIndex: number;
  dir: string;
  /** dir joined with name, and with compDir when still relative (posix path join). */
  path: string;
  md5?: string;
}

export interface LineRow {
  address: bigint;
  file: number;
  line: number;
  column: number;
  isStmt: boolean;
  basicBlock: boolean;
  endSequence: boolean;
  prologueEnd: boolean;
  epilogueBegin: boolean;
  discriminator: number;
  opIndex: number;
}

export interface LineHeader {
  offset: DebugLineOffset;
  version: number;
  offsetSize: 4 | 8;
  addressSize: number;
  minInstLength: number;
  maxOpsPerInst: number;
  defaultIsStmt: boolean;
  lineBase: number;
  lineRange: number;
  opcodeBase: number;
  /** Operand counts of opcodes 1 .. opcodeBase-1 (index 0 is opcode 1). */
  standardOpcodeLengths: number[];
  /**
   * The directory table as stored. In v5 entry 0 is the compilation directory and file
   * entries index it directly; in v2-4 the compilation directory is implicit, so a file's
   * dirIndex i (i >= 1) names includeDirs[i - 1].
   */
  includeDirs: string[];
  /** In table order (v5 files[0] is file 0, v2-4 files[0] is file 1); parseLineTable appends DW_LNE_define_file entries. */
  files: LineFile[];
  /** section offsets */
  programStart: number;
  unitEnd: number;
}

export interface LineTable {
  header: LineHeader;
  rows: LineRow[];
}

/** Only the header (cheap: used to index which files each unit mentions without running programs). */
export function parseLineHeader(sections: DwarfSections, offset: DebugLineOffset, compDir: string, addressSize?: number, strOffsetsBase?: number): LineHeader {
  const sec = sections.require(SECTION);
  const pre = readPrologue(sec, offset);
  const r = sec.reader(offset, pre.programStart - offset);
  return readHeaderBody(r, pre, sections, compDir, addressSize ?? 8, strOffsetsBase);
}

/**
 * The file names a unit's header lists, as recorded (no directory joined): all the file
 * index needs, at a fraction of a full header's cost on a distribution vmlinux.
 */
export function lineFileNames(sections: DwarfSections, offset: DebugLineOffset): { names: string[]; unitEnd: number } {
  const sec = sections.require(SECTION);
  const pre = readPrologue(sec, offset);
  const r = sec.reader(offset, pre.programStart - offset);
  const h = readHeaderBody(r, pre, sections, undefined, 8, undefined);
  return { names: h.files.map((f) => f.name), unitEnd: pre.unitEnd };
}

/**
 * Header and rows of one unit. `addressSize` is the CU's (v2-4 headers lack it);
 * `strOffsetsBase` is the CU's DW_AT_str_offsets_base, needed only for DW_FORM_strx names.
 */
export function parseLineTable(sections: DwarfSections, offset: DebugLineOffset, compDir: string, addressSize?: number, strOffsetsBase?: number): LineTable {
  const rows: LineRow[] = [];
  const header = runLineProgram(sections, offset, compDir, collectRows(rows), addressSize, strOffsetsBase);
  return { header, rows };
}

/**
 * The line-number registers as a row is emitted. The address is `base + delta` (wrapped to
 * 64 bits), kept in two parts so the per-row arithmetic stays in doubles.
 */
export interface LineRegisters {
  readonly base: bigint;
  /** Changes whenever base is set: comparing it is cheaper than comparing bigints. */
  readonly epoch: number;
  readonly delta: number;
  readonly file: number;
  readonly line: number;
  readonly column: number;
  readonly isStmt: boolean;
  readonly basicBlock: boolean;
  readonly prologueEnd: boolean;
  readonly epilogueBegin: boolean;
  readonly discriminator: number;
  readonly opIndex: number;
}

/** Called for every row the program emits, in program order; end-of-sequence rows included. */
export type RowSink = (regs: LineRegisters, endSequence: boolean) => void;

/**
 * Run one unit's line program, handing each row to `sink` instead of keeping it: for a caller
 * that wants one answer from the table (the row at one address) and no row objects. Returns
 * the header, whose file list includes any DW_LNE_define_file entries the program added.
 */
export function runLineProgram(sections: DwarfSections, offset: DebugLineOffset, compDir: string, sink: RowSink, addressSize?: number, strOffsetsBase?: number): LineHeader {
  const sec = sections.require(SECTION);
  const pre = readPrologue(sec, offset);
  const unit = sec.reader(offset, pre.unitEnd - offset);
  const hr = new ByteReader(unit.buf, SECTION, offset, 0, pre.programStart - offset, sec.file);
  const header = readHeaderBody(hr, pre, sections, compDir, addressSize ?? 8, strOffsetsBase);
  unit.pos = pre.programStart - offset;
  runProgram(unit, header, compDir, sink);
  return header;
}

const U64_MAX = (1n << 64n) - 1n;

function collectRows(rows: LineRow[]): RowSink {
  let lastDelta = -1;
  let lastEpoch = -1;
  let lastAddress = 0n;
  return (m, endSequence) => {
    // Consecutive rows often share an address (location views), so reuse the bigint.
    if (m.delta !== lastDelta || m.epoch !== lastEpoch) {
      let a = m.base + BigInt(m.delta);
      if (a > U64_MAX) a = BigInt.asUintN(64, a);
      lastAddress = a;
      lastDelta = m.delta;
      lastEpoch = m.epoch;
    }
    const { file, line, column, isStmt, basicBlock, prologueEnd, epilogueBegin, discriminator, opIndex } = m;
    rows.push({ address: lastAddress, file, line, column, isStmt, basicBlock, endSequence, prologueEnd, epilogueBegin, discriminator, opIndex });
  };
}

/** The file for a row's file number, handling v5 (0-based, 0 = primary file) vs v2–4 (1-based) numbering. */
export function lineFile(header: LineHeader, index: number): LineFile | undefined {
  const i = header.version >= 5 ? index : index - 1;
  return i >= 0 && i < header.files.length ? header.files[i] : undefined;
}

/** Every unit header in .debug_line in order, hopping by unit_length, without running programs. */
export function* lineHeaders(sections: DwarfSections, compDirFor?: (o: DebugLineOffset) => string): Generator<LineHeader> {
  const sec = sections.get(SECTION);
  if (!sec) return;
  let off = 0;
  while (off < sec.size) {
    const o = off as DebugLineOffset;
    const h = parseLineHeader(sections, o, compDirFor ? compDirFor(o) : '');
    yield h;
    // unitEnd is at least 4 bytes past off (the length field), so the walk always advances.
    off = h.unitEnd;
  }
}

interface Prologue {
  offset: DebugLineOffset;
  unitEnd: number;
  offsetSize: 4 | 8;
  version: number;
  /** v5 only; 0 when the header does not say. */
  addressSize: number;
  programStart: number;
  /** Section offset of minimum_instruction_length, where the rest of the header starts. */
  bodyStart: number;
}

/** The fixed fields that say how big the unit and its header are, from a small read. */
function readPrologue(sec: PagedSection, offset: DebugLineOffset): Prologue {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= sec.size) {
    throw new DwarfError(SECTION, reportAt(offset), `unit offset 0x${offset.toString(16)} is outside the section (size 0x${sec.size.toString(16)})`, sec.file);
  }
  const r = sec.readerFrom(offset, 24);
  const { length, offsetSize } = r.initialLength();
  const unitEnd = r.offset + length;
  if (unitEnd > sec.size) r.fail(`unit length 0x${length.toString(16)} runs past the section's end (size 0x${sec.size.toString(16)})`, 0);
  const bounded = new ByteReader(r.buf, SECTION, offset, r.pos, Math.min(r.end, unitEnd - offset), sec.file);
  const version = bounded.u16();
  if (version < 2 || version > 5) bounded.fail(`unsupported line table version ${version}`, bounded.pos - 2);
  let addressSize = 0;
  if (version >= 5) {
    addressSize = bounded.u8();
    if (addressSize !== 1 && addressSize !== 2 && addressSize !== 4 && addressSize !== 8) bounded.fail(`unsupported address size ${addressSize}`, bounded.pos - 1);
    // segment_selector_size: only meaningful for segmented targets, which no kernel uses.
    bounded.u8();
  }
  const headerLength = bounded.offsetOf(offsetSize);
  const programStart = bounded.offset + headerLength;
  if (programStart > unitEnd) bounded.fail(`header_length 0x${headerLength.toString(16)} runs past the unit's end`, bounded.pos - offsetSize);
  return { offset, unitEnd, offsetSize, version, addressSize, programStart, bodyStart: bounded.offset };
}

/**
 * Parses from pre.bodyStart; `r` must cover the unit's first bytes up to programStart.
 * With compDir undefined, only names are wanted: paths are left unjoined.
 */
function readHeaderBody(r: ByteReader, pre: Prologue, sections: DwarfSections, compDir: string | undefined, cuAddressSize: number, strOffsetsBase: number | undefined): LineHeader {
  r.pos = pre.bodyStart - r.base;
  const v = pre.version;
  const minInstLength = r.u8();
  const maxOpsPerInst = v >= 4 ? r.u8() : 1;
  if (maxOpsPerInst === 0) r.fail('maximum_operations_per_instruction is 0', r.pos - 1);
  const defaultIsStmt = r.u8() !== 0;
  const lineBase = r.i8();
  const lineRange = r.u8();
  if (lineRange === 0) r.fail('line_range is 0', r.pos - 1);
  const opcodeBase = r.u8();
  if (opcodeBase === 0) r.fail('opcode_base is 0', r.pos - 1);
  const standardOpcodeLengths: number[] = [];
  for (let i = 1; i < opcodeBase; i++) standardOpcodeLengths.push(r.u8());

  let includeDirs: string[];
  let files: LineFile[];
  if (v >= 5) {
    const strings = new StringResolver(sections, pre.offsetSize, strOffsetsBase);
    const dirEntries = readEntryTable(r, 'directory', pre.offsetSize, strings);
    includeDirs = dirEntries.map((e) => e.path);
    // Relative directories are relative to the compilation directory; v5 records it as entry 0.
    const base = compDir || includeDirs[0] || '';
    const dirBase = new Map<string, string>();
    const entries = readEntryTable(r, 'file', pre.offsetSize, strings);
    files = compDir === undefined ? entries.map((e) => ({ name: e.path, dirIndex: e.dirIndex, dir: '', path: e.path })) : entries.map((e) => makeFile(e.path, e.dirIndex, includeDirs[e.dirIndex] ?? '', base, e.md5, dirBase));
  } else {
    // Both tables end with an empty string.
    includeDirs = [];
    for (let d = r.cstr(); d !== ''; d = r.cstr()) includeDirs.push(d);
    files = [];
    const dirBase = new Map<string, string>();
    for (let name = r.cstr(); name !== ''; name = r.cstr()) files.push(readV4FileRest(r, name, includeDirs, compDir ?? '', dirBase));
  }
  // Bytes left before programStart are padding or vendor data; overrunning it is corruption,
  // which the reader (bounded at programStart) has already reported.
  const { offset, offsetSize, programStart, unitEnd } = pre;
  const addressSize = v >= 5 ? pre.addressSize : cuAddressSize;
  return { offset, version: v, offsetSize, addressSize, minInstLength, maxOpsPerInst, defaultIsStmt, lineBase, lineRange, opcodeBase, standardOpcodeLengths, includeDirs, files, programStart, unitEnd };
}

/** Directory index, modification time and length after a v2-4 file name (header or DW_LNE_define_file). */
function readV4FileRest(r: ByteReader, name: string, includeDirs: string[], compDir: string, dirBase?: Map<string, string>): LineFile {
  const dirIndex = r.uleb();
  r.uleb(); // modification time
  r.uleb(); // file length
  const dir = dirIndex === 0 ? compDir : includeDirs[dirIndex - 1] ?? '';
  return makeFile(name, dirIndex, dir, compDir, undefined, dirBase);
}

function makeFile(name: string, dirIndex: number, dir: string, compDir: string, md5: string | undefined, dirBase?: Map<string, string>): LineFile {
  const f: LineFile = { name, dirIndex, dir, path: joinPath(compDir, dir, name, dirBase) };
  if (md5 !== undefined) f.md5 = md5;
  return f;
}

/**
 * posix.join(compDir, dir, name), skipping compDir when dir or name is absolute. Kernel units
 * list hundreds of files in a few directories, so the resolved directory is cached per table
 * and a plain file name is appended without normalizing the whole path again.
 */
function joinPath(compDir: string, dir: string, name: string, dirBase?: Map<string, string>): string {
  if (posix.isAbsolute(name)) return posix.normalize(name);
  let base = dirBase?.get(dir);
  if (base === undefined) {
    base = posix.isAbsolute(dir) || !compDir ? (dir ? posix.normalize(dir) : '') : posix.join(compDir, dir);
    dirBase?.set(dir, base);
  }
  if (base === '' || base === '.') return posix.normalize(name);
  if (name !== '' && name !== '.' && name !== '..' && !name.includes('/')) return base.endsWith('/') ? base + name : `${base}/${name}`;
  return posix.join(base, name);
}


const FOLD_LIMIT = 2 ** 48;

/**
 * The line-number state machine. The address is kept as a bigint base plus a number delta so
 * the per-opcode arithmetic stays in doubles: kernel addresses need 64 bits, but the advances
 * within a sequence are small.
 */
class Machine implements LineRegisters {
  // Registers, all set by reset().
  base!: bigint;
  epoch = 0;
  delta!: number;
  opIndex!: number;
  file!: number;
  line!: number;
  column!: number;
  isStmt!: boolean;
  basicBlock!: boolean;
  prologueEnd!: boolean;
  epilogueBegin!: boolean;
  discriminator!: number;
  /** A row was emitted since the last end_sequence. */
  open!: boolean;

  constructor(
    private readonly h: LineHeader,
    private readonly sink: RowSink,
  ) {
    this.reset();
  }

  reset(): void {
    this.base = 0n;
    this.epoch++;
    this.delta = 0;
    this.opIndex = 0;
    this.file = 1;
    this.line = 1;
    this.column = 0;
    this.isStmt = this.h.defaultIsStmt;
    this.basicBlock = this.prologueEnd = this.epilogueBegin = this.open = false;
    this.discriminator = 0;
  }

  setAddress(a: bigint): void {
    this.base = a;
    this.epoch++;
    this.delta = 0;
    this.opIndex = 0;
  }

  /** Applies an operation advance (special opcode, advance_pc, const_add_pc). */
  advance(opAdvance: number): void {
    const h = this.h;
    if (opAdvance > 0xffffffff) return this.advanceBig(opAdvance);
    let units = opAdvance;
    if (h.maxOpsPerInst !== 1) {
      const total = this.opIndex + opAdvance;
      units = Math.floor(total / h.maxOpsPerInst);
      this.opIndex = total % h.maxOpsPerInst;
    }
    // At most 255 * 2^32, so the product is exact in a double.
    this.addBytes(h.minInstLength * units);
  }

  /** Only corrupt or unusual programs advance this far; do the arithmetic exactly. */
  private advanceBig(opAdvance: number): void {
    const h = this.h;
    const total = BigInt(this.opIndex) + BigInt(opAdvance);
    const maxOps = BigInt(h.maxOpsPerInst);
    this.opIndex = Number(total % maxOps);
    this.fold();
    this.base = BigInt.asUintN(64, this.base + (total / maxOps) * BigInt(h.minInstLength));
    this.epoch++;
  }

  addBytes(n: number): void {
    this.delta += n;
    if (this.delta > FOLD_LIMIT) this.fold();
  }

  fold(): void {
    this.base = BigInt.asUintN(64, this.base + BigInt(this.delta));
    this.epoch++;
    this.delta = 0;
  }

  emit(endSequence: boolean): void {
    this.sink(this, endSequence);
    this.basicBlock = this.prologueEnd = this.epilogueBegin = false;
    this.discriminator = 0;
    this.open = !endSequence;
  }
}

/** SLEB128 as a number without bigint for the common short encodings (advance_line is hot). */
function sleb(r: ByteReader): number {
  const buf = r.buf;
  const end = r.end;
  let pos = r.pos;
  let result = 0;
  let mul = 1;
  for (;;) {
    if (pos >= end) r.fail('truncated LEB128', r.pos);
    const b = buf[pos++];
    result += (b & 0x7f) * mul;
    mul *= 128;
    if ((b & 0x80) === 0) {
      if (b & 0x40) result -= mul;
      r.pos = pos;
      return result;
    }
    // Eight or more bytes no longer fit a double exactly; the reader's bigint path range-checks.
    if (mul >= 2 ** 49) return r.sleb();
  }
}

function readAddress(r: ByteReader, size: number, at: number): bigint {
  if (size === 8) return r.u64();
  if (size === 7) return BigInt(fixed(r, 4)) | (BigInt(fixed(r, 3)) << 32n);
  if (size < 1 || size > 8) r.fail(`DW_LNE_set_address with a ${size}-byte operand`, at);
  return BigInt(fixed(r, size));
}

function runProgram(r: ByteReader, h: LineHeader, compDir: string, sink: RowSink): void {
  const m = new Machine(h, sink);
  const buf = r.buf;
  const end = r.end;
  const { opcodeBase, lineBase, lineRange } = h;
  const lengths = h.standardOpcodeLengths;
  // Special opcodes are most of a program, and a cold process runs this loop interpreted,
  // where calls cost more than the work they do: each opcode's address and line steps are
  // looked up, and its row is emitted inline, as advance() and emit() would.
  const simple = h.maxOpsPerInst === 1;
  // Int32Array, not Float64Array: its elements load as small integers, where a double would
  // be boxed on the heap at every load while the loop runs interpreted.
  const addrStep = new Int32Array(256);
  const lineStep = new Int32Array(256);
  for (let op = opcodeBase; op < 256; op++) {
    addrStep[op] = h.minInstLength * Math.floor((op - opcodeBase) / lineRange);
    lineStep[op] = lineBase + ((op - opcodeBase) % lineRange);
  }
  while (r.pos < end) {
    const opAt = r.pos;
    const op = buf[r.pos++];
    if (op >= opcodeBase) {
      if (!simple) m.advance(Math.floor((op - opcodeBase) / lineRange));
      else if ((m.delta += addrStep[op]) > FOLD_LIMIT) m.fold();
      m.line += lineStep[op];
      sink(m, false);
      m.basicBlock = m.prologueEnd = m.epilogueBegin = false;
      m.discriminator = 0;
      m.open = true;
      continue;
    }
    switch (op) {
      case 0:
        runExtended(r, h, m, compDir, opAt);
        break;
      case DW_LNS.copy:
        m.emit(false);
        break;
      case DW_LNS.advance_pc:
        m.advance(r.uleb());
        break;
      case DW_LNS.advance_line:
        m.line += sleb(r);
        break;
      case DW_LNS.set_file:
        m.file = r.uleb();
        break;
      case DW_LNS.set_column:
        m.column = r.uleb();
        break;
      case DW_LNS.negate_stmt:
        m.isStmt = !m.isStmt;
        break;
      case DW_LNS.set_basic_block:
        m.basicBlock = true;
        break;
      case DW_LNS.const_add_pc:
        m.advance(Math.floor((255 - opcodeBase) / lineRange));
        break;
      case DW_LNS.fixed_advance_pc:
        m.addBytes(r.u16());
        m.opIndex = 0;
        break;
      case DW_LNS.set_prologue_end:
        m.prologueEnd = true;
        break;
      case DW_LNS.set_epilogue_begin:
        m.epilogueBegin = true;
        break;
      case DW_LNS.set_isa:
        r.uleb();
        break;
      default:
        // An opcode this reader doesn't know, but the header says how many operands it takes.
        for (let n = lengths[op - 1]; n > 0; n--) r.uleb();
        break;
    }
  }
  if (m.open) r.fail('line program ends inside a sequence (no DW_LNE_end_sequence after the last row)', end);
}

function runExtended(r: ByteReader, h: LineHeader, m: Machine, compDir: string, opAt: number): void {
  const len = r.uleb();
  if (len === 0) r.fail('extended opcode with length 0', opAt);
  if (len > r.remaining) r.fail(`extended opcode length ${len} runs past the unit's end`, opAt);
  const opEnd = r.pos + len;
  const sub = r.u8();
  switch (sub) {
    case DW_LNE.end_sequence:
      m.emit(true);
      m.reset();
      break;
    case DW_LNE.set_address:
      m.setAddress(readAddress(r, len - 1, opAt));
      break;
    case DW_LNE.define_file:
      // DWARF 5 retired define_file; there opcode 3 is just an unknown extended opcode.
      if (h.version <= 4) h.files.push(readV4FileRest(r, r.cstr(), h.includeDirs, compDir));
      break;
    case DW_LNE.set_discriminator:
      m.discriminator = r.uleb();
      break;
  }
  if (r.pos > opEnd) r.fail(`extended opcode ${sub} operands overrun its length ${len}`, opAt);
  // Trust the declared length for the next opcode, as readelf and LLVM do (vendor opcodes).
  r.pos = opEnd;
}
