/**
 * Call frame information (DWARF 5 section 6.4) from .debug_frame, or .eh_frame when that is
 * all a file has. The unwinder asks "what are the CFA and register rules at this pc", so the
 * work splits in two: one pass over the section builds a compact, address-sorted FDE index
 * (parallel typed arrays; Fde objects are made only when asked for), and an FDE's instructions
 * are run only when a pc in it is asked about. Every length and pointer is checked, so corrupt CFI fails with a DwarfError
 * naming the section and offset instead of unwinding through garbage.
 */
import { frameOffset, type DebugFrameOffset } from './offsets';
import { ByteReader, DwarfError } from './reader';

export type CfaRule = { kind: 'regOffset'; reg: number; offset: number } | { kind: 'expression'; expr: Buffer };

export type RegRule =
  | { kind: 'undefined' }
  | { kind: 'sameValue' }
  /** Saved at CFA+offset. */
  | { kind: 'offset'; offset: number }
  /** The value itself is CFA+offset. */
  | { kind: 'valOffset'; offset: number }
  | { kind: 'register'; reg: number }
  | { kind: 'expression'; expr: Buffer }
  | { kind: 'valExpression'; expr: Buffer };

export interface Cie {
  offset: DebugFrameOffset;
  version: number;
  augmentation: string;
  addressSize: number;
  segmentSize: number;
  codeAlign: number;
  dataAlign: number;
  returnAddressRegister: number;
  initialInstructions: Buffer;
  /** Section offset of initialInstructions[0], so errors in them point at the right byte. */
  instructionsOffset: number;
  offsetSize: 4 | 8;
  /** DW_EH_PE_* encoding of FDE addresses ('R' augmentation); absptr in .debug_frame. */
  fdeEncoding: number;
  /** 'S' augmentation: the frame is a signal trampoline, so its pc is not a call's return address. */
  signalFrame: boolean;
}

export interface Fde {
  offset: DebugFrameOffset;
  cie: Cie;
  start: bigint;
  end: bigint;
  instructions: Buffer;
  /** Section offset of instructions[0]. */
  instructionsOffset: number;
}

export interface UnwindRow {
  start: bigint;
  end: bigint;
  cfa: CfaRule;
  regs: ReadonlyMap<number, RegRule>;
  /**
   * Set when DW_CFA_GNU_window_save has toggled an odd number of times. On AArch64 that op is
   * DW_CFA_AARCH64_negate_ra_state: the return address carries a pointer-authentication code
   * the unwinder must strip. (Its SPARC register-window meaning is for a target we don't debug.)
   */
  raSigned?: boolean;
}

/** What CallFrameInfo needs of a section; DwarfSections' PagedSection provides it. */
export interface FrameSectionData {
  readonly name: string;
  readonly size: number;
  /** The section's load address, which pc-relative .eh_frame pointers are relative to. */
  readonly info: { readonly addr: bigint };
  /** The ELF file's path, named in errors when known. */
  readonly file?: string;
  all(): Buffer;
}

/** What CallFrameInfo needs of DwarfSections; narrow so tests can hand it synthetic bytes. */
export interface FrameSectionSource {
  get(name: string): FrameSectionData | undefined;
}

export type FrameSectionName = '.debug_frame' | '.eh_frame';

const DW_EH_PE_omit = 0xff;
const DW_EH_PE_pcrel = 0x10;
/** An adversarial FDE of nothing but remember_state would otherwise copy the state once per byte. */
const MAX_STATE_DEPTH = 1024;
const TABLE_CACHE = 64;

interface State {
  cfa: CfaRule | undefined;
  regs: Map<number, RegRule>;
  raSigned: boolean;
}

interface EntryHeader {
  /** Section offset of the entry's length field. */
  offset: number;
  /** Section offset just past the entry. */
  next: number;
  offsetSize: 4 | 8;
  /** Reader over the entry's body after the CIE id / CIE pointer; undefined for a zero terminator. */
  body: ByteReader | undefined;
  isCie: boolean;
  /** For an FDE: section offset of the CIE it points to (unchecked), and where that pointer is. */
  ciePointer: bigint;
  ciePointerAt: number;
}

