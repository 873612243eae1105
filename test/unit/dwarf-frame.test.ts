/**
 * Call frame information, with binutils as the oracle: readelf --debug-dump=frames-interp on
 * the real sample vmlinux (every FDE, every row), on small programs assembled with gas to reach
 * the ops GCC never emits for the kernel, and corrupt copies of real CIE/FDE bytes.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ElfFile } from '../../src/symbols/elf';
import { CallFrameInfo, type CfaRule, type Fde, type FrameSectionData, type FrameSectionName, type FrameSectionSource, type RegRule, type UnwindRow } from '../../src/symbols/dwarf/frame';
import { DwarfError } from '../../src/symbols/dwarf/reader';
import { DwarfSections } from '../../src/symbols/dwarf/sections';
import { requireOrSkip, sampleGuest } from '../support/env';

// ---- readelf output, parsed

type ReadelfRow = { loc: bigint; cfa: string; cells: string[] };

interface ReadelfEntry {
  offset: number;
  kind: 'CIE' | 'FDE';
  /** For a CIE its own offset. */
  cie: number;
  start: bigint;
  end: bigint;
  cieFields: { augmentation: string; codeAlign: number; dataAlign: number; returnAddressRegister: number };
  /** DWARF register numbers of the table's columns ('ra' resolved through the CIE). */
  columns: number[];
  rows: ReadelfRow[];
}

const X86_64_REGS = ['rax', 'rdx', 'rcx', 'rbx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'];

/** readelf's x86_64 register name to its DWARF number. */
function regNumber(name: string): number {
  const i = X86_64_REGS.indexOf(name);
  if (i >= 0) return i;
  const xmm = /^xmm(\d+)$/.exec(name);
  if (xmm) return Number(xmm[1]) < 16 ? 17 + Number(xmm[1]) : 67 + Number(xmm[1]) - 16;
  const r = /^r(\d+)$/.exec(name);
  if (r) return Number(r[1]);
  throw new Error(`unknown readelf register name ${name}`);
}

/** The entries of one section in `readelf --debug-dump=frames-interp` output, by offset. */
function parseInterp(text: string, section: string): Map<number, ReadelfEntry> {
  const out = new Map<number, ReadelfEntry>();
  const lines = text.split('\n');
  let i = lines.indexOf(`Contents of the ${section} section:`);
  assert.ok(i >= 0, `readelf printed ${section}`);
  let cur: ReadelfEntry | undefined;
  for (i++; i < lines.length && !lines[i].startsWith('Contents of the '); i++) {
    const line = lines[i];
    const cie = /^([0-9a-f]{8,16}) [0-9a-f]+ [0-9a-f]+ CIE "([^"]*)" cf=(\d+) df=(-?\d+) ra=(\d+)$/.exec(line);
    const fde = /^([0-9a-f]{8,16}) [0-9a-f]+ [0-9a-f]+ FDE cie=([0-9a-f]+) pc=([0-9a-f]+)\.\.([0-9a-f]+)$/.exec(line);
    if (cie) {
      const cieFields = { augmentation: cie[2], codeAlign: Number(cie[3]), dataAlign: Number(cie[4]), returnAddressRegister: Number(cie[5]) };
      cur = { offset: parseInt(cie[1], 16), kind: 'CIE', cie: parseInt(cie[1], 16), start: 0n, end: 0n, cieFields, columns: [], rows: [] };
      out.set(cur.offset, cur);
    } else if (fde) {
      const owner = out.get(parseInt(fde[2], 16));
      assert.ok(owner, `CIE of FDE ${fde[1]} printed first`);
      cur = { ...owner, offset: parseInt(fde[1], 16), kind: 'FDE', cie: owner.offset, start: BigInt('0x' + fde[3]), end: BigInt('0x' + fde[4]), columns: [], rows: [] };
      out.set(cur.offset, cur);
    } else if (cur && /^\s+LOC\s+CFA/.test(line)) {
      const ra = cur.cieFields.returnAddressRegister;
      cur.columns = line.trim().split(/\s+/).slice(2).map((c) => (c === 'ra' ? ra : regNumber(c)));
    } else if (cur && /^[0-9a-f]{8,16} /.test(line)) {
      // A register rule like "r13 (r13)" contains a space: glue it into one cell.
      const tokens = line.trim().replace(/ \(/g, '(').split(/\s+/);
      assert.equal(tokens.length, 2 + cur.columns.length, `row shape in entry 0x${cur.offset.toString(16)}: ${line}`);
      cur.rows.push({ loc: BigInt('0x' + tokens[0]), cfa: tokens[1], cells: tokens.slice(2) });
    }
  }
  return out;
}

