/**
 * Fuzzing with the sample vmlinux's own bytes, the largest and most varied DWARF the parsers
 * meet: kernel/fork.c's unit (kernel_clone's) with its line table, and the start of
 * .debug_frame. Slices are taken once and rebuilt into small images around each mutation, so
 * a case costs milliseconds, not a 100 MB read. Skipped (with a line saying so) when the
 * sample guest is not built: the gcc corpus suites cover the same parsers without it.
 */
import { cachedGuest } from '../../src/guest/build';
import { CallFrameInfo, type FrameSectionSource } from '../../src/symbols/dwarf/frame';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { lineFileNames, lineHeaders, parseLineTable } from '../../src/symbols/dwarf/line';
import { LineIndex, lineSpanAt } from '../../src/symbols/dwarf/lineindex';
import { lineOffset } from '../../src/symbols/dwarf/offsets';
import { DwarfSections } from '../../src/symbols/dwarf/sections';
import { ElfFile } from '../../src/symbols/elf';
import { nmAddress } from '../support/oracle';
import { buildElf, withSection, type Section } from './fuzzcorpus';
import { dwarfCheck, exerciseDwarf } from './fuzzdwarf';
import { fuzz, mutate, mutations, runsFor } from './fuzzkit';

const sec = (name: string, data: Buffer, addr = 0n): Section => ({ name, type: 1, flags: 0n, addr, link: undefined, data, size: data.length });

describe('fuzz: DWARF parsers on mutated slices of the sample vmlinux', function () {
  this.timeout(600_000);
  let info: Section[] | undefined;
  let line: Section[] | undefined;
  let frame: Buffer | undefined;
  let pcs: bigint[] = [];

  before(function () {
    const g = cachedGuest('x86_64');
    if (!g) {
      process.stderr.write('      fuzz vmlinux: the x86_64 sample guest is not built; these properties run nothing\n');
      return;
    }
    const elf = ElfFile.open(g.vmlinux);
    try {
      const d = Dwarf.open(elf);
      const pc = nmAddress(g.vmlinux, 'kernel_clone');
      const cu = d?.unitForAddress(pc);
      if (!d || !cu) return;
      pcs = [pc, pc + 0x10n, pc + 0x40n];
      const whole = (name: string): Buffer => d.sections.get(name)?.all() ?? Buffer.alloc(0);
      // The unit moves to offset 0; every section it points into is kept whole, at its own offsets.
      const unit = Buffer.from(d.sections.require('.debug_info').bytes(cu.offset, cu.header.end - cu.offset));
      info = [sec('.debug_info', unit), ...['.debug_abbrev', '.debug_str', '.debug_line_str', '.debug_line', '.debug_loclists', '.debug_rnglists'].map((n) => sec(n, whole(n)))];
      // The unit's line table moves to offset 0 of a .debug_line of its own.
      const stmt = cu.stmtList ?? 0;
      const h = [...lineHeaders(d.sections)].find((x) => x.offset === stmt);
      if (h) line = [sec('.debug_line', Buffer.from(d.sections.require('.debug_line').bytes(stmt, h.unitEnd - stmt))), sec('.debug_line_str', whole('.debug_line_str')), sec('.debug_str', whole('.debug_str'))];
      // The start of .debug_frame, cut at an entry boundary: CIE pointers are section offsets, so they stay right.
      const all = whole('.debug_frame');
      let end = 0;
      while (end + 4 <= all.length && end < 48 * 1024) end += 4 + all.readUInt32LE(end);
      frame = all.subarray(0, Math.min(end, all.length));
    } finally {
      elf.close();
    }
  });

  it(`kernel/fork.c's unit, mutated, with the sections it points into: ${runsFor(0.3)} cases`, function () {
    const base = info;
    if (!base) return;
    const unit = base[0].data;
    fuzz({ parser: 'dwarf .debug_info (vmlinux)', property: 'mutated kernel unit', runs: runsFor(0.3) }, mutations(unit.length), (ms, tally) => {
      const image = buildElf(62, withSection(base, '.debug_info', mutate(unit, ms)));
      exerciseDwarf(ElfFile.fromBuffer('vmlinux (fork.c unit, mutated)', image), tally);
    });
  });

  it(`kernel/fork.c's line table, mutated: ${runsFor(2)} cases`, function () {
    const base = line;
    if (!base) return;
    const table = base[0].data;
    fuzz({ parser: 'dwarf .debug_line (vmlinux)', property: 'mutated kernel line table', runs: runsFor(2) }, mutations(table.length), (ms, tally) => {
      const elf = ElfFile.fromBuffer('vmlinux (fork.c line table, mutated)', buildElf(62, withSection(base, '.debug_line', mutate(table, ms))));
      const s = new DwarfSections(elf);
      const check = dwarfCheck(elf.path);
      tally.stage(() => {
        const idx = new LineIndex(parseLineTable(s, lineOffset(0), '/src', 8));
        for (const pc of pcs) idx.lookup(pc);
      }, check);
      for (const pc of pcs) tally.stage(() => void lineSpanAt(s, lineOffset(0), '/src', 8, pc), check);
      tally.stage(() => {
        for (const h of lineHeaders(s)) lineFileNames(s, lineOffset(h.offset));
      }, check);
      tally.endCase();
    });
  });

  it(`the start of .debug_frame, mutated: ${runsFor(2)} cases`, function () {
    const base = frame;
    if (!base) return;
    fuzz({ parser: 'dwarf .debug_frame (vmlinux)', property: 'mutated kernel CFI', runs: runsFor(2) }, mutations(base.length, undefined, 6), (ms, tally) => {
      const bytes = mutate(base, ms);
      const source: FrameSectionSource = { get: (n) => (n === '.debug_frame' ? { name: n, size: bytes.length, info: { addr: 0n }, file: 'vmlinux (.debug_frame, mutated)', all: () => bytes } : undefined) };
      const cfi = new CallFrameInfo(source, 8);
      const check = dwarfCheck('vmlinux (.debug_frame, mutated)');
      tally.stage(() => {
        for (const fde of cfi.fdes().slice(0, 64)) tally.stage(() => void cfi.table(fde), check);
      }, check);
      for (const pc of pcs) tally.stage(() => void cfi.rowAt(pc), check);
      tally.endCase();
    });
  });
});