/** Sorted FDE index in parallel arrays: ~32 bytes per FDE, whatever the section's size. */
interface FdeIndex {
  starts: BigUint64Array;
  ends: BigUint64Array;
  /** Running maximum of ends, so a lookup can tell when no earlier FDE can still cover pc. */
  maxEnds: BigUint64Array;
  offsets: Float64Array;
}

export class CallFrameInfo {
  /** Which section the rules come from; undefined when the file has neither. */
  readonly sectionName: FrameSectionName | undefined;
  private readonly section: FrameSectionData | undefined;
  private readonly isEh: boolean;
  private data: Buffer | undefined;
  private readonly cies = new Map<number, Cie>();
  private index: FdeIndex | undefined;
  private indexError: unknown;
  private fdeList: Fde[] | undefined;
  private readonly tables = new Map<number, UnwindRow[]>();

  constructor(
    sections: FrameSectionSource,
    /** Address size for CIEs older than version 4, which don't record it. */
    private readonly defaultAddressSize = 8,
    which?: FrameSectionName,
  ) {
    const pick = which ?? (sections.get('.debug_frame') ? '.debug_frame' : sections.get('.eh_frame') ? '.eh_frame' : undefined);
    this.section = pick ? sections.get(pick) : undefined;
    this.sectionName = this.section ? pick : undefined;
    this.isEh = this.sectionName === '.eh_frame';
  }

  /** Sorted FDE index, built on first use (one pass over the section), cached. */
  fdes(): readonly Fde[] {
    if (!this.fdeList) {
      const idx = this.ensureIndex();
      const list: Fde[] = [];
      for (let i = 0; i < idx.offsets.length; i++) list.push(this.fdeAt(idx.offsets[i]));
      this.fdeList = list;
    }
    return this.fdeList;
  }

  /** Number of FDEs, without materialising them. */
  get fdeCount(): number {
    return this.ensureIndex().offsets.length;
  }