/** CIE header fields and FDE op names from `readelf --debug-dump=frames`. */
type RawEntry = { fields: Map<string, string>; ops: string[] };

function parseRaw(text: string): Map<number, RawEntry> {
  const out = new Map<number, RawEntry>();
  let cur: RawEntry | undefined;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]{8,16}) [0-9a-f]+ [0-9a-f]+ (CIE|FDE)/.exec(line);
    const field = /^ {2}([A-Z][\w ]+):\s+(.*)$/.exec(line);
    const op = /^ {2}(DW_CFA_\w+)(.*)$/.exec(line);
    if (head) {
      cur = { fields: new Map(), ops: [] };
      out.set(parseInt(head[1], 16), cur);
    } else if (cur && op) cur.ops.push(op[1] + op[2]);
    else if (cur && field) cur.fields.set(field[1], field[2]);
  }
  return out;
}

// ---- Our tables in readelf's terms

function signed(n: number): string {
  return n >= 0 ? `+${n}` : `${n}`;
}

function ruleText(rule: RegRule | undefined): string {
  if (!rule || rule.kind === 'undefined') return 'u';
  if (rule.kind === 'sameValue') return 's';
  if (rule.kind === 'offset') return `c${signed(rule.offset)}`;
  if (rule.kind === 'valOffset') return `v${signed(rule.offset)}`;
  if (rule.kind === 'register') return `r${rule.reg}`;
  return rule.kind === 'expression' ? 'exp' : 'vexp';
}

/** readelf's cell with register names turned into numbers, to compare with ruleText. */
function readelfCell(cell: string): string {
  const reg = /^(\w+)\((\w+)\)$/.exec(cell);
  return reg ? `r${regNumber(reg[1])}` : cell;
}

function readelfCfa(cfa: string): string {
  const m = /^(\w+)([+-]\d+)$/.exec(cfa);
  return m ? `r${regNumber(m[1])}${m[2]}` : cfa;
}

function ourRow(row: UnwindRow, columns: number[]): string {
  const cfa = row.cfa.kind === 'regOffset' ? `r${row.cfa.reg}${signed(row.cfa.offset)}` : 'exp';
  const cells = columns.map((c) => ruleText(row.regs.get(c)));
  // A rule readelf has no column for would be a register we invented.
  const extra = [...row.regs.keys()].filter((r) => !columns.includes(r)).map((r) => `extra r${r}=${ruleText(row.regs.get(r))}`);
  return [row.start.toString(16), cfa, ...cells, ...extra].join(' ');
}

/**
 * readelf's rows for an FDE as non-empty [loc, next) ranges: it prints a row per advance even
 * when the advance is 0 or runs past the FDE's end, and no table at all when the FDE has only
 * nops, in which case the CIE's initial row applies.
 */
function expectedRows(e: ReadelfEntry, cie: ReadelfEntry): string[] {
  const rows = e.rows.length ? e.rows : cie.rows.map((r) => ({ ...r, loc: e.start }));
  const kept = rows.filter((r, i) => r.loc < e.end && (i === rows.length - 1 || rows[i + 1].loc > r.loc));
  return kept.map((r) => [r.loc.toString(16), readelfCfa(r.cfa), ...r.cells.map(readelfCell)].join(' '));
}

function compareTable(cfi: CallFrameInfo, fde: Fde, entries: Map<number, ReadelfEntry>): void {
  const e = entries.get(fde.offset);
  assert.ok(e && e.kind === 'FDE', `readelf has an FDE at 0x${fde.offset.toString(16)}`);
  const cie = entries.get(e.cie) as ReadelfEntry;
  const columns = e.rows.length ? e.columns : cie.columns;
  assert.deepEqual(cfi.table(fde).map((r) => ourRow(r, columns)), expectedRows(e, cie), `table of FDE 0x${fde.offset.toString(16)}`);
}

function readelf(args: string[], file: string): string {
  return execFileSync('readelf', [...args, file], { encoding: 'utf8', maxBuffer: 512 << 20 });
}

