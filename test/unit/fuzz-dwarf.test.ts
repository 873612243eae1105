/**
 * Fuzzing every DWARF section parser from real bytes: programs gcc compiles here in each
 * DWARF flavour (2-5, 64-bit, .debug_frame and .eh_frame, x86_64/aarch64/riscv64) have one
 * section at a time truncated, bit-flipped, overwritten with hostile lengths, spliced, and
 * every parser is run over the result. Each case must end in a result or a DwarfError naming
 * the file, section and offset, within the per-case time bound.
 */
import * as assert from 'node:assert/strict';
import * as fc from 'fast-check';
import { ElfFile } from '../../src/symbols/elf';
import { buildElf, compileCorpus, corpusSections, withSection, type Compiled, type Section } from './fuzzcorpus';
import { exerciseDwarf } from './fuzzdwarf';
import { fuzz, mutate, mutations, runsFor, Tally } from './fuzzkit';
import { requireOrSkip } from '../support/env';

interface Input {
  compiled: Compiled;
  machine: number;
  sections: Section[];
}

/** The sections a debugger reads, each fuzzed as its own property; weights keep the suite's time flat. */
const TARGETS: Array<[section: string, weight: number]> = [
  ['.debug_info', 1.5],
  ['.debug_abbrev', 1.5],
  ['.debug_line', 1.5],
  ['.debug_str', 0.5],
  ['.debug_line_str', 0.5],
  ['.debug_rnglists', 0.5],
  ['.debug_ranges', 0.5],
  ['.debug_loclists', 1],
  ['.debug_loc', 1],
  ['.debug_aranges', 0.5],
  ['.debug_addr', 0.3],
  ['.debug_str_offsets', 0.3],
  ['.debug_frame', 1.5],
  ['.eh_frame', 1.5],
];

describe('fuzz: DWARF section parsers on mutated real sections', function () {
  this.timeout(600_000);
  let inputs: Input[] = [];

  before(function () {
    let corpus: Compiled[] = [];
    try {
      corpus = compileCorpus();
    } catch (e) {
      requireOrSkip(this, false, `gcc could not build the fuzz corpus: ${(e as Error).message}`);
    }
    requireOrSkip(this, corpus.length > 0, 'no C compiler for the fuzz corpus (apt-get install gcc)');
    inputs = corpus.map((compiled) => ({ compiled, ...corpusSections(compiled) }));
  });

  it('parses every unmutated flavour without an error (so mutations start from working input)', function () {
    for (const inp of inputs) {
      const tally = new Tally();
      const elf = ElfFile.fromBuffer(inp.compiled.file, buildElf(inp.machine, inp.sections));
      exerciseDwarf(elf, tally, (e) => process.stderr.write(`      ${inp.compiled.flavour.name}: ${(e as Error).message}\n`));
      assert.equal(tally.typed, 0, `${inp.compiled.flavour.name}: ${tally.summary()}`);
    }
  });

  for (const [name, weight] of TARGETS) {
    it(`${name}: ${runsFor(weight)} mutated cases`, function () {
      const have = inputs.filter((i) => i.sections.some((s) => s.name === name && s.data.length > 0));
      if (!have.length) {
        process.stderr.write(`      fuzz ${name}: no flavour of the corpus has this section\n`);
        return;
      }
      const arb = fc.nat(have.length - 1).chain((i) => {
        const len = (have[i].sections.find((s) => s.name === name) as Section).data.length;
        return mutations(len).map((ms) => ({ i, ms }));
      });
      fuzz({ parser: `dwarf ${name}`, property: 'mutated section', runs: runsFor(weight) }, arb, ({ i, ms }, tally) => {
        const inp = have[i];
        const base = (inp.sections.find((s) => s.name === name) as Section).data;
        const image = buildElf(inp.machine, withSection(inp.sections, name, mutate(base, ms)));
        exerciseDwarf(ElfFile.fromBuffer(`${inp.compiled.file} (mutated ${name})`, image), tally);
      });
    });
  }

  it(`two sections at once (a unit and its abbreviations, a line table and its strings): ${runsFor(1)} cases`, function () {
    const pairs: Array<[string, string]> = [
      ['.debug_info', '.debug_abbrev'],
      ['.debug_line', '.debug_line_str'],
      ['.debug_info', '.debug_loclists'],
      ['.debug_info', '.debug_rnglists'],
    ];
    const arb = fc.nat(inputs.length - 1).chain((i) =>
      fc.nat(pairs.length - 1).chain((p) => {
        const lens = pairs[p].map((n) => inputs[i].sections.find((s) => s.name === n)?.data.length ?? 0);
        return fc.tuple(mutations(Math.max(1, lens[0]), undefined, 2), mutations(Math.max(1, lens[1]), undefined, 2)).map(([a, b]) => ({ i, p, a, b }));
      }),
    );
    fuzz({ parser: 'dwarf (two sections)', property: 'mutated pair', runs: runsFor(1) }, arb, ({ i, p, a, b }, tally) => {
      const inp = inputs[i];
      let secs = inp.sections;
      for (const [name, ms] of [
        [pairs[p][0], a],
        [pairs[p][1], b],
      ] as const) {
        const s = secs.find((x) => x.name === name);
        if (s) secs = withSection(secs, name, mutate(s.data, ms));
      }
      exerciseDwarf(ElfFile.fromBuffer(`${inp.compiled.file} (mutated pair)`, buildElf(inp.machine, secs)), tally);
    });
  });
});
