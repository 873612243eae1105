/**
 * Runs every DWARF parser over one ELF image, the way a debugging session reaches them: unit
 * headers, DIE trees, the scan for the function index, scopes, variables and their location
 * lists, types, line tables (full and one-pass), the file index, aranges and call frame
 * information. Each parser is its own stage (see Tally.stage), and work per image is capped,
 * so a case costs milliseconds whatever the mutation did to the counts in the bytes.
 */
import { CallFrameInfo, type FrameSectionName } from '../../src/symbols/dwarf/frame';
import { DW_AT, DW_FORM } from '../../src/symbols/dwarf/constants';
import { CompileUnit } from '../../src/symbols/dwarf/cu';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { describeExpression } from '../../src/symbols/dwarf/expr';
import { lineFileNames, lineHeaders } from '../../src/symbols/dwarf/line';
import { lineOffset } from '../../src/symbols/dwarf/offsets';
import { DwarfError } from '../../src/symbols/dwarf/reader';
import { unitNames } from '../../src/symbols/dwarf/scan';
import { callSite, declLine, functionName, innermostBlock, scopeChain, unitFunctions } from '../../src/symbols/dwarf/scopes';
import { sizeOf, strip, TypeReader, typeName, type CType } from '../../src/symbols/dwarf/types';
import type { Die } from '../../src/symbols/dwarf/unit';
import { frameVariables, locationAt, unitVariables } from '../../src/symbols/dwarf/variables';
import { ElfError, type ElfFile } from '../../src/symbols/elf';
import type { Tally } from './fuzzkit';

const MAX_UNITS = 48;
const MAX_DIES = 400;
const MAX_PCS = 12;
const MAX_FDES = 48;

/**
 * What a parser of this file may fail with: a DwarfError naming the section and offset, and
 * the file when the section came from one; or an ElfError naming the file.
 */
export function dwarfCheck(file: string): (e: unknown) => string | undefined {
  return (e) => {
    if (e instanceof DwarfError) {
      if (!e.message.includes(e.section) || !/ at 0x[0-9a-f]+: /.test(e.message)) return 'a DwarfError that does not name its section and offset';
      if (e.section.startsWith('.') && e.file !== file) return `a DwarfError in ${e.section} that does not name the file`;
      if (!Number.isSafeInteger(e.offset) || e.offset < 0) return `a DwarfError at offset ${e.offset}`;
      return undefined;
    }
    if (e instanceof ElfError) return e.message.startsWith(file) ? undefined : 'an ElfError that does not name the file';
    return 'not a typed parser error (crash)';
  };
}

/** Walks a type graph a little way, as the Variables view would, through lazy getters. */
function touchType(t: CType, budget: { n: number }): void {
  typeName(t);
  sizeOf(t);
  let cur: CType = t;
  for (let depth = 0; depth < 8 && budget.n-- > 0; depth++) {
    const s = strip(cur);
    if (s.kind === 'pointer') cur = s.target;
    else if (s.kind === 'array') cur = s.element;
    else if (s.kind === 'struct' || s.kind === 'union') {
      for (const m of s.members.slice(0, 8)) typeName(m.type);
      return;
    } else if (s.kind === 'function') {
      typeName(s.returns);
      for (const p of s.params.slice(0, 4)) typeName(p);
      return;
    } else return;
  }
}

function* walkDies(root: Die): Generator<Die> {
  const stack = [root];
  for (let d = stack.pop(); d; d = stack.pop()) {
    yield d;
    for (let i = d.children.length - 1; i >= 0; i--) stack.push(d.children[i]);
  }
}