/** A section made of given bytes, for corrupt input; CallFrameInfo only needs this much of DwarfSections. */
function synthetic(bytes: Buffer, name: FrameSectionName = '.debug_frame'): FrameSectionSource {
  const sec: FrameSectionData = { name, size: bytes.length, info: { addr: 0n }, all: () => bytes };
  return { get: (n) => (n === name ? sec : undefined) };
}

function isFrameError(e: unknown): boolean {
  return e instanceof DwarfError && e.section === '.debug_frame' && e.message.includes('.debug_frame');
}

/** Index the section and run every FDE's table: everything a consumer could trigger. */
function runAll(bytes: Buffer): UnwindRow[][] {
  const cfi = new CallFrameInfo(synthetic(bytes));
  return cfi.fdes().map((f) => cfi.table(f));
}

describe('dwarf/frame on the sample vmlinux', function () {
  this.timeout(120_000);
  let elf: ElfFile;
  let cfi: CallFrameInfo;
  let interp: Map<number, ReadelfEntry>;
  let raw: Map<number, RawEntry>;
  let nm: Map<string, bigint>;
  let buildMs: number;

  before(function () {
    const g = sampleGuest(this);
    elf = ElfFile.open(g.vmlinux);
    cfi = new CallFrameInfo(new DwarfSections(elf));
    const t0 = process.hrtime.bigint();
    assert.ok(cfi.fdeCount > 0);
    buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
    interp = parseInterp(readelf(['--debug-dump=frames-interp'], g.vmlinux), '.debug_frame');
    raw = parseRaw(readelf(['--debug-dump=frames'], g.vmlinux));
    nm = new Map();
    for (const line of execFileSync('nm', [g.vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n')) {
      const m = /^([0-9a-f]{16}) [Tt] (\S+)$/.exec(line);
      if (m && !nm.has(m[2])) nm.set(m[2], BigInt('0x' + m[1]));
    }
  });
  after(() => elf?.close());

  const fdesOf = (): ReadelfEntry[] => [...interp.values()].filter((e) => e.kind === 'FDE');

  it('builds the FDE index quickly', () => {
    // eslint-disable-next-line no-console
    console.log(`      index of ${cfi.fdeCount} FDEs built in ${buildMs.toFixed(1)} ms`);
    assert.equal(cfi.sectionName, '.debug_frame');
    assert.ok(buildMs < 500, `index took ${buildMs} ms`);
  });

  it('has as many FDEs as readelf, with the same [start, end) and CIE for every one', () => {
    const theirs = fdesOf()
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.offset - b.offset))
      .map((e) => `${e.offset.toString(16)} cie=${e.cie.toString(16)} ${e.start.toString(16)}..${e.end.toString(16)}`);
    const ours = cfi.fdes().map((f) => `${f.offset.toString(16)} cie=${f.cie.offset.toString(16)} ${f.start.toString(16)}..${f.end.toString(16)}`);
    assert.ok(theirs.length > 10_000);
    assert.equal(ours.length, theirs.length);
    assert.deepEqual(ours, theirs);
  });

  it('reads every CIE as readelf does (version, augmentation, alignment, return column)', () => {
    let n = 0;
    for (const [off, e] of raw) {
      if (!e.fields.has('Version')) continue;
      const cie = cfi.cieAt(off);
      assert.equal(cie.version, Number(e.fields.get('Version')));
      assert.equal(`"${cie.augmentation}"`, e.fields.get('Augmentation'));
      assert.equal(cie.codeAlign, Number(e.fields.get('Code alignment factor')));
      assert.equal(cie.dataAlign, Number(e.fields.get('Data alignment factor')));
      assert.equal(cie.returnAddressRegister, Number(e.fields.get('Return address column')));
      assert.equal(cie.addressSize, 8);
      n++;
    }
    assert.ok(n > 100, `${n} CIEs`);
  });

  for (const fn of ['kernel_clone', 'copy_process']) {
    it(`interprets the FDE of ${fn} row for row as readelf`, () => {
      const addr = nm.get(fn);
      assert.ok(addr, `nm has ${fn}`);
      const fde = cfi.fdeFor(addr);
      assert.ok(fde, `an FDE covers ${fn}`);
      assert.equal(fde.start, addr);
      const e = interp.get(fde.offset) as ReadelfEntry;
      const { augmentation, codeAlign, dataAlign, returnAddressRegister } = fde.cie;
      assert.deepEqual({ augmentation, codeAlign, dataAlign, returnAddressRegister }, e.cieFields);
      assert.ok(e.rows.length >= 3, 'a real prologue/epilogue table');
      compareTable(cfi, fde, interp);
      // rowAt agrees with the table at each row's first and last byte.
      for (const row of cfi.table(fde)) {
        assert.deepEqual(cfi.rowAt(row.start), row);
        assert.deepEqual(cfi.rowAt(row.end - 1n), row);
      }
    });
  }

  it('restores remembered state (and the CFA with it) as readelf does', () => {
    const offs = [...raw].filter(([, e]) => e.ops.includes('DW_CFA_remember_state')).map(([o]) => o);
    assert.ok(offs.length > 10);
    for (const off of offs) compareTable(cfi, cfi.fdeAt(off), interp);
  });

  it('reads DW_CFA_def_cfa_expression and DW_CFA_expression blocks byte for byte', () => {
    const off = [...raw].find(([, e]) => e.ops.some((o) => o.startsWith('DW_CFA_def_cfa_expression (DW_OP_breg6 (rbp): -40; DW_OP_deref)')))?.[0];
    assert.ok(off !== undefined, 'the sample has a realigned-stack FDE');
    const fde = cfi.fdeAt(off);
    compareTable(cfi, fde, interp);
    const row = cfi.table(fde).find((r) => r.cfa.kind === 'expression');
    assert.ok(row && row.cfa.kind === 'expression');
    assert.equal(row.cfa.expr.toString('hex'), '765806'); // DW_OP_breg6 -40; DW_OP_deref
    const rbp = row.regs.get(6);
    assert.ok(rbp?.kind === 'expression');
    assert.equal(rbp.expr.toString('hex'), '7600'); // DW_OP_breg6 0
  });

  it('interprets the first and last FDE, in section and in address order', () => {
    const bySection = fdesOf().sort((a, b) => a.offset - b.offset);
    const all = cfi.fdes();
    for (const off of [bySection[0].offset, bySection[bySection.length - 1].offset, all[0].offset, all[all.length - 1].offset]) {
      compareTable(cfi, cfi.fdeAt(off), interp);
    }
  });

  it('interprets every FDE in the section exactly as readelf does', () => {
    const bad = cfi.fdes().filter((f) => {
      try {
        compareTable(cfi, f, interp);
        return false;
      } catch {
        return true;
      }
    });
    assert.equal(bad.length, 0, `${bad.length} FDEs differ, the first at 0x${bad[0]?.offset.toString(16)}`);
  });

  it('finds the FDE for a pc at its first and last byte, and none in gaps or outside .text', () => {
    const all = cfi.fdes();
    let gaps = 0;
    for (let i = 0; i < all.length; i += 97) {
      const f = all[i];
      if (f.end <= f.start) continue;
      assert.equal(cfi.fdeFor(f.start)?.offset, f.offset);
      assert.equal(cfi.fdeFor(f.end - 1n)?.offset, f.offset);
    }
    let covered = 0n;
    for (let i = 0; i + 1 < all.length; i++) {
      if (all[i].end > covered) covered = all[i].end;
      if (covered < all[i + 1].start) {
        assert.equal(cfi.fdeFor(covered), undefined, `gap at 0x${covered.toString(16)}`);
        assert.equal(cfi.rowAt(covered), undefined);
        gaps++;
      }
    }
    assert.ok(gaps > 0, 'the sample has gaps between FDEs');
    assert.equal(cfi.fdeFor(0x1000n), undefined);
    assert.equal(cfi.rowAt(0xffffffffffffff00n), undefined);
  });

  describe('on corrupt copies of real CIE and FDE bytes', () => {
    let bytes: Buffer;
    let cieLen: number;
    let good: UnwindRow[];

    /** The bytes of the entry at a section offset, from the vmlinux file itself. */
    const entry = (off: number): Buffer => {
      const sec = elf.section('.debug_frame');
      assert.ok(sec);
      const len = elf.read(sec.offset + off, 4).readUInt32LE(0);
      return elf.read(sec.offset + off, 4 + len);
    };

    before(() => {
      // An FDE with remember/restore_state whose CIE is not the first one, so rewriting its CIE
      // pointer to 0 for the two-entry copy is itself checked.
      const off = [...raw].find(([, e]) => e.ops.includes('DW_CFA_remember_state'))?.[0];
      assert.ok(off !== undefined);
      const fde = cfi.fdeAt(off);
      const cie = entry(fde.cie.offset);
      const f = Buffer.from(entry(off)); // [length, CIE pointer, start, range, instructions]
      f.writeUInt32LE(0, 4);
      bytes = Buffer.concat([cie, f]);
      cieLen = cie.length;
      good = cfi.table(fde);
      assert.deepEqual(runAll(bytes), [good]);
    });

    const expectFrameError = (b: Buffer, pattern = /./): DwarfError => {
      let caught: unknown;
      assert.throws(() => runAll(b), (e: unknown) => ((caught = e), isFrameError(e) && pattern.test(String(e))));
      return caught as DwarfError;
    };
    /** A copy of the two entries with one edit. */
    const edited = (edit: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(bytes);
      edit(b);
      return b;
    };

    it('reads the same table from a 64-bit DWARF copy', () => {
      const fdeBody = bytes.subarray(cieLen + 8);
      const cie64 = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.alloc(8), Buffer.alloc(8, 0xff), bytes.subarray(8, cieLen)]);
      cie64.writeBigUInt64LE(BigInt(cie64.length - 12), 4);
      const fde64 = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.alloc(8), Buffer.alloc(8), fdeBody]);
      fde64.writeBigUInt64LE(BigInt(fde64.length - 12), 4);
      const cfi64 = new CallFrameInfo(synthetic(Buffer.concat([cie64, fde64])));
      assert.equal(cfi64.fdes()[0].cie.offsetSize, 8);
      assert.deepEqual(cfi64.table(cfi64.fdes()[0]), good);
    });

    it('fails with a DwarfError at every truncation, except at entry boundaries', function () {
      this.timeout(20_000);
      let slowest = 0;
      for (let k = 0; k < bytes.length; k++) {
        const t0 = Date.now();
        if (k === 0 || k === cieLen) assert.deepEqual(runAll(bytes.subarray(0, k)), []);
        else expectFrameError(bytes.subarray(0, k));
        slowest = Math.max(slowest, Date.now() - t0);
      }
      assert.ok(slowest < 250, `slowest case took ${slowest} ms`);
    });

    it('stops cleanly when an FDE\'s length cuts its instructions anywhere', () => {
      const fdeLen = bytes.readUInt32LE(cieLen);
      let failures = 0;
      for (let cut = 1; cut <= fdeLen; cut++) {
        const b = Buffer.from(bytes.subarray(0, bytes.length - cut));
        b.writeUInt32LE(fdeLen - cut, cieLen);
        try {
          const tables = runAll(b);
          // A zero length is a terminator, not an FDE.
          if (cut === fdeLen) assert.deepEqual(tables, []);
          else assert.ok(tables[0].length <= good.length);
        } catch (e) {
          assert.ok(isFrameError(e), String(e));
          failures++;
        }
      }
      assert.ok(failures > 0);
    });

    it('survives any single corrupted byte with a result or a DwarfError, quickly', function () {
      this.timeout(30_000);
      let slowest = 0;
      let errors = 0;
      for (let i = 0; i < bytes.length; i++) {
        for (const v of [0x00, 0x01, 0x0b, 0x2d, 0x3f, 0x7f, 0x80, 0xc0, 0xff, bytes[i] ^ 0xff]) {
          const t0 = Date.now();
          try {
            runAll(edited((b) => (b[i] = v)));
          } catch (e) {
            assert.ok(isFrameError(e), `byte ${i} = 0x${v.toString(16)}: ${String(e)}`);
            errors++;
          }
          slowest = Math.max(slowest, Date.now() - t0);
        }
      }
      assert.ok(errors > 0);
      assert.ok(slowest < 250, `slowest case took ${slowest} ms`);
    });

    it('finds the covering FDE among overlapping and zero-length ones', () => {
      const copy = (start: bigint, range: bigint): Buffer => {
        const b = Buffer.from(bytes.subarray(cieLen));
        b.writeBigUInt64LE(start, 8);
        b.writeBigUInt64LE(range, 16);
        return b;
      };
      const cfi2 = new CallFrameInfo(synthetic(Buffer.concat([bytes.subarray(0, cieLen), copy(0x1200n, 0x600n), copy(0x1000n, 0x1000n), copy(0x1100n, 0n)])));
      const found = [0xfffn, 0x1000n, 0x1100n, 0x1300n, 0x17ffn, 0x1800n, 0x1fffn, 0x2000n].map((pc) => cfi2.fdeFor(pc)?.start);
      assert.deepEqual(found, [undefined, 0x1000n, 0x1000n, 0x1200n, 0x1200n, 0x1000n, 0x1000n, undefined]);
      assert.equal(cfi2.rowAt(0x1900n)?.end, 0x2000n);
    });

    it('names an unknown opcode and its offset', () => {
      const cfi1 = new CallFrameInfo(synthetic(bytes));
      const at = cfi1.fdes()[0].instructionsOffset;
      assert.equal(expectFrameError(edited((b) => (b[at] = 0x3f)), /unknown call frame instruction 0x3f/).offset, at);
    });

    it('rejects CIE pointers that do not point to a CIE', () => {
      for (const target of [cieLen, 4, 0xfffffff0, bytes.length]) {
        const b = edited((x) => x.writeUInt32LE(target, cieLen + 4));
        assert.equal(expectFrameError(b, /CIE pointer 0x[0-9a-f]+ does not point to a CIE/).offset, cieLen + 4);
      }
    });

    it('rejects DW_CFA_restore_state with nothing remembered', () => {
      let hit = 0;
      for (let i = cieLen; i < bytes.length; i++) {
        if (bytes[i] !== 0x0a) continue;
        try {
          runAll(edited((b) => (b[i] = 0x00)));
        } catch (e) {
          assert.ok(isFrameError(e), String(e));
          if (/restore_state with no remembered state/.test(String(e))) hit++;
        }
      }
      assert.ok(hit > 0, 'removing the remember_state made restore_state fail');
    });

    it('rejects lengths past the section\'s end and unsupported CIE versions', () => {
      assert.equal(expectFrameError(edited((b) => b.writeUInt32LE(0xfff0, cieLen)), /runs past the end/).offset, cieLen);
      expectFrameError(edited((b) => (b[8] = 2)), /unsupported CIE version 2/);
      expectFrameError(edited((b) => b.writeUInt32LE(0xfffffff5, 0)), /reserved initial length/);
    });

    it('runs DW_CFA_set_loc and refuses one that goes backwards', () => {
      // Real CIE, real FDE header; instructions replaced by set_loc / def_cfa_offset pairs.
      const fde = new CallFrameInfo(synthetic(bytes)).fdes()[0];
      const headerLen = fde.instructionsOffset - cieLen;
      const loc = (a: bigint): Buffer => {
        const b = Buffer.alloc(9);
        b[0] = 0x01;
        b.writeBigUInt64LE(a, 1);
        return b;
      };
      const build = (ins: Buffer): Buffer => {
        const f = Buffer.concat([bytes.subarray(cieLen, cieLen + headerLen), ins]);
        f.writeUInt32LE(f.length - 4, 0);
        return Buffer.concat([bytes.subarray(0, cieLen), f]);
      };
      const [rows] = runAll(build(Buffer.concat([loc(fde.start + 4n), Buffer.from([0x0e, 0x10]), loc(fde.start + 9n), Buffer.from([0x0e, 0x18])])));
      const rsp = (offset: number): CfaRule => ({ kind: 'regOffset', reg: 7, offset });
      assert.deepEqual(rows.map((r) => [r.start - fde.start, r.end - fde.start, r.cfa]), [[0n, 4n, rsp(8)], [4n, 9n, rsp(16)], [9n, fde.end - fde.start, rsp(24)]]);
      expectFrameError(build(Buffer.concat([loc(fde.start + 4n), loc(fde.start + 2n)])), /set_loc moves backwards/);
    });
  });
});

