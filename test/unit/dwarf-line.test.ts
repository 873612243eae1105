/**
 * The .debug_line reader against binutils: every row and header of the sample vmlinux is checked
 * against readelf's decodedline and rawline dumps, small gcc builds cover DWARF 2-4, units built
 * here cover the opcodes no compiler emits for x86 (readelf still decodes them), and real unit
 * bytes cut short or with corrupted fields must fail with a DwarfError, never hang or crash.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ElfFile } from '../../src/symbols/elf';
import { lineFile, lineHeaders, parseLineHeader, parseLineTable, type LineHeader, type LineRow, type LineTable } from '../../src/symbols/dwarf/line';
import { lineOffset } from '../../src/symbols/dwarf/offsets';
import { DwarfError } from '../../src/symbols/dwarf/reader';
import { DwarfSections } from '../../src/symbols/dwarf/sections';
import { requireOrSkip, sampleGuest } from '../support/env';

/** A row as readelf -wL prints it: end-of-sequence rows carry only the address. */
type OracleRow = { file: string; line: number | null; address: string; opIndex: number; stmt: boolean; end: boolean };

const ROW = /^(\S+)\s+(-?\d+|-)\s+(0x[0-9a-f]+|0)(?:\[(\d+)\])?(?:\s+\d+)?(\s+x)?\s*$/;

function oracleRow(m: RegExpExecArray): OracleRow {
  const end = m[2] === '-';
  return { file: m[1], line: end ? null : Number(m[2]), address: m[3], opIndex: Number(m[4] ?? 0), stmt: !end && m[5] !== undefined, end };
}

function ourRow(h: LineHeader, r: LineRow): OracleRow {
  const address = r.address === 0n ? '0' : `0x${r.address.toString(16)}`;
  const file = lineFile(h, r.file)?.name ?? '<corrupt>';
  return { file, line: r.endSequence ? null : r.line, address, opIndex: h.maxOpsPerInst > 1 ? r.opIndex : 0, stmt: !r.endSequence && r.isStmt, end: r.endSequence };
}

/** The "CU:" line readelf -W prints for a unit (binutils 2.40 rules). */
function cuLine(h: LineHeader): string {
  const f = h.files[0];
  if (h.version >= 5) return `CU: ${h.includeDirs[f.dirIndex]}/${f.name}:`;
  if (h.includeDirs.length === 0) return `CU: ${f.name}:`;
  return `CU: ${f.dirIndex === 0 ? '.' : h.includeDirs[f.dirIndex - 1]}/${f.name}:`;
}

/** The line readelf prints on DW_LNS_set_file. */
function switchLine(h: LineHeader, fileNo: number): string {
  const f = lineFile(h, fileNo);
  if (!f) return `<no file ${fileNo}>`;
  if (h.version >= 5) return `${h.includeDirs[f.dirIndex]}/${f.name}:`;
  return f.dirIndex === 0 ? `./${f.name}:[++]` : `${h.includeDirs[f.dirIndex - 1]}/${f.name}:`;
}

/**
 * Walks readelf's decodedline output unit by unit, comparing each row with ours as it streams
 * by, so the whole 1.5M-row dump is checked without holding it in memory.
 */
class DecodedComparer {
  units = 0;
  rows = 0;
  readonly mismatches: string[] = [];
  readonly kept = new Map<string, OracleRow[]>();
  private table: LineTable | undefined;
  private name = '';
  private next = 0;
  private pendingSwitch: string | undefined;

  constructor(
    private readonly tableAt: (unit: number) => LineTable | undefined,
    private readonly keep: ReadonlySet<string>,
  ) {}

  private miss(detail: string): void {
    if (this.mismatches.length < 20) this.mismatches.push(`${this.name}: ${detail}`);
    else if (this.mismatches.length === 20) this.mismatches.push('...');
  }