/** Runs the parsers; returns nothing, counts into `tally` (one case). */
export function exerciseDwarf(elf: ElfFile, tally: Tally, onError?: (e: unknown) => void, extra?: (d: Dwarf) => void): void {
  const typed = dwarfCheck(elf.path);
  const check = (e: unknown): string | undefined => {
    onError?.(e);
    return typed(e);
  };
  const stage = (run: () => void): void => tally.stage(run, check);
  let dwarf: Dwarf | undefined;
  const pcs: bigint[] = [];
  stage(() => {
    dwarf = Dwarf.open(elf);
  });
  const d = dwarf;
  if (d) {
    const units: CompileUnit[] = [];
    stage(() => {
      for (const h of d.unitHeaders().slice(0, MAX_UNITS)) {
        stage(() => {
          units.push(d.unit(h.offset));
        });
      }
    });
    const types = new TypeReader(d);
    for (const cu of units) {
      stage(() => void (cu.name + cu.compDir + String(cu.stmtList) + String(cu.isCompileUnit)));
      stage(() => {
        let n = 0;
        const budget = { n: MAX_DIES };
        for (const die of walkDies(cu.dies())) {
          if (n++ >= MAX_DIES) break;
          cu.dieAt(die.offset);
          for (const v of die.attrs.values()) if (v.kind === 'block') describeExpression(v.value, cu.header.addressSize === 4 ? 4 : 8);
          if (die.attrs.has(DW_AT.type)) stage(() => touchType(types.typeOf(cu, die), budget));
        }
      });
      stage(() => void unitNames(cu));
      stage(() => {
        for (const f of unitFunctions(cu).slice(0, MAX_PCS)) {
          const pc = f.low;
          if (pcs.length < MAX_PCS) pcs.push(pc, pc + 1n);
          stage(() => {
            functionName(d, cu, f.die);
            declLine(d, cu, f.die);
            cu.entry(f.die);
          });
          stage(() => {
            const chain = scopeChain(cu, pc + 1n);
            innermostBlock(cu, pc + 1n);
            for (const s of chain.slice(1)) callSite(d, cu, s);
            const scope = chain[chain.length - 1] ?? f.die;
            const vars = frameVariables(d, cu, scope, pc + 1n);
            for (const v of [...vars.params, ...vars.locals].slice(0, 16)) stage(() => void locationAt(v.cu, v.die, pc + 1n));
          });
        }
      });
      stage(() => {
        for (const v of unitVariables(d, cu).slice(0, 16)) stage(() => void locationAt(v.cu, v.die, 0n));
      });
      stage(() => {
        const idx = d.lineIndex(cu);
        for (const pc of pcs) {
          idx?.lookup(pc);
          idx?.lineRange(pc);
        }
        idx?.filesMatching((f) => f.name.endsWith('.c'));
      });
      for (const pc of pcs.slice(0, 4)) stage(() => void d.spanAt(cu, pc));
    }
    stage(() => {
      let n = 0;
      for (const h of lineHeaders(d.sections)) {
        if (n++ >= MAX_UNITS) break;
        stage(() => void lineFileNames(d.sections, lineOffset(h.offset)));
      }
    });
    stage(() => void d.unitsNaming('prog.c'));
    for (const pc of pcs.slice(0, 5)) stage(() => void d.unitForAddress(pc));
    stage(() => {
      d.indexAddresses();
      for (const pc of pcs) d.unitForAddress(pc);
    });
  }
  for (const which of ['.debug_frame', '.eh_frame'] as FrameSectionName[]) {
    stage(() => {
      const cfi = new CallFrameInfo(d?.sections ?? { get: () => undefined }, 8, which);
      if (!cfi.sectionName) return;
      const fdes = cfi.fdes();
      for (const fde of fdes.slice(0, MAX_FDES)) {
        stage(() => {
          cfi.table(fde);
          cfi.rowAt(fde.start);
          cfi.rowAt(fde.end - 1n);
        });
      }
      for (const pc of pcs) stage(() => void cfi.rowAt(pc));
    });
  }
  if (d && extra) stage(() => extra(d));
  tally.endCase();
}

/** The forms a hand-made unit below uses, with their sizes. */
export const FORM_SIZE = new Map<number, number>([
  [DW_FORM.data1, 1],
  [DW_FORM.data4, 4],
  [DW_FORM.ref4, 4],
  [DW_FORM.addr, 8],
]);