// ---- Every DW_CFA op, from gas, in CIE versions 1, 3 and 4 and in .eh_frame

const ASM = `
	.cfi_sections SECTION
	.text
	.globl _start
_start:
	.cfi_startproc
	EXTRA
	push %rbp
	.cfi_def_cfa_offset 16
	.cfi_offset %rbp, -16
	mov %rsp, %rbp
	.cfi_def_cfa_register %rbp
	.cfi_remember_state
	nop
	.cfi_offset %rbx, 8
	.cfi_register %r12, %r13
	.cfi_undefined %r14
	.cfi_same_value %r15
	.cfi_val_offset %rsi, -24
	.cfi_offset %xmm20, -32
	nop
	.cfi_restore %xmm20
	.cfi_def_cfa %rsp, -8
	.cfi_restore_state
	.skip 300
	.cfi_escape 0x13, 0x7c               # def_cfa_offset_sf -4 (factored: 32)
	nop
	.cfi_escape 0x15, 0x04, 0x7d         # val_offset_sf rsi, -3 (factored: +24)
	.cfi_escape 0x2e, 0x10               # GNU_args_size 16
	.cfi_escape 0x2f, 0x05, 0x02         # GNU_negative_offset_extended rdi, 2 (+16)
	.cfi_escape 0x16, 0x02, 0x02, 0x77, 0x08   # val_expression rcx: breg7 +8
	.cfi_escape 0x0f, 0x02, 0x77, 0x10         # def_cfa_expression: breg7 +16
	.cfi_escape 0x10, 0x01, 0x02, 0x77, 0x08   # expression rdx: breg7 +8
	.skip 70000
	.cfi_escape 0x12, 0x07, 0x7e         # def_cfa_sf rsp, -2 (16)
	.cfi_escape 0x11, 0x03, 0x7c         # offset_extended_sf rbx, -4 (+32)
	nop
	.cfi_window_save
	nop
	ret
	.cfi_endproc
f2:
	.cfi_startproc
	push %rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbx, 0
	.cfi_offset %rip, -16
	nop
	.cfi_restore %rip                    # back to the CIE's rule, c-8
	pop %rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbx
	ret
	.cfi_endproc
	.data
pers:	.quad 0
lsda:	.quad 0
`;

