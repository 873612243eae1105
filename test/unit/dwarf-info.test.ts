/**
 * .debug_info units, DIEs, inlined-call chains and line lookups on the real sample vmlinux,
 * with binutils' addr2line (-f -i: function names through inlined calls) as the oracle,
 * and corrupt unit bytes that must fail with a DwarfError, never hang.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { SourceInfo } from '../../src/engine/sourceinfo';
import { SourceMapper } from '../../src/engine/sourcemap';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { DwarfError } from '../../src/symbols/dwarf/reader';
import { DwarfSections } from '../../src/symbols/dwarf/sections';
import { parseUnitDies, readUnitHeader } from '../../src/symbols/dwarf/unit';
import { infoOffset } from '../../src/symbols/dwarf/offsets';
import { ElfFile } from '../../src/symbols/elf';
import { SymbolTable } from '../../src/symbols/symtab';
import { sampleGuest } from '../support/env';
import { nmAddress } from '../support/oracle';

interface Frame {
  fn: string;
  file: string;
  line: number;
}

/** addr2line -f -i prints, innermost first, "function" then "file:line" for each frame. */
function addr2line(vmlinux: string, addrs: bigint[]): Frame[][] {
  const out = execFileSync('addr2line', ['-f', '-i', '-a', '-e', vmlinux, ...addrs.map((a) => '0x' + a.toString(16))], { encoding: 'utf8' });
  const groups: Frame[][] = [];
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (/^0x[0-9a-f]+$/.test(lines[i])) {
      groups.push([]);
      continue;
    }
    const m = /^(.*):(\d+|\?)(?: \(discriminator \d+\))?$/.exec(lines[i + 1] ?? '');
    if (lines[i] && m && groups.length) {
      groups[groups.length - 1].push({ fn: lines[i], file: m[1], line: m[2] === '?' ? 0 : Number(m[2]) });
      i++;
    }
  }
  return groups;
}

