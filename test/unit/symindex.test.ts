/**
 * The whole-file indexes on the real sample vmlinux: the fast paths checked against the
 * general parsers (themselves golden-tested against readelf), function locations against
 * gdb's `break NAME` on the same file, and the worker against the in-thread builder.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { SourceInfo } from '../../src/engine/sourceinfo';
import { SourceMapper } from '../../src/engine/sourcemap';
import { CompileUnit } from '../../src/symbols/dwarf/cu';
import { parseAbbrevTable } from '../../src/symbols/dwarf/abbrev';
import { DW_AT, DW_TAG } from '../../src/symbols/dwarf/constants';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { FileNameScanner } from '../../src/symbols/dwarf/filenames';
import { lineFileNames } from '../../src/symbols/dwarf/line';
import { lineOffset } from '../../src/symbols/dwarf/offsets';
import { functionName } from '../../src/symbols/dwarf/scopes';
import { unitCodeCopies } from '../../src/symbols/dwarf/scan';
import { attrNumber, parseUnitDies, rootStmtList, type Die } from '../../src/symbols/dwarf/unit';
import { ElfFile } from '../../src/symbols/elf';
import { packAddress, unpackAddress } from '../../src/symbols/index/builder';
import { LocalIndex, WorkerIndex, workerFile } from '../../src/symbols/index/client';
import { SymbolTable } from '../../src/symbols/symtab';
import { requireOrSkip, sampleGuest } from '../support/env';
import { gdbBreakLocations } from '../support/gdb';
import * as fs from 'node:fs';

const hex = (a: bigint): string => '0x' + a.toString(16);

describe('symbols/index on the sample vmlinux', function () {
  this.timeout(120_000);
  let elf: ElfFile;
  let dwarf: Dwarf;
  let vmlinux: string;

  before(function () {
    const g = sampleGuest(this);
    vmlinux = g.vmlinux;
    elf = ElfFile.open(vmlinux);
    dwarf = Dwarf.open(elf) as Dwarf;
  });
  after(() => elf?.close());

  it('reads every root\'s stmt_list from its one abbreviation as the full root parse does', () => {
    const abbrevs = dwarf.sections.require('.debug_abbrev').all();
    let n = 0;
    for (const h of dwarf.unitHeaders()) {
      const full = attrNumber(parseUnitDies(dwarf.sections, h, parseAbbrevTable(dwarf.sections, h.abbrevOffset), { rootOnly: true }), DW_AT.stmt_list);
      assert.equal(rootStmtList(dwarf.sections, h, abbrevs), full, `unit 0x${h.offset.toString(16)}`);
      assert.equal(rootStmtList(dwarf.sections, h), full);
      n++;
    }
    assert.ok(n > 900);
  });

  it('reads every unit\'s root DIE from its one abbreviation exactly as with the unit\'s whole table', () => {
    let n = 0;
    for (const h of dwarf.unitHeaders()) {
      const full = parseUnitDies(dwarf.sections, h, parseAbbrevTable(dwarf.sections, h.abbrevOffset), { rootOnly: true });
      const root = new CompileUnit(dwarf.sections, h).root;
      assert.ok(root.attrs.size > 0);
      assert.deepEqual({ ...root, parent: undefined }, { ...full, parent: undefined }, `unit 0x${h.offset.toString(16)}`);
      n++;
    }
    assert.ok(n > 900);
  });

  it('lists every line table\'s file base names exactly as the general header parser does', () => {
    const scanner = new FileNameScanner(dwarf.sections);
    let fast = 0;
    for (const h of dwarf.unitHeaders()) {
      const stmt = rootStmtList(dwarf.sections, h);
      if (stmt === undefined) continue;
      const ours: string[] = [];
      if (!scanner.scan(stmt, (b) => ours.push(b))) continue;
      fast++;
      const want = lineFileNames(dwarf.sections, lineOffset(stmt)).names.map((n) => n.slice(n.lastIndexOf('/') + 1));
      assert.deepEqual(ours, want, `line table at 0x${stmt.toString(16)}`);
    }
    // The sample is DWARF 5 from GCC: every table takes the fast path.
    assert.equal(fast, dwarf.unitHeaders().length);
  });

  it('finds the same inlined calls with the fast scan as with the full DIE tree, in kernel/fork.c and init/main.c', () => {
    for (const fn of ['kernel_clone', 'start_kernel']) {
      const addr = SymbolTable.fromElf(elf).lookup(fn).find((x) => x.type === 'func')?.value;
      assert.ok(addr, fn);
      const cu = dwarf.unitForAddress(addr);
      assert.ok(cu);
      const tree: string[] = [];
      const walk = (d: Die): void => {
        for (const c of d.children) {
          if (c.tag === DW_TAG.inlined_subroutine) {
            const e = cu.blockEntry(c);
            if (e !== undefined) tree.push(`${functionName(dwarf, cu, c)}@${hex(e)}`);
          }
          if (c.hasChildren) walk(c);
        }
      };
      walk(cu.dies());
      const fast = unitCodeCopies(cu)
        .filter((c) => c.inlined)
        .map((c) => `${c.name}@${hex(c.entry)}`);
      assert.ok(tree.length > 50, `${fn}'s unit has inlined calls (${tree.length})`);
      assert.deepEqual(fast.sort(), tree.sort());
    }
  });

  it('gives functions the locations gdb\'s `break NAME` gives: inlined copies, compiler clones, statics', function () {
    // Names across the index: inline-only functions, clones (foo.isra.0), and plain ones.
    const picks = ['mm_init', 'dup_mm', 'copy_process', 'kernel_clone', 'do_one_initcall', 'pid_nr_ns'];
    const names = execFileSync('nm', [vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 });
    for (const m of names.matchAll(/^[0-9a-f]{16} t (\w+)\.(?:isra|constprop)\.0$/gm)) {
      if (picks.length >= 14) break;
      if (!picks.includes(m[1])) picks.push(m[1]);
    }
    const gdb = gdbBreakLocations(vmlinux, picks);
    const info = new SourceInfo(SymbolTable.fromElf(elf), dwarf, new SourceMapper({ localRoots: [] }), new LocalIndex(dwarf));
    return (async () => {
      let multi = 0;
      for (const name of picks) {
        const ours = (await info.functionLocations(name)).map((l) => hex(l.address)).sort();
        assert.deepEqual(ours, gdb.get(name)?.sort(), name);
        if (ours.length > 1) multi++;
      }
      assert.ok(multi >= 2, 'some picked functions have several locations');
    })();
  });

  it('answers from the worker thread exactly as from this thread', async function () {
    requireOrSkip(this, fs.existsSync(workerFile()), `the worker file ${workerFile()} was not built`);
    const worker = new WorkerIndex(vmlinux);
    const local = new LocalIndex(dwarf);
    try {
      for (const base of ['fork.c', 'main.c', 'current.h', 'no-such-file.c']) assert.deepEqual(await worker.unitsNaming(base), await local.unitsNaming(base), base);
      assert.ok((await worker.unitsNaming('fork.c')).length >= 1);
      const stats = await worker.buildFunctions();
      assert.ok(stats.codeCopies > 50_000 && stats.errors.length === 0, JSON.stringify(stats));
      assert.ok(worker.functionsReady);
      for (const name of ['mm_init', 'get_current', 'kernel_clone']) assert.deepEqual(await worker.codeEntries(name), await local.codeEntries(name), name);
    } finally {
      await worker.close();
    }
  });

  it('reports a worker that cannot open the file instead of hanging', async () => {
    const worker = new WorkerIndex('/nonexistent/vmlinux');
    try {
      await assert.rejects(worker.unitsNaming('fork.c'), /cannot open/);
    } finally {
      await worker.close();
    }
  });

  it('packs canonical kernel addresses into doubles exactly and refuses others', () => {
    for (const a of [0xffffffff810429d8n, 0xffff800008000000n, 0xffffffff80000000n, 0x1000n, 0n]) assert.equal(unpackAddress(packAddress(a)), a);
    assert.throws(() => packAddress(0x8000000000000000n), /not canonical/);
  });
});