describe('dwarf/frame on every DW_CFA op, from gas', function () {
  this.timeout(60_000);
  let dir: string;

  before(function () {
    const works = (cmd: string): boolean => {
      try {
        return execFileSync(cmd, ['--version']).length > 0;
      } catch {
        return false;
      }
    };
    requireOrSkip(this, works('as') && works('ld'), 'binutils (as, ld) are not installed');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-frame-'));
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  const build = (name: string, section: string, extra: string, asArgs: string[]): string => {
    const src = path.join(dir, `${name}.s`);
    fs.writeFileSync(src, ASM.replace('SECTION', section).replace('EXTRA', extra));
    execFileSync('as', [...asArgs, '-o', path.join(dir, `${name}.o`), src]);
    execFileSync('ld', ['-o', path.join(dir, name), path.join(dir, `${name}.o`)]);
    return path.join(dir, name);
  };

  const check = (file: string, section: FrameSectionName): CallFrameInfo => {
    const elf = ElfFile.open(file);
    try {
      const cfi = new CallFrameInfo(new DwarfSections(elf), 8, section);
      const entries = parseInterp(readelf(['--debug-dump=frames-interp'], file), section);
      const fdes = cfi.fdes();
      assert.equal(fdes.length, 2);
      for (const f of fdes) {
        const e = entries.get(f.offset) as ReadelfEntry;
        assert.deepEqual([f.start, f.end, f.cie.offset, f.cie.augmentation], [e.start, e.end, e.cie, e.cieFields.augmentation]);
        compareTable(cfi, f, entries);
      }
      // DW_CFA_GNU_window_save (readelf shows nothing for it) marks the rows after it.
      const rows = cfi.table(fdes[0]);
      assert.deepEqual(rows.map((r) => r.raSigned === true), rows.map((_, i) => i === rows.length - 1));
      return cfi;
    } finally {
      elf.close();
    }
  };

  for (const version of [1, 3, 4]) {
    it(`reads a version ${version} CIE in .debug_frame`, function () {
      const file = build(`v${version}`, '.debug_frame', '', [`--gdwarf-cie-version=${version}`]);
      const cfi = check(file, '.debug_frame');
      const fields = parseRaw(readelf(['--debug-dump=frames'], file)).get(0)?.fields;
      const cie = cfi.cieAt(0);
      assert.deepEqual([cie.version, cie.version, cie.addressSize], [version, Number(fields?.get('Version')), Number(fields?.get('Pointer Size') ?? 8)]);
    });
  }

  it('reads .eh_frame: pc-relative addresses, z/P/L/R/S augmentation, CIE id 0', () => {
    const file = build('eh', '.eh_frame', '.cfi_personality 0x3, pers\n\t.cfi_lsda 0x3, lsda\n\t.cfi_signal_frame', []);
    const cfi = check(file, '.eh_frame');
    const [first, second] = cfi.fdes();
    assert.deepEqual([first.cie.augmentation, first.cie.signalFrame], ['zPLRS', true]);
    assert.deepEqual([second.cie.augmentation, second.cie.signalFrame, second.cie.fdeEncoding], ['zR', false, 0x1b]); // pcrel | sdata4
  });
});
