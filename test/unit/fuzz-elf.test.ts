/**
 * Fuzzing the ELF reader and the symbol table from real executables: whole files (headers,
 * section header table, .symtab, .strtab and all) truncated, bit-flipped and overwritten with
 * hostile sizes and offsets, read both from memory and from a file on disk, then the DWARF
 * behind them. Every case ends in a result or an ElfError/DwarfError that names the file.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { ElfError, ElfFile, SHT_NOBITS } from '../../src/symbols/elf';
import { SymbolTable } from '../../src/symbols/symtab';
import { buildElf, compileCorpus, corpusSections, type Compiled } from './fuzzcorpus';
import { dwarfCheck, exerciseDwarf } from './fuzzdwarf';
import { fuzz, hostile, le, mutate, mutations, record, runsFor, Tally } from './fuzzkit';
import { requireOrSkip } from '../support/env';

/** Everything a session asks of an ELF file, each its own stage. */
function exerciseElf(elf: ElfFile, tally: Tally, withDwarf: boolean): void {
  const check = dwarfCheck(elf.path);
  const stage = (run: () => void): void => tally.stage(run, check);
  stage(() => {
    for (const s of elf.sections) {
      elf.section(s.name);
      stage(() => void elf.sectionData(s));
    }
  });
  stage(() => void elf.symbols());
  stage(() => void elf.readVirtual(elf.entry, 16));
  stage(() => {
    const t = SymbolTable.fromElf(elf);
    for (const name of ['main', 'sum_list', 'fold', 'counter', 'no_such_symbol']) {
      for (const s of t.lookup(name)) {
        t.locate(s.value);
        t.describe(s.value + 1n);
        t.locateData(s.value);
      }
    }
    t.describe(elf.entry);
    void t.size;
  });
  // The streamed first lookup reads the tables from the file a chunk at a time.
  stage(() => void SymbolTable.inFile(elf).lookup('main'));
  if (withDwarf) exerciseDwarf(elf, tally);
  else tally.endCase();
}

