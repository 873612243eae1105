/**
 * The one-off lookups a cold `qkd where` makes, against the indexes the debugger builds: the
 * one-pass line lookup (lineSpanAt, Dwarf.spanAt) against the line index (itself checked row
 * for row against readelf), for addresses at, inside, between and past the rows of real
 * units of the sample vmlinux; and the .debug_aranges scan against the sorted arange index.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { parseLineTable } from '../../src/symbols/dwarf/line';
import { LineIndex, lineSpanAt, type LineSpan } from '../../src/symbols/dwarf/lineindex';
import { lineOffset } from '../../src/symbols/dwarf/offsets';
import { ArangeIndex } from '../../src/symbols/dwarf/ranges';
import { ElfFile } from '../../src/symbols/elf';
import { SymbolTable } from '../../src/symbols/symtab';
import { sampleGuest } from '../support/env';

const plain = (s: LineSpan | undefined | null): unknown => (s ? { ...s.row, end: s.end, file: s.file?.path } : s);

describe('symbols/dwarf: the one-off lookups of a cold start, on the sample vmlinux', function () {
  this.timeout(120_000);
  let elf: ElfFile;
  let dwarf: Dwarf;
  let symbols: SymbolTable;

  before(function () {
    const g = sampleGuest(this);
    elf = ElfFile.open(g.vmlinux);
    dwarf = Dwarf.open(elf) as Dwarf;
    symbols = SymbolTable.fromElf(elf);
  });
  after(() => elf?.close());

  const unitOf = (fn: string) => {
    const addr = symbols.lookup(fn).find((s) => s.value !== 0n)?.value;
    assert.ok(addr, fn);
    const cu = dwarf.unitForAddress(addr);
    assert.ok(cu, `a unit for ${fn}`);
    return cu;
  };

  // C with inlining (fork.c, memory.c), early boot code (head64.c) and assembly (head_64.S).
  for (const fn of ['kernel_clone', 'handle_mm_fault', 'x86_64_start_kernel', 'secondary_startup_64']) {
    it(`finds what the built index finds in the unit of ${fn}, at every kind of address`, () => {
      const cu = unitOf(fn);
      const stmt = cu.stmtList;
      assert.ok(stmt !== undefined);
      const table = parseLineTable(dwarf.sections, lineOffset(stmt), cu.compDir, cu.header.addressSize);
      const index = new LineIndex(table);
      const pcs = new Set<bigint>([0n, 1n, (1n << 64n) - 1n]);
      const rows = table.rows;
      const every = Math.max(1, Math.floor(rows.length / 300));
      for (let i = 0; i < rows.length; i += every) for (const d of [-1n, 0n, 1n, 3n]) pcs.add(rows[i].address + d);
      let found = 0;
      for (const pc of pcs) {
        const want = index.lookup(pc);
        const got = lineSpanAt(dwarf.sections, lineOffset(stmt), cu.compDir, cu.header.addressSize, pc);
        assert.notEqual(got, null, `0x${pc.toString(16)} needed the index`);
        assert.deepEqual(plain(got), plain(want), `0x${pc.toString(16)}`);
        if (want) found++;
      }
      assert.ok(found > pcs.size / 2, `${found} of ${pcs.size} addresses have a line`);
    });
  }

  it('answers from the unit\'s index once it is built, and the same either way', () => {
    const cu = unitOf('kernel_clone');
    const pc = symbols.lookup('kernel_clone')[0].value;
    const fresh = Dwarf.open(elf) as Dwarf;
    const before = fresh.spanAt(fresh.unit(cu.offset), pc);
    const index = fresh.lineIndex(fresh.unit(cu.offset));
    assert.ok(index && before);
    assert.equal(fresh.spanAt(fresh.unit(cu.offset), pc), index.lookup(pc));
    assert.deepEqual(plain(before), plain(index.lookup(pc)));
    assert.ok(before.row.line > 0 && before.file?.path.endsWith('kernel/fork.c'));
  });

  it('finds the unit of an address by scanning .debug_aranges as the sorted index does', () => {
    const index = ArangeIndex.read(dwarf.sections);
    // The fast reader (typed arrays straight from the bytes) and the general one agree.
    const general = ArangeIndex.readGeneral(dwarf.sections);
    assert.ok(index.size > 1000);
    assert.equal(index.size, general.size);
    const text = execFileSync('nm', [elf.path], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .filter((l) => / [Tt] /.test(l))
      .map((l) => BigInt('0x' + l.slice(0, 16)));
    const pcs = [0n, (1n << 64n) - 1n, ...text.filter((_, i) => i % 40 === 0).flatMap((a) => [a - 1n, a, a + 1n, a + 0x40n])];
    let found = 0;
    for (const pc of pcs) {
      const want = index.unitFor(pc);
      assert.equal(ArangeIndex.scan(dwarf.sections, pc), want, `0x${pc.toString(16)}`);
      assert.equal(general.unitFor(pc), want, `0x${pc.toString(16)}`);
      if (want !== undefined) found++;
    }
    assert.ok(pcs.length > 1000 && found > pcs.length / 2, `${found} of ${pcs.length} addresses in a unit`);
  });
});