  line(text: string): void {
    if (text.startsWith('CU: ')) {
      this.endUnit();
      this.table = this.tableAt(this.units++);
      this.name = text.slice(4, -1);
      this.next = 0;
      if (!this.table) this.miss('readelf has more units than we do');
      else if (cuLine(this.table.header) !== text) this.miss(`CU line ${cuLine(this.table.header)} != ${text}`);
      if (this.keep.has(this.name)) this.kept.set(this.name, []);
      return;
    }
    const m = ROW.exec(text);
    if (m) {
      this.rows++;
      const theirs = oracleRow(m);
      this.kept.get(this.name)?.push(theirs);
      const t = this.table;
      const r = t?.rows[this.next++];
      if (!t || !r) return this.miss(`readelf has row ${this.next - 1} (${text}); we have ${t?.rows.length ?? 0} rows`);
      if (this.pendingSwitch !== undefined && switchLine(t.header, r.file) !== this.pendingSwitch) this.miss(`file switch ${this.pendingSwitch} but our row's file gives ${switchLine(t.header, r.file)}`);
      this.pendingSwitch = undefined;
      const ours = ourRow(t.header, r);
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) this.miss(`row ${this.next - 1}: ours ${JSON.stringify(ours)} readelf ${JSON.stringify(theirs)}`);
    } else if (/:(\[\+\+\])?$/.test(text) && !text.startsWith('Contents of')) {
      this.pendingSwitch = text;
    }
  }

  endUnit(): void {
    if (this.table && this.next !== this.table.rows.length) this.miss(`readelf printed ${this.next} rows, we decoded ${this.table.rows.length}`);
    this.table = undefined;
  }
}

/** One unit of readelf's rawline dump: the header fields and both tables. */
interface RawUnit {
  fields: Map<string, string>;
  opcodeArgs: number[];
  dirs: string[];
  files: { name: string; dir: number; md5: string | undefined }[];
}

class RawParser {
  readonly units: RawUnit[] = [];
  private mode: 'none' | 'dirs' | 'files' = 'none';
  private columns: string[] = [];