describe('fuzz: ELF reader and symbol table on mutated real executables', function () {
  this.timeout(600_000);
  let corpus: Compiled[] = [];
  let dir: string;

  before(function () {
    try {
      corpus = compileCorpus();
    } catch (e) {
      requireOrSkip(this, false, `gcc could not build the fuzz corpus: ${(e as Error).message}`);
    }
    requireOrSkip(this, corpus.length > 0, 'no C compiler for the fuzz corpus (apt-get install gcc)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-fuzz-elf-'));
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it(`whole files, mutated anywhere, from memory and from disk: ${runsFor(3)} cases`, function () {
    const arb = fc.nat(corpus.length - 1).chain((i) => fc.tuple(fc.constant(i), mutations(corpus[i].bytes.length), fc.nat(7)));
    let n = 0;
    fuzz({ parser: 'elf', property: 'mutated file', runs: runsFor(3) }, arb, ([i, ms, via], tally) => {
      const bytes = mutate(corpus[i].bytes, ms);
      const name = `${corpus[i].file} (mutated)`;
      let elf: ElfFile;
      // One case in eight goes through a real file, as a session opens a vmlinux.
      const file = via === 0 ? path.join(dir, `case-${n++}`) : undefined;
      try {
        if (file) fs.writeFileSync(file, bytes);
        elf = file ? ElfFile.open(file) : ElfFile.fromBuffer(name, bytes);
      } catch (e) {
        tally.error(e, (x) => (x instanceof ElfError && x.message.startsWith(file ?? name) ? undefined : 'not an ElfError naming the file'));
        if (file) fs.rmSync(file);
        return;
      }
      try {
        exerciseElf(elf, tally, via < 2);
      } finally {
        elf.close();
        if (file) fs.rmSync(file);
      }
    });
  });

  it(`the section header table and the symbol tables, targeted: ${runsFor(3)} cases`, function () {
    // Mutations aimed where the reader trusts the file most: the table that says where
    // everything is, and the entries and names of .symtab/.strtab.
    const arb = fc.nat(corpus.length - 1).chain((i) => {
      const b = corpus[i].bytes;
      const shoff = Number(b.readBigUInt64LE(40));
      const regions: Array<[number, number]> = [
        [0, 64],
        [shoff, b.length],
      ];
      const elf = ElfFile.fromBuffer(corpus[i].file, b);
      for (const s of elf.sections) if (s.name === '.symtab' || s.name === '.strtab') regions.push([s.offset, s.offset + s.size]);
      return fc.nat(regions.length - 1).chain((r) => mutations(b.length, regions[r], 3).map((ms) => ({ i, ms })));
    });
    fuzz({ parser: 'elf', property: 'mutated headers and symbol tables', runs: runsFor(3) }, arb, ({ i, ms }, tally) => {
      const name = `${corpus[i].file} (mutated headers)`;
      let elf: ElfFile;
      try {
        elf = ElfFile.fromBuffer(name, mutate(corpus[i].bytes, ms));
      } catch (e) {
        tally.error(e, (x) => (x instanceof ElfError && x.message.startsWith(name) ? undefined : 'not an ElfError naming the file'));
        return;
      }
      exerciseElf(elf, tally, false);
    });
  });

  it('hand-made hostile files fail with an ElfError naming the file, or read what is there', function () {
    const base = corpus[0];
    const { machine, sections } = corpusSections(base);
    const good = buildElf(machine, sections);
    const shoff = Number(good.readBigUInt64LE(40));
    const shnum = good.readUInt16LE(60);
    const edit = (f: (b: Buffer) => void): Buffer => {
      const b = Buffer.from(good);
      f(b);
      return b;
    };
    const secIndex = (name: string): number => ['', '.shstrtab', ...sections.filter((s) => s.name !== '.shstrtab').map((s) => s.name)].indexOf(name);
    const shdr = (name: string, field: number): number => shoff + 64 * secIndex(name) + field;
    const cases: Array<[string, Buffer]> = [
      ['empty file', Buffer.alloc(0)],
      ['only the magic', Buffer.from([0x7f, 0x45, 0x4c, 0x46])],
      ['a 32-bit ELF', edit((b) => (b[4] = 1))],
      ['big-endian', edit((b) => (b[5] = 2))],
      ['header cut at 40 bytes', good.subarray(0, 40)],
      ['section headers past the end', edit((b) => b.writeBigUInt64LE(BigInt(b.length), 40))],
      ['section header offset 2^64-1', edit((b) => b.writeBigUInt64LE(0xffffffffffffffffn, 40))],
      ['section header entry size 0', edit((b) => b.writeUInt16LE(0, 58))],
      ['65535 section headers', edit((b) => b.writeUInt16LE(0xffff, 60))],
      ['no section headers', edit((b) => b.writeUInt16LE(0, 60))],
      ['name table index out of range', edit((b) => b.writeUInt16LE(shnum + 5, 62))],
      ['name table of 2^63 bytes', edit((b) => b.writeBigUInt64LE(1n << 63n, shoff + 64 + 32))],
      ['name table past the end', edit((b) => b.writeBigUInt64LE(BigInt(b.length), shoff + 64 + 24))],
      ['names at offsets past the name table', edit((b) => b.writeUInt32LE(0xfffffff0, shdr('.symtab', 0)))],
      ['.symtab of 2^64-1 bytes', edit((b) => b.writeBigUInt64LE(0xffffffffffffffffn, shdr('.symtab', 32)))],
      ['.symtab size no multiple of 24', edit((b) => b.writeBigUInt64LE(b.readBigUInt64LE(shdr('.symtab', 32)) - 7n, shdr('.symtab', 32)))],
      ['.symtab linking a missing string table', edit((b) => b.writeUInt32LE(0xffff, shdr('.symtab', 40)))],
      ['.strtab as SHT_NOBITS of 2^62 bytes', edit((b) => {
        b.writeUInt32LE(SHT_NOBITS, shdr('.strtab', 4));
        b.writeBigUInt64LE(1n << 62n, shdr('.strtab', 32));
      })],
      ['.debug_info past the end of the file', edit((b) => b.writeBigUInt64LE(BigInt(b.length - 8), shdr('.debug_info', 24)))],
      ['.debug_info offset 2^60', edit((b) => b.writeBigUInt64LE(1n << 60n, shdr('.debug_info', 24)))],
      ['.debug_info as SHT_NOBITS', edit((b) => b.writeUInt32LE(SHT_NOBITS, shdr('.debug_info', 4)))],
      ['.debug_info compressed', edit((b) => b.writeBigUInt64LE(0x800n, shdr('.debug_info', 8)))],
      ['.symtab entry with name offset 2^32-1', edit((b) => {
        const symtab = Number(b.readBigUInt64LE(shdr('.symtab', 24)));
        b.set(le(0xffffffff, 4), symtab + 24);
      })],
    ];
    const tally = new Tally();
    for (const [what, bytes] of cases) {
      const name = `hostile: ${what}`;
      hostile(tally, what, () => {
        const elf = ElfFile.fromBuffer(name, bytes);
        const inner = new Tally();
        exerciseElf(elf, inner, true);
        for (const [k, v] of inner.errors) tally.errors.set(k, (tally.errors.get(k) ?? 0) + v);
      }, (e) => (e instanceof ElfError && e.message.startsWith(name) ? undefined : 'not an ElfError naming the file'));
    }
    record('elf', 'hand-made hostile files', cases.length, tally, 0);
    assert.equal(tally.ok + tally.typed, cases.length);
  });
});