describe('symbols/dwarf: units, DIEs and inlined frames on the sample vmlinux', function () {
  this.timeout(60_000);
  let elf: ElfFile;
  let dwarf: Dwarf;
  let info: SourceInfo;
  let vmlinux: string;

  before(function () {
    const g = sampleGuest(this);
    vmlinux = g.vmlinux;
    elf = ElfFile.open(vmlinux);
    dwarf = Dwarf.open(elf) as Dwarf;
    info = new SourceInfo(SymbolTable.fromElf(elf), dwarf, new SourceMapper({ localRoots: [g.source] }));
  });
  after(() => elf?.close());

  it('finds kernel_clone\'s unit through .debug_aranges, and reads its name and comp_dir', () => {
    const cu = dwarf.unitForAddress(nmAddress(vmlinux, 'kernel_clone'));
    assert.ok(cu);
    assert.equal(cu.name, 'kernel/fork.c');
    assert.ok(cu.compDir.length > 0);
    assert.equal(cu.header.version, 5);
  });

  it('hops through every unit header; the count equals readelf\'s compilation units', () => {
    const readelf = execFileSync('sh', ['-c', `readelf --debug-dump=info '${vmlinux}' | grep -c 'Compilation Unit @'`], { encoding: 'utf8', maxBuffer: 1 << 20 });
    assert.equal(dwarf.unitHeaders().length, Number(readelf.trim()));
  });

  it('expands inlined calls at 300 addresses of copy_process exactly as addr2line -i does', () => {
    const start = nmAddress(vmlinux, 'copy_process');
    const addrs = Array.from({ length: 300 }, (_, i) => start + BigInt(i * 7));
    const oracle = addr2line(vmlinux, addrs);
    assert.equal(oracle.length, addrs.length);
    let inlinedSeen = 0;
    addrs.forEach((a, i) => {
      const ours = info.describe(a, false).map((f) => ({ fn: f.name, file: f.location?.path ?? '', line: f.location?.line ?? 0 }));
      const want = oracle[i];
      // addr2line shows every inlined call containing the PC, even one entered at this very
      // address, which a debugger shows as the call site instead (see visibleChain).
      const atEntry = want.length - ours.length;
      assert.ok(atEntry >= 0, `0x${a.toString(16)}: ours ${JSON.stringify(ours)} vs ${JSON.stringify(want)}`);
      const tail = want.slice(atEntry);
      tail.forEach((w, k) => {
        assert.equal(ours[k].fn, w.fn, `0x${a.toString(16)} frame ${k}`);
        if (k > 0 || atEntry === 0) {
          if (ours[k].line !== w.line || ours[k].file !== path.posix.normalize(w.file)) {
            // addr2line takes the last row at an address; gdb and we prefer a statement row
            // there. Accept only that difference: addr2line's line is a non-statement row at
            // the same address as the statement row we chose.
            const here = info.lineAt(a);
            const cu = dwarf.unitForAddress(a);
            const rows = cu ? (dwarf.lineIndex(cu)?.spans ?? []) : [];
            const nonStmt = rows.some((r) => r.row.address === here?.start && r.row.line === w.line && !r.row.isStmt && path.posix.normalize(r.file?.path ?? '') === path.posix.normalize(w.file));
            assert.ok(k === 0 && here?.isStmt && nonStmt, `0x${a.toString(16)} frame ${k}: ${ours[k].file}:${ours[k].line} vs ${w.file}:${w.line}`);
          }
        }
      });
      if (ours.length > 1) inlinedSeen++;
    });
    assert.ok(inlinedSeen > 10, `copy_process has inlined code (${inlinedSeen} addresses)`);
  });

  it('gives a static function that exists in several units a location in each', () => {
    // Find a local function name defined more than once, as nm lists it.
    const nm = execFileSync('nm', [vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const counts = new Map<string, number>();
    for (const m of nm.matchAll(/^[0-9a-f]{16} t (\w+)$/gm)) counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
    const [name, n] = [...counts].find(([, c]) => c >= 2) ?? ['', 0];
    assert.ok(name, 'the sample has a duplicated static function');
    const locs = info.functionEntries(name);
    assert.ok(locs.length >= n, `${name}: ${locs.length} locations, nm has ${n}`);
  });

  it('rejects truncated and corrupt unit bytes with a DwarfError, quickly', () => {
    const cu = dwarf.unitForAddress(nmAddress(vmlinux, 'kernel_clone'));
    assert.ok(cu);
    const sec = elf.section('.debug_info');
    assert.ok(sec);
    const real = elf.read(sec.offset + cu.offset, Math.min(cu.header.end - cu.offset, 4096));
    const cases: Buffer[] = [];
    for (const cut of [3, 6, 11, 12, 13, 20, 40, 200]) cases.push(real.subarray(0, cut));
    const badVersion = Buffer.from(real);
    badVersion.writeUInt16LE(9, 4);
    const badAbbrevCode = Buffer.from(real);
    badAbbrevCode[12] = 0x7f;
    cases.push(badVersion, badAbbrevCode);
    for (const bytes of cases) {
      const fakeElf = {
        path: 'corrupt',
        section: (name: string) => (name === '.debug_info' ? { ...sec, offset: 0, size: bytes.length } : elf.section(name)),
        read: (off: number, len: number) => (off + len <= bytes.length && off >= 0 && off < sec.offset ? bytes.subarray(off, off + len) : elf.read(off, len)),
      };
      const sections = new DwarfSections(fakeElf as unknown as ElfFile);
      const t0 = Date.now();
      assert.throws(
        () => {
          const h = readUnitHeader(sections, infoOffset(0));
          parseUnitDies(sections, h, undefined);
        },
        (e: unknown) => e instanceof DwarfError && /\.debug_(info|abbrev)/.test(e.message),
      );
      assert.ok(Date.now() - t0 < 1000);
    }
  });
});