  line(text: string): void {
    if (text.startsWith('  [0x')) return; // statements: the bulk of the dump
    const u = this.units[this.units.length - 1];
    let m: RegExpExecArray | null;
    if ((m = /^ {2}([\w' ()]+?):\s+(\S+)$/.exec(text))) {
      if (m[1] === 'Offset') this.units.push({ fields: new Map(), opcodeArgs: [], dirs: [], files: [] });
      this.units[this.units.length - 1].fields.set(m[1], m[2]);
    } else if ((m = /^ {2}Opcode \d+ has (\d+) args?$/.exec(text))) {
      u.opcodeArgs.push(Number(m[1]));
    } else if (text.startsWith(' The Directory Table')) {
      this.mode = 'dirs';
      this.columns = ['Name'];
    } else if (text.startsWith(' The File Name Table')) {
      this.mode = 'files';
    } else if (text.startsWith('  Entry\t')) {
      this.columns = text.trim().split('\t').slice(1).filter((c) => c !== '');
    } else if (text.startsWith(' Line Number Statements') || text.startsWith(' No Line Number')) {
      this.mode = 'none';
    } else if (this.mode !== 'none' && (m = /^ {2}\d+\t(.*)$/.exec(text))) {
      // v5 prints "(form)" and a tab (a space for data16) before each value; v2-4 bare values.
      const values = Number(u.fields.get('DWARF Version')) >= 5 ? [...m[1].matchAll(/\((\w+)\)[\t ]([^\t]*)/g)].map((x) => x[2]) : m[1].split('\t');
      const col = (c: string): string => (values[this.columns.indexOf(c)] ?? '').replace(/^\(offset: (0x)?[0-9a-f]+\): /, '');
      if (this.mode === 'dirs') {
        u.dirs.push(col('Name'));
      } else {
        // readelf shows an MD5 as one little-endian 128-bit number.
        const md5 = col('MD5') ? Buffer.from(col('MD5').slice(2).padStart(32, '0'), 'hex').reverse().toString('hex') : undefined;
        u.files.push({ name: col('Name'), dir: Number(col('Dir')), md5 });
      }
    }
  }
}

/** Differences between our header and readelf's raw dump of the same unit. */
function headerDiffs(h: LineHeader, u: RawUnit): string[] {
  const initLen = h.offsetSize === 8 ? 12 : 4;
  const fixed = initLen + 2 + (h.version >= 5 ? 2 : 0) + h.offsetSize;
  const want: [string, string | number][] = [
    ['Offset', h.offset === 0 ? '0' : `0x${h.offset.toString(16)}`],
    ['Length', h.unitEnd - h.offset - initLen],
    ['DWARF Version', h.version],
    ['Prologue Length', h.programStart - h.offset - fixed],
    ['Minimum Instruction Length', h.minInstLength],
    ['Initial value of \'is_stmt\'', h.defaultIsStmt ? 1 : 0],
    ['Line Base', h.lineBase],
    ['Line Range', h.lineRange],
    ['Opcode Base', h.opcodeBase],
  ];
  if (h.version >= 4) want.push(['Maximum Ops per Instruction', h.maxOpsPerInst]);
  if (h.version >= 5) want.push(['Address size (bytes)', h.addressSize]);
  const out = want.filter(([k, v]) => u.fields.get(k) !== String(v)).map(([k, v]) => `${k}: ours ${v}, readelf ${u.fields.get(k)}`);
  if (JSON.stringify(h.standardOpcodeLengths) !== JSON.stringify(u.opcodeArgs)) out.push('opcode lengths');
  if (JSON.stringify(h.includeDirs) !== JSON.stringify(u.dirs)) out.push(`dirs: ours ${JSON.stringify(h.includeDirs)} readelf ${JSON.stringify(u.dirs)}`);
  const files = h.files.map((f) => ({ name: f.name, dir: f.dirIndex, md5: f.md5 }));
  if (JSON.stringify(files) !== JSON.stringify(u.files)) out.push(`files: ours ${JSON.stringify(files.slice(0, 5))}... readelf ${JSON.stringify(u.files.slice(0, 5))}...`);
  return out;
}

/** Runs a command and feeds its stdout to `onLine` as it arrives. */
function streamLines(cmd: string, args: string[], onLine: (l: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let rest = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (rest) onLine(rest);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`));
    });
  });
}

/** Checks every unit of an ELF file against readelf; returns what the comparers saw. */
async function compareWithReadelf(file: string, sections: DwarfSections, headers: LineHeader[], keep: ReadonlySet<string>): Promise<{ decoded: DecodedComparer; raw: RawParser }> {
  const decoded = new DecodedComparer((i) => (headers[i] ? parseLineTable(sections, headers[i].offset, '') : undefined), keep);
  const raw = new RawParser();
  await Promise.all([streamLines('readelf', ['-W', '--debug-dump=decodedline', file], (l) => decoded.line(l)), streamLines('readelf', ['-W', '--debug-dump=rawline', file], (l) => raw.line(l))]);
  decoded.endUnit();
  return { decoded, raw };
}

/** A minimal ELF64 file holding the given sections: enough for ElfFile and for readelf. */
function writeElf(file: string, sections: [string, Buffer][]): void {
  const names = ['', '.shstrtab', ...sections.map(([n]) => n)];
  const shstr = Buffer.from(names.join('\0') + '\0');
  const nameOff = names.map((_, i) => names.slice(0, i).reduce((a, n) => a + n.length + 1, 0));
  const datas = [Buffer.alloc(0), shstr, ...sections.map(([, d]) => d)];
  const offs = datas.map((_, i) => 64 + datas.slice(0, i).reduce((a, d) => a + d.length, 0));
  const shoff = (offs[offs.length - 1] + datas[datas.length - 1].length + 7) & ~7;
  const out = Buffer.alloc(shoff + 64 * datas.length);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  // e_type ET_REL, e_machine x86-64, e_version, e_ehsize, e_shentsize, e_shnum, e_shstrndx.
  for (const [at, v] of [[16, 1], [18, 62], [20, 1], [52, 64], [58, 64], [60, datas.length], [62, 1]]) out.writeUInt16LE(v, at);
  out.writeBigUInt64LE(BigInt(shoff), 40);
  datas.forEach((d, i) => {
    d.copy(out, offs[i]);
    if (i === 0) return;
    const sh = shoff + 64 * i;
    out.writeUInt32LE(nameOff[i], sh);
    out.writeUInt32LE(i === 1 ? 3 : 1, sh + 4); // SHT_STRTAB : SHT_PROGBITS
    out.writeBigUInt64LE(BigInt(offs[i]), sh + 24);
    out.writeBigUInt64LE(BigInt(d.length), sh + 32);
    out.writeBigUInt64LE(1n, sh + 48);
  });
  fs.writeFileSync(file, out);
}

/** Parses a lone unit at offset 0 of a fresh ELF file; returns the table or the error it threw. */
function attempt(file: string, line: Buffer, lineStr: Buffer): LineTable | unknown {
  writeElf(file, [['.debug_line', line], ['.debug_line_str', lineStr]]);
  const elf = ElfFile.open(file);
  try {
    const s = new DwarfSections(elf);
    parseLineHeader(s, lineOffset(0), '/c');
    return parseLineTable(s, lineOffset(0), '/c');
  } catch (e) {
    return e;
  } finally {
    elf.close();
  }
}

function isTable(x: unknown): x is LineTable {
  return typeof x === 'object' && x !== null && 'rows' in x && 'header' in x;
}

function assertLineError(x: unknown, detail: RegExp | undefined, what: string): void {
  assert.ok(x instanceof DwarfError, `${what}: expected a DwarfError, got ${isTable(x) ? `a table of ${x.rows.length} rows` : String(x)}`);
  assert.match(x.message, /^\.debug_line at 0x[0-9a-f]+: /, what);
  if (detail) assert.match(x.message, detail, what);
}

const uleb = (n: number): number[] => (n < 128 ? [n] : [(n % 128) | 0x80, ...uleb(Math.floor(n / 128))]);
const cstr = (s: string): number[] => [...Buffer.from(s), 0];
const le = (n: number | bigint, size: number): number[] => [...Array(size)].map((_, i) => Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));

/** A 32-bit-DWARF line unit from the header fields after header_length and the program; lengths are filled in. */
function lineUnit(version: number, header: number[], program: number[]): Buffer {
  const pre = version >= 5 ? [...le(version, 2), 8, 0] : le(version, 2);
  const body = [...le(header.length, 4), ...header, ...program];
  return Buffer.from([...le(pre.length + body.length, 4), ...pre, ...body]);
}

describe('symbols/dwarf/line on the sample vmlinux, against readelf', function () {
  const chosen = new Set(['kernel/fork.c', 'arch/x86/kernel/head64.c', 'arch/x86/kernel/head_64.S', 'mm/memory.c']);
  let elf: ElfFile;
  let sections: DwarfSections;
  let headers: LineHeader[];
  let decoded: DecodedComparer;
  let raw: RawParser;

  before(async function () {
    this.timeout(180_000);
    const g = sampleGuest(this);
    elf = ElfFile.open(g.vmlinux);
    sections = new DwarfSections(elf);
    headers = [...lineHeaders(sections)];
    ({ decoded, raw } = await compareWithReadelf(g.vmlinux, sections, headers, chosen));
  });
  after(() => elf?.close());

  const unitNamed = (name: string): LineHeader => {
    const h = headers.find((x) => cuLine(x) === `CU: ${name}:`);
    assert.ok(h, `a unit for ${name}`);
    return h;
  };

  for (const name of chosen) {
    it(`decodes ${name} row for row as readelf does (address, line, file, is_stmt, end of sequence)`, () => {
      const h = unitNamed(name);
      const t = parseLineTable(sections, h.offset, '');
      const theirs = decoded.kept.get(name);
      assert.ok(theirs && theirs.length > 20, `readelf printed rows for ${name}`);
      assert.deepEqual(t.rows.map((r) => ourRow(t.header, r)), theirs);
      assert.ok(t.rows[t.rows.length - 1].endSequence, 'the last row ends a sequence');
    });
  }

  it('puts kernel_clone (address from nm) on a fork.c row', () => {
    const nm = execFileSync('nm', [elf.path], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const m = /^([0-9a-f]{16}) T kernel_clone$/m.exec(nm);
    assert.ok(m, 'nm lists kernel_clone');
    const t = parseLineTable(sections, unitNamed('kernel/fork.c').offset, '');
    const at = t.rows.filter((r) => r.address === BigInt('0x' + m[1]) && !r.endSequence);
    assert.ok(at.length > 0, 'a row at kernel_clone');
    assert.ok(at.some((r) => lineFile(t.header, r.file)?.name === 'fork.c'));
  });

  it('agrees with readelf on every row of every unit, and on the unit and row counts', () => {
    assert.deepEqual(decoded.mismatches, []);
    assert.equal(decoded.units, headers.length);
    assert.ok(headers.length > 900, `${headers.length} units`);
    assert.equal(decoded.rows, headers.reduce((n, h) => n + parseLineTable(sections, h.offset, '').rows.length, 0));
  });

  it('reads every header (lengths, fields, directory and file tables) as readelf --debug-dump=rawline does', () => {
    assert.equal(raw.units.length, headers.length);
    const diffs = headers.flatMap((h, i) => headerDiffs(h, raw.units[i]).map((d) => `unit 0x${h.offset.toString(16)}: ${d}`));
    assert.deepEqual(diffs.slice(0, 10), []);
  });

  it('reads the kernel/fork.c directory and file tables, resolving paths into the source tree', function () {
    const h = unitNamed('kernel/fork.c');
    const u = raw.units[headers.indexOf(h)];
    assert.equal(h.version, 5);
    assert.deepEqual(h.includeDirs, u.dirs);
    assert.deepEqual(h.files.map((f) => [f.name, f.dirIndex]), u.files.map((f) => [f.name, f.dir]));
    assert.ok(h.files.length > 100 && h.includeDirs[1] === 'kernel');
    const fork = lineFile(h, 0);
    assert.equal(fork?.path, path.posix.join(h.includeDirs[0], 'kernel/fork.c'));
    assert.equal(lineFile(h, 1)?.name, u.files[1].name, 'v5 file numbers are 0-based');
    assert.equal(lineFile(h, h.files.length), undefined);
    requireOrSkip(this, fs.existsSync(path.join(h.includeDirs[0], 'kernel', 'fork.c')), 'the kernel source tree is not on disk');
    const missing = h.files.filter((f) => f.name !== '<built-in>' && !fs.existsSync(f.path)).map((f) => f.path);
    assert.deepEqual(missing, []);
  });

  it('parses all units of .debug_line quickly', () => {
    const t0 = process.hrtime.bigint();
    let rows = 0;
    for (const h of lineHeaders(sections, () => '/build')) rows += parseLineTable(sections, h.offset, '/build').rows.length;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    // eslint-disable-next-line no-console
    console.log(`      all ${headers.length} units, ${rows} rows: ${ms.toFixed(0)} ms`);
    assert.equal(rows, decoded.rows);
    assert.ok(ms < 2000, `${ms} ms`);
  });
});

describe('symbols/dwarf/line on gcc output and hand-built units, against readelf', function () {
  let dir: string;
  before(() => (dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-line-')))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('decodes gcc -gdwarf-2..5 line tables (gas and gcc-built) like readelf, with paths resolved against comp_dir', async function () {
    this.timeout(60_000);
    requireOrSkip(this, spawnSync('gcc', ['--version']).status === 0, 'gcc is not installed');
    fs.mkdirSync(path.join(dir, 'inc'));
    fs.writeFileSync(path.join(dir, 'inc', 'hdr.h'), 'static inline int twice(int x) { return x * 2; }\n');
    fs.writeFileSync(path.join(dir, 't.c'), '#include "inc/hdr.h"\nint sum(const int *a, int n) {\n  int s = 0;\n  for (int i = 0; i < n; i++) s += twice(a[i]);\n  return s;\n}\nint start(void) { int a[3] = {1, 2, 3}; return sum(a, 3); }\n');
    const versions = new Set<number>();
    for (const v of [2, 3, 4, 5]) {
      for (const asLoc of [true, false]) {
        const out = path.join(dir, `t${v}${asLoc ? 'a' : 'g'}.so`);
        execFileSync('gcc', ['-O2', `-gdwarf-${v}`, asLoc ? '-gas-loc-support' : '-gno-as-loc-support', '-nostdlib', '-shared', '-fPIC', '-o', out, 't.c'], { cwd: dir });
        const elf = ElfFile.open(out);
        try {
          const s = new DwarfSections(elf);
          const headers = [...lineHeaders(s, () => dir)];
          assert.equal(headers.length, 1, out);
          const { decoded, raw } = await compareWithReadelf(out, s, headers, new Set());
          assert.deepEqual(decoded.mismatches, [], out);
          assert.ok(decoded.rows > 10, out);
          const h = headers[0];
          assert.deepEqual(headerDiffs(h, raw.units[0]), [], out);
          versions.add(h.version);
          for (const f of h.files) assert.equal(f.path, path.join(dir, f.name === 'hdr.h' ? 'inc' : '', f.name), out);
          assert.equal(lineFile(h, h.version >= 5 ? 0 : 1)?.name, 't.c', 'the primary file is number 1 in v2-4 and 0 in v5');
        } finally {
          elf.close();
        }
      }
    }
    assert.deepEqual([...versions].sort(), [2, 3, 4, 5]);
  });

  it('decodes VLIW op_index, define_file, unknown opcodes and v5 string/MD5 forms like readelf', async function () {
    const lengths = [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1];
    // v4, 4-byte instructions, 3 ops per instruction, an extra standard opcode 13 with 2 operands;
    // line_range 11 makes const_add_pc's (255 - opcode_base) / line_range differ from an off-by-one.
    const v4 = lineUnit(
      4,
      [4, 3, 1, ...le(-3, 1), 11, 14, ...lengths, 2, ...cstr('src'), 0, ...cstr('a.c'), 1, 0, 0, 0],
      [
        ...[0, 9, 2, ...le(0xffffffff81000000n, 8)], 1, // set_address, copy
        20, 40, 2, ...uleb(5), 1, // special opcodes, advance_pc 5 ops
        3, 0x7e, 6, 7, 10, 11, 1, // advance_line -2 (SLEB128 0x7e), negate_stmt, basic_block, prologue/epilogue, copy
        0, 8, 3, ...cstr('b.h'), 1, 0, 0, 4, ...uleb(2), 30, // define_file b.h (file 2), set_file 2, special
        13, ...uleb(300), ...uleb(7), 8, 9, ...le(0x123, 2), 12, ...uleb(3), 1, // unknown opcode 13, const_add_pc, fixed_advance_pc, set_isa, copy
        0, 4, 0x80, 1, 2, 3, 0, 2, 4, ...uleb(9), 255, 0, 1, 1, // unknown extended op, discriminator, special 255, end_sequence
      ],
    );
    // v3 with a v2-sized opcode table (opcode_base 10: 10..12 are special opcodes) and 4-byte addresses.
    const v3 = lineUnit(3, [1, 1, ...le(-5, 1), 14, 10, ...lengths.slice(0, 9), 0, ...cstr('/abs/c.c'), 0, 0, 0, 0], [0, 5, 2, ...le(0x1000, 4), 3, 0xe8, 0x07, 10, 11, 12, 1, 2, ...uleb(3), 0, 1, 1]);
    // v5 with DW_FORM_string paths, data2 directory indexes, an MD5 and an LLVM source (vendor) column.
    const md5 = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const tables = [1, 1, 0x1f, 2, ...le(0, 4), ...le(6, 4), 4, 1, 0x08, 2, 0x05, 5, 0x1e, 0x2001, 0x08]
      .flatMap((b) => (b > 0xff ? uleb(b) : [b]))
      .concat([2, ...cstr('d.c'), 0, 0, ...md5, ...cstr('int x;'), ...cstr('e.h'), 1, 0, ...md5, ...cstr('')]);
    const v5 = lineUnit(5, [1, 1, 1, ...le(-5, 1), 14, 13, ...lengths, ...tables], [0, 9, 2, ...le(0x2000, 8), 4, 1, 20, 0, 1, 1]);
    const lineStr = Buffer.from('/comp\0sub\0');
    const file = path.join(dir, 'built.o');
    writeElf(file, [['.debug_line', Buffer.concat([v4, v3, v5])], ['.debug_line_str', lineStr]]);
    const elf = ElfFile.open(file);
    try {
      const s = new DwarfSections(elf);
      const headers = [...lineHeaders(s, () => '/cu')];
      assert.deepEqual(headers.map((h) => h.version), [4, 3, 5]);
      const { decoded, raw } = await compareWithReadelf(file, s, headers, new Set());
      assert.deepEqual(decoded.mismatches, []);
      assert.equal(decoded.units, 3);
      headers.forEach((h, i) => assert.deepEqual(headerDiffs(h, raw.units[i]), [], `unit ${i}`));
      const t4 = parseLineTable(s, headers[0].offset, '/cu');
      assert.ok(t4.rows.some((r) => r.opIndex > 0), 'some VLIW row has op_index > 0');
      assert.deepEqual(t4.header.files.map((f) => f.path), ['/cu/src/a.c', '/cu/src/b.h'], 'define_file added b.h');
      assert.ok(t4.rows.some((r) => r.discriminator === 9) && t4.rows.some((r) => r.prologueEnd && r.epilogueBegin && r.basicBlock));
      assert.equal(parseLineTable(s, headers[1].offset, '/cu').header.files[0].path, '/abs/c.c');
      const h5 = headers[2];
      // A relative v5 directory joins the caller's comp_dir; entry 0 is only the fallback.
      assert.deepEqual(h5.files.map((f) => [f.path, f.md5]), [['/comp/d.c', md5.toString('hex')], ['/cu/sub/e.h', md5.toString('hex')]]);
      assert.equal(parseLineHeader(s, h5.offset, '').files[1].path, '/comp/sub/e.h');
    } finally {
      elf.close();
    }
  });
});

describe('symbols/dwarf/line on truncated and corrupt real units', function () {
  this.timeout(60_000);
  let dir: string;
  let fork: Buffer;
  let head: Buffer;
  let lineStr: Buffer;
  let forkRows: OracleRow[];
  let forkHeader: LineHeader;

  before(function () {
    const g = sampleGuest(this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-line-bad-'));
    const elf = ElfFile.open(g.vmlinux);
    try {
      const s = new DwarfSections(elf);
      const hs = [...lineHeaders(s)];
      const pick = (name: string): LineHeader => hs.find((h) => cuLine(h) === `CU: ${name}:`) as LineHeader;
      const unitBytes = (h: LineHeader): Buffer => Buffer.from(s.require('.debug_line').bytes(h.offset, h.unitEnd - h.offset));
      fork = unitBytes(pick('kernel/fork.c'));
      head = unitBytes(pick('arch/x86/kernel/head_64.S'));
      lineStr = Buffer.from(s.require('.debug_line_str').all());
    } finally {
      elf.close();
    }
    const whole = attempt(path.join(dir, 'whole'), fork, lineStr);
    assert.ok(isTable(whole), 'the copied unit parses on its own');
    forkHeader = whole.header;
    forkRows = whole.rows.map((r) => ourRow(whole.header, r));
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  const file = (): string => path.join(dir, 'case');
  const withU32 = (b: Buffer, at: number, v: number): Buffer => {
    const c = Buffer.from(b);
    c.writeUInt32LE(v, at);
    return c;
  };
  const withByte = (b: Buffer, at: number, v: number): Buffer => {
    const c = Buffer.from(b);
    c[at] = v;
    return c;
  };
  /** Replaces bytes inside the header, fixing unit_length and header_length to match. */
  const splice = (b: Buffer, at: number, remove: number, insert: number[]): Buffer => {
    const c = Buffer.concat([b.subarray(0, at), Buffer.from(insert), b.subarray(at + remove)]);
    const delta = insert.length - remove;
    c.writeUInt32LE(b.readUInt32LE(0) + delta, 0);
    c.writeUInt32LE(b.readUInt32LE(8) + delta, 8);
    return c;
  };

  it('fails on a section cut anywhere inside the unit', () => {
    const points = new Set<number>();
    for (let k = 0; k < 120; k++) points.add(k);
    for (let k = 120; k < fork.length; k += 211) points.add(k);
    points.add(fork.length - 1);
    for (const k of points) assertLineError(attempt(file(), fork.subarray(0, k), lineStr), undefined, `cut at ${k}`);
  });

  it('fails on a unit whose length was cut to match, or returns a prefix of the rows ending a sequence', () => {
    let failed = 0;
    let prefixes = 0;
    const cuts = [forkHeader.programStart - forkHeader.offset];
    for (let k = 4; k < fork.length; k += k < 2000 ? 7 : 97) cuts.push(k);
    for (const k of cuts) {
      const x = attempt(file(), withU32(fork.subarray(0, k), 0, k - 4), lineStr);
      if (isTable(x)) {
        const rows = x.rows.map((r) => ourRow(x.header, r));
        assert.deepEqual(rows, forkRows.slice(0, rows.length), `cut at ${k}`);
        assert.ok(rows.length === 0 || rows[rows.length - 1].end, `cut at ${k} ends a sequence`);
        prefixes++;
      } else {
        assertLineError(x, undefined, `cut at ${k}`);
        failed++;
      }
    }
    assert.ok(failed > 100, `${failed} cuts failed`);
    assertLineError(attempt(file(), withU32(fork.subarray(0, fork.length - 3), 0, fork.length - 7), lineStr), /ends inside a sequence/, 'final end_sequence removed');
    assert.ok(prefixes > 0, 'a cut at the program start gives an empty table');
  });

  it('fails with a clear message on corrupted header fields', () => {
    // The layout the offsets below assume: GCC's v5 header with one line_strp directory column.
    assert.deepEqual([fork.readUInt16LE(4), fork[6], fork[16], fork[17], fork[30], fork[31], fork[32]], [5, 8, 14, 13, 1, 1, 0x1f]);
    const dirCount = forkHeader.includeDirs.length;
    assert.equal(fork[33], dirCount);
    const cases: [string, Buffer, RegExp][] = [
      ['version 9', withByte(fork, 4, 9), /version 9/],
      ['version 1', withByte(fork, 4, 1), /version 1/],
      ['address size 3', withByte(fork, 6, 3), /address size 3/],
      ['max ops 0', withByte(fork, 13, 0), /maximum_operations_per_instruction is 0/],
      ['line_range 0', withByte(fork, 16, 0), /line_range is 0/],
      ['opcode_base 0', withByte(fork, 17, 0), /opcode_base is 0/],
      ['unit_length huge', withU32(fork, 0, 0xffffff00), /runs past the section's end/],
      ['unit_length reserved', withU32(fork, 0, 0xfffffff3), /reserved initial length/],
      ['unit_length 64-bit escape', withU32(fork, 0, 0xffffffff), /too large|runs past/],
      ['header_length huge', withU32(fork, 8, 0x7fffffff), /header_length/],
      ['directory form DW_FORM_addr', withByte(fork, 32, 0x01), /form 0x1\b/],
      ['no directory format', withByte(fork, 30, 0), /entries but no entry format/],
      ['directory count 2^34', splice(fork, 33, 1, uleb(2 ** 34)), /claims \d+ entries/],
      ['line_strp past .debug_line_str', withU32(fork, 34, 0xfffffff0), /\.debug_line_str/],
      ['path as data4', withByte(fork, 32, 0x06), /DW_LNCT_path in non-string form/],
    ];
    for (const [what, bytes, re] of cases) assertLineError(attempt(file(), bytes, lineStr), re, what);
  });

  it('fails on corrupted extended opcodes in the program', () => {
    const start = forkHeader.programStart - forkHeader.offset;
    const p = fork.indexOf(Buffer.from([0, 9, 2]), start);
    assert.ok(p >= start && p < start + 8, 'the program starts with DW_LNE_set_address');
    assertLineError(attempt(file(), withByte(fork, p + 1, 0x7f), lineStr), /set_address with a 126-byte operand/, 'long set_address');
    assertLineError(attempt(file(), withByte(fork, p + 1, 0), lineStr), /length 0/, 'zero-length extended op');
    const long = Buffer.concat([fork.subarray(0, p + 1), Buffer.from(uleb(1 << 20)), fork.subarray(p + 2)]);
    long.writeUInt32LE(long.length - 4, 0);
    assertLineError(attempt(file(), long, lineStr), /runs past the unit's end/, 'extended op past the end');
  });

  it('survives every single-byte corruption of a real unit: a table or a DwarfError, quickly', () => {
    let errors = 0;
    let slowest = 0;
    for (let i = 0; i < head.length; i++) {
      for (const v of new Set([0x00, 0xff, head[i] ^ 0x80, head[i] ^ 0x01])) {
        const t0 = Date.now();
        const x = attempt(file(), withByte(head, i, v), lineStr);
        slowest = Math.max(slowest, Date.now() - t0);
        if (!isTable(x)) {
          assertLineError(x, undefined, `byte ${i} = 0x${v.toString(16)}`);
          errors++;
        }
      }
    }
    assert.ok(errors > 100, `${errors} corruptions were caught`);
    assert.ok(slowest < 2000, `slowest case took ${slowest} ms`);
  });

  it('survives random multi-byte corruption of the fork.c unit', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let errors = 0;
    for (let c = 0; c < 200; c++) {
      const b = Buffer.from(fork);
      for (let j = 1 + rand(8); j > 0; j--) b[rand(b.length)] = rand(256);
      const x = attempt(file(), b, lineStr);
      if (!isTable(x)) {
        assertLineError(x, undefined, `case ${c}`);
        errors++;
      }
    }
    assert.ok(errors > 0, 'some corruption was caught');
  });
});