  fdeFor(pc: bigint): Fde | undefined {
    const idx = this.ensureIndex();
    const { starts, ends, maxEnds, offsets } = idx;
    // Last FDE starting at or before pc.
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid] <= pc) lo = mid + 1;
      else hi = mid;
    }
    // FDEs don't normally overlap, so this looks at one entry; zero-length or overlapping ones
    // (discarded sections linked at 0) make it walk back only while something could still cover pc.
    for (let i = lo - 1; i >= 0 && maxEnds[i] > pc; i--) {
      if (ends[i] > pc) return this.fdeList ? this.fdeList[i] : this.fdeAt(offsets[i]);
    }
    return undefined;
  }

  /** The full table of an FDE, as readelf --debug-dump=frames-interp shows it (empty rows dropped). */
  table(fde: Fde): UnwindRow[] {
    const cie = fde.cie;
    const init: State = { cfa: undefined, regs: new Map(), raSigned: false };
    this.execute(cie.initialInstructions, cie.instructionsOffset, cie, undefined, init, undefined);
    const state: State = { cfa: init.cfa, regs: new Map(init.regs), raSigned: init.raSigned };
    const rows: UnwindRow[] = [];
    this.execute(fde.instructions, fde.instructionsOffset, cie, fde, state, { initial: init.regs, rows });
    return rows;
  }

  /** The row in effect at pc, or undefined when no FDE covers pc. Rows are cached and shared: don't mutate them. */
  rowAt(pc: bigint): UnwindRow | undefined {
    const fde = this.fdeFor(pc);
    if (!fde) return undefined;
    let rows = this.tables.get(fde.offset);
    if (rows) {
      this.tables.delete(fde.offset);
    } else {
      rows = this.table(fde);
      if (this.tables.size >= TABLE_CACHE) {
        const oldest = this.tables.keys().next().value;
        if (oldest !== undefined) this.tables.delete(oldest);
      }
    }
    this.tables.set(fde.offset, rows);
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (rows[mid].start <= pc) lo = mid + 1;
      else hi = mid;
    }
    const row = rows[lo - 1];
    return row && pc < row.end ? row : undefined;
  }

  /** The CIE at a section offset. */
  cieAt(offset: number): Cie {
    return this.cieFrom(offset, offset);
  }

  /** The FDE whose entry starts at a section offset. */
  fdeAt(offset: number): Fde {
    const h = this.header(offset);
    if (!h.body || h.isCie) throw this.error(offset, 'not an FDE');
    const r = h.body;
    const cie = this.cieFrom(h.ciePointer, h.ciePointerAt);
    const { start, end } = this.fdeRange(r, cie);
    if (cie.augmentation.startsWith('z')) r.skip(r.uleb());
    const instructionsOffset = r.offset;
    return { offset: frameOffset(offset), cie, start, end, instructions: r.bytes(r.remaining), instructionsOffset };
  }

  private name(): string {
    return this.sectionName ?? '.debug_frame';
  }

  private error(offset: number, detail: string): DwarfError {
    return new DwarfError(this.name(), offset, detail, this.section?.file);
  }

  private bytes(): Buffer {
    if (!this.data) this.data = this.section ? this.section.all() : Buffer.alloc(0);
    return this.data;
  }

  private ensureIndex(): FdeIndex {
    if (this.index) return this.index;
    // A corrupt section fails the same way on every call instead of being rescanned each time.
    if (this.indexError !== undefined) throw this.indexError;
    try {
      this.index = this.buildIndex();
      return this.index;
    } catch (e) {
      this.indexError = e;
      throw e;
    }
  }

  private buildIndex(): FdeIndex {
    const size = this.bytes().length;
    const starts: bigint[] = [];
    const ends: bigint[] = [];
    const offsets: number[] = [];
    let off = 0;
    while (off < size) {
      const h = this.header(off);
      // header() guarantees next > off, so this loop always advances.
      off = h.next;
      if (!h.body) {
        if (this.isEh) break; // .eh_frame ends at a zero terminator; .debug_frame may pad with them
        continue;
      }
      if (h.isCie) {
        this.cieFrom(h.offset, h.offset);
        continue;
      }
      const cie = this.cieFrom(h.ciePointer, h.ciePointerAt);
      const { start, end } = this.fdeRange(h.body, cie);
      starts.push(start);
      ends.push(end);
      offsets.push(h.offset);
    }
    const order = Array.from(offsets.keys()).sort((a, b) => (starts[a] < starts[b] ? -1 : starts[a] > starts[b] ? 1 : offsets[a] - offsets[b]));
    const n = order.length;
    const idx: FdeIndex = { starts: new BigUint64Array(n), ends: new BigUint64Array(n), maxEnds: new BigUint64Array(n), offsets: new Float64Array(n) };
    let maxEnd = 0n;
    for (let i = 0; i < n; i++) {
      const j = order[i];
      idx.starts[i] = starts[j];
      idx.ends[i] = ends[j];
      idx.offsets[i] = offsets[j];
      if (ends[j] > maxEnd) maxEnd = ends[j];
      idx.maxEnds[i] = maxEnd;
    }
    return idx;
  }

  /** Length, CIE id / pointer; the body reader is bounded by the entry's length. */
  private header(offset: number): EntryHeader {
    const buf = this.bytes();
    if (offset < 0 || offset >= buf.length) throw this.error(offset, `entry offset is outside the section (size 0x${buf.length.toString(16)})`);
    const r = new ByteReader(buf, this.name(), 0, offset, buf.length, this.section?.file);
    const { length, offsetSize } = r.initialLength();
    const bodyStart = r.pos;
    if (length === 0) return { offset, next: bodyStart, offsetSize, body: undefined, isCie: false, ciePointer: 0n, ciePointerAt: 0 };
    if (length > buf.length - bodyStart) throw this.error(offset, `entry length 0x${length.toString(16)} runs past the end of the section`);
    const body = new ByteReader(buf, this.name(), 0, bodyStart, bodyStart + length, this.section?.file);
    const idAt = body.pos;
    const id = offsetSize === 4 ? BigInt(body.u32()) : body.u64();
    const cieId = this.isEh ? 0n : offsetSize === 4 ? 0xffffffffn : 0xffffffffffffffffn;
    const isCie = id === cieId;
    // .debug_frame points at the CIE by section offset; .eh_frame by distance back from the pointer.
    const ciePointer = this.isEh ? BigInt(idAt) - id : id;
    return { offset, next: bodyStart + length, offsetSize, body, isCie, ciePointer, ciePointerAt: idAt };
  }

  private cieFrom(pointer: bigint | number, pointerAt: number): Cie {
    const cached = this.cies.get(Number(pointer));
    if (cached) return cached;
    const bad = (): DwarfError => this.error(pointerAt, `CIE pointer ${pointer < 0 ? '-' : ''}0x${(pointer < 0 ? -BigInt(pointer) : BigInt(pointer)).toString(16)} does not point to a CIE`);
    if (pointer < 0 || pointer >= this.bytes().length) throw bad();
    const offset = Number(pointer);
    let h: EntryHeader;
    try {
      h = this.header(offset);
    } catch (e) {
      if (offset === pointerAt || !(e instanceof DwarfError)) throw e;
      throw bad();
    }
    if (!h.body || !h.isCie) throw bad();
    const cie = this.parseCie(h.body, offset, h.offsetSize);
    this.cies.set(offset, cie);
    return cie;
  }

  private parseCie(r: ByteReader, offset: number, offsetSize: 4 | 8): Cie {
    const version = r.u8();
    if (version !== 1 && version !== 3 && version !== 4) r.fail(`unsupported CIE version ${version}`, r.pos - 1);
    const augmentation = r.cstr();
    let addressSize = this.defaultAddressSize;
    let segmentSize = 0;
    if (version >= 4) {
      addressSize = r.u8();
      segmentSize = r.u8();
      if (![1, 2, 4, 8].includes(addressSize)) r.fail(`unsupported address size ${addressSize}`, r.pos - 2);
      if (![0, 1, 2, 4, 8].includes(segmentSize)) r.fail(`unsupported segment selector size ${segmentSize}`, r.pos - 1);
    }
    // GCC 2.x's "eh" augmentation put an exception-table pointer here.
    if (augmentation === 'eh') r.skip(addressSize);
    const codeAlign = r.uleb();
    const dataAlign = r.sleb();
    const returnAddressRegister = version === 1 ? r.u8() : r.uleb();
    let fdeEncoding = 0;
    let signalFrame = false;
    if (augmentation.startsWith('z')) {
      const aug = r.sub(r.uleb());
      for (const c of augmentation.slice(1)) {
        if (c === 'R') fdeEncoding = aug.u8();
        else if (c === 'L') aug.u8();
        else if (c === 'P') this.readEncoded(aug, aug.u8(), addressSize, true);
        else if (c === 'S') signalFrame = true;
        // 'B' (AArch64 BTI), 'G' (MTE) carry no data; past an unknown letter the 'z' length still
        // tells where the instructions start, so stop decoding rather than fail.
        else if (c !== 'B' && c !== 'G') break;
      }
    } else if (augmentation !== '' && augmentation !== 'eh') {
      r.fail(`unsupported CIE augmentation "${augmentation}": cannot tell where its instructions start`);
    }
    const instructionsOffset = r.offset;
    const initialInstructions = r.bytes(r.remaining);
    return { offset: frameOffset(offset), version, augmentation, addressSize, segmentSize, codeAlign, dataAlign, returnAddressRegister, initialInstructions, instructionsOffset, offsetSize, fdeEncoding, signalFrame };
  }

  private fdeRange(r: ByteReader, cie: Cie): { start: bigint; end: bigint } {
    if (cie.segmentSize > 0) r.skip(cie.segmentSize);
    const start = this.readEncoded(r, cie.fdeEncoding, cie.addressSize, false);
    // The range is a plain length: same size as the address, never pc-relative.
    const range = this.readEncoded(r, cie.fdeEncoding & 0x0f, cie.addressSize, false);
    const end = start + range;
    if (end >> BigInt(cie.addressSize * 8) !== 0n) r.fail(`FDE range 0x${start.toString(16)}+0x${range.toString(16)} wraps past the end of the address space`);
    return { start, end };
  }

  /**
   * A DW_EH_PE_*-encoded pointer. Only absolute and pc-relative values can be resolved from the
   * section alone; text-, data- and function-relative or indirect ones need a loaded image, so
   * they are refused unless the value is skipped (`skipOnly`, for the personality routine).
   */
  private readEncoded(r: ByteReader, enc: number, addressSize: number, skipOnly: boolean): bigint {
    const at = r.pos;
    if (enc === DW_EH_PE_omit) r.fail('pointer encoding is DW_EH_PE_omit where a value is required', at);
    const fmt = enc & 0x0f;
    let v: bigint;
    if (fmt === 0x00) v = r.address(addressSize);
    else if (fmt === 0x01) v = r.ulebBig();
    else if (fmt === 0x09) v = r.slebBig();
    else {
      // udata2/4/8 are 0x02..0x04; sdata2/4/8 the same sizes with bit 3 set.
      const size = [2, 4, 8][(fmt & 0x07) - 2];
      if (size === undefined) return r.fail(`unsupported pointer encoding 0x${enc.toString(16)}`, at);
      v = r.uN(size);
      if (fmt & 0x08) v = BigInt.asIntN(size * 8, v);
    }
    if (skipOnly) return v;
    const app = enc & 0x70;
    if (app === DW_EH_PE_pcrel) v += (this.section?.info.addr ?? 0n) + BigInt(r.base + at);
    else if (app !== 0 || (enc & 0x80) !== 0) r.fail(`unsupported pointer encoding 0x${enc.toString(16)} (needs a loaded image)`, at);
    return BigInt.asUintN(addressSize * 8, v);
  }

  /**
   * Run CFA instructions. Without `fde` these are a CIE's initial instructions, where location
   * ops make no sense; with it, a row is emitted each time the location advances.
   */
  private execute(instructions: Buffer, base: number, cie: Cie, fde: Fde | undefined, s: State, out: { initial: ReadonlyMap<number, RegRule>; rows: UnwindRow[] } | undefined): void {
    const r = new ByteReader(instructions, this.name(), base, 0, instructions.length, this.section?.file);
    const stack: State[] = [];
    let loc = fde?.start ?? 0n;
    let opAt = 0;
    const factored = (n: number): number => {
      const v = n * cie.dataAlign;
      if (!Number.isSafeInteger(v)) r.fail(`factored offset ${n} * ${cie.dataAlign} is out of range`, opAt);
      return v === 0 ? 0 : v; // no -0 from a negative data alignment
    };
    const emit = (until: bigint): void => {
      if (!fde || !out) return r.fail('location op in a CIE\'s initial instructions', opAt);
      const end = until < fde.end ? until : fde.end;
      if (loc >= end) return;
      if (!s.cfa) return r.fail('no CFA rule is in effect for this row', opAt);
      const row: UnwindRow = { start: loc, end, cfa: s.cfa, regs: new Map(s.regs) };
      if (s.raSigned) row.raSigned = true;
      out.rows.push(row);
    };
    const advance = (delta: bigint): void => {
      const next = loc + delta * BigInt(cie.codeAlign);
      emit(next);
      loc = next;
    };
    const restore = (reg: number): void => {
      const rule = out?.initial.get(reg);
      if (rule) s.regs.set(reg, rule);
      else s.regs.delete(reg);
    };
    const cfaReg = (): { reg: number; offset: number } => {
      if (s.cfa?.kind !== 'regOffset') return r.fail('CFA register/offset change while the CFA is not register+offset', opAt);
      return s.cfa;
    };
    const block = (): Buffer => r.bytes(r.uleb());

    // Every iteration consumes at least the opcode byte, so this ends at the end of the bytes.
    while (!r.atEnd()) {
      opAt = r.pos;
      const op = r.u8();
      const low = op & 0x3f;
      switch (op & 0xc0) {
        case 0x40: // DW_CFA_advance_loc
          advance(BigInt(low));
          continue;
        case 0x80: // DW_CFA_offset
          s.regs.set(low, { kind: 'offset', offset: factored(r.uleb()) });
          continue;
        case 0xc0: // DW_CFA_restore
          restore(low);
          continue;
      }
      switch (op) {
        case 0x00: // nop
          break;
        case 0x01: {
          // set_loc
          const to = this.readEncoded(r, cie.fdeEncoding, cie.addressSize, false);
          if (to < loc) r.fail(`DW_CFA_set_loc moves backwards to 0x${to.toString(16)}`, opAt);
          emit(to);
          loc = to;
          break;
        }
        case 0x02:
          advance(BigInt(r.u8()));
          break;
        case 0x03:
          advance(BigInt(r.u16()));
          break;
        case 0x04:
          advance(BigInt(r.u32()));
          break;
        case 0x05: // offset_extended
          s.regs.set(r.uleb(), { kind: 'offset', offset: factored(r.uleb()) });
          break;
        case 0x06: // restore_extended
          restore(r.uleb());
          break;
        case 0x07:
          s.regs.set(r.uleb(), { kind: 'undefined' });
          break;
        case 0x08:
          s.regs.set(r.uleb(), { kind: 'sameValue' });
          break;
        case 0x09:
          s.regs.set(r.uleb(), { kind: 'register', reg: r.uleb() });
          break;
        case 0x0a: // remember_state: the CFA is saved too, as GCC, libgcc, GDB and readelf all expect
          if (stack.length >= MAX_STATE_DEPTH) r.fail(`DW_CFA_remember_state nested deeper than ${MAX_STATE_DEPTH}`, opAt);
          stack.push({ cfa: s.cfa, regs: new Map(s.regs), raSigned: s.raSigned });
          break;
        case 0x0b: {
          const prev = stack.pop();
          if (!prev) return r.fail('DW_CFA_restore_state with no remembered state', opAt);
          s.cfa = prev.cfa;
          s.regs = prev.regs;
          s.raSigned = prev.raSigned;
          break;
        }
        case 0x0c:
          s.cfa = { kind: 'regOffset', reg: r.uleb(), offset: r.uleb() };
          break;
        case 0x0d:
          // GCC's riscv CIE opens with def_cfa_register(sp) and no CFA yet: like libgcc and
          // gdb, the offset it keeps is then 0. (An expression CFA still has none to keep.)
          s.cfa = { kind: 'regOffset', reg: r.uleb(), offset: s.cfa === undefined ? 0 : cfaReg().offset };
          break;
        case 0x0e: {
          const offset = r.uleb();
          s.cfa = { kind: 'regOffset', reg: cfaReg().reg, offset };
          break;
        }
        case 0x0f:
          s.cfa = { kind: 'expression', expr: block() };
          break;
        case 0x10:
          s.regs.set(r.uleb(), { kind: 'expression', expr: block() });
          break;
        case 0x11:
          s.regs.set(r.uleb(), { kind: 'offset', offset: factored(r.sleb()) });
          break;
        case 0x12:
          s.cfa = { kind: 'regOffset', reg: r.uleb(), offset: factored(r.sleb()) };
          break;
        case 0x13: {
          const offset = factored(r.sleb());
          s.cfa = { kind: 'regOffset', reg: cfaReg().reg, offset };
          break;
        }
        case 0x14:
          s.regs.set(r.uleb(), { kind: 'valOffset', offset: factored(r.uleb()) });
          break;
        case 0x15:
          s.regs.set(r.uleb(), { kind: 'valOffset', offset: factored(r.sleb()) });
          break;
        case 0x16:
          s.regs.set(r.uleb(), { kind: 'valExpression', expr: block() });
          break;
        case 0x1d: // DW_CFA_MIPS_advance_loc8
          advance(r.u64());
          break;
        case 0x2d: // DW_CFA_GNU_window_save / DW_CFA_AARCH64_negate_ra_state
          s.raSigned = !s.raSigned;
          break;
        case 0x2e: // DW_CFA_GNU_args_size: bytes of outgoing arguments, irrelevant to unwinding
          r.uleb();
          break;
        case 0x2f: // DW_CFA_GNU_negative_offset_extended
          s.regs.set(r.uleb(), { kind: 'offset', offset: -factored(r.uleb()) || 0 });
          break;
        default:
          r.fail(`unknown call frame instruction 0x${op.toString(16)}`, opAt);
      }
    }
    if (fde) emit(fde.end);
  }
}
