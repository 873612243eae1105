/**
 * Functions and inlined calls at an address. A PC inside inlined code belongs to a chain of
 * scopes: the concrete function, then each DW_TAG_inlined_subroutine nested in it. Each link
 * of the chain becomes its own stack frame, the way gdb shows inlined calls.
 */
import { DW_AT, DW_TAG } from './constants';
import { rangesContain, type CompileUnit } from './cu';
import type { Dwarf } from './dwarf';
import { lineFile } from './line';
import type { Range } from './ranges';
import { attrNumber, attrRef, type Die } from './unit';

interface FunctionSpan {
  die: Die;
  ranges: readonly Range[];
  low: bigint;
}

const spansByUnit = new WeakMap<CompileUnit, FunctionSpan[]>();

/** Concrete functions of a unit (those with code), sorted by lowest address. */
export function unitFunctions(cu: CompileUnit): FunctionSpan[] {
  let spans = spansByUnit.get(cu);
  if (!spans) {
    spans = [];
    // Depth first in DIE order, with an explicit stack: corrupt DWARF can nest DIEs deeper
    // than the JS call stack goes.
    const stack: Array<{ die: Die; next: number }> = [{ die: cu.dies(), next: 0 }];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const c = top.die.children[top.next++];
      if (!c) {
        stack.pop();
      } else if (c.tag === DW_TAG.subprogram) {
        const ranges = cu.ranges(c);
        if (ranges.length) spans.push({ die: c, ranges, low: ranges.reduce((m, r) => (r[0] < m ? r[0] : m), ranges[0][0]) });
      } else if (c.hasChildren && c.tag !== DW_TAG.structure_type && c.tag !== DW_TAG.union_type) {
        stack.push({ die: c, next: 0 });
      }
    }
    spans.sort((a, b) => (a.low < b.low ? -1 : a.low > b.low ? 1 : 0));
    spansByUnit.set(cu, spans);
  }
  return spans;
}

/** Follow abstract_origin / specification to the DIE that carries the name and declaration. */
export function originOf(dwarf: Dwarf, cu: CompileUnit, die: Die): { cu: CompileUnit; die: Die } {
  let cur = { cu, die };
  for (let hops = 0; hops < 8; hops++) {
    const ref = attrRef(cur.die, DW_AT.abstract_origin) ?? attrRef(cur.die, DW_AT.specification);
    if (ref === undefined) break;
    const ucu = cur.cu.contains(ref) ? cur.cu : dwarf.unitContaining(ref);
    const target = ucu?.dieAt(ref);
    if (!ucu || !target) break;
    cur = { cu: ucu, die: target };
  }
  return cur;
}

export function functionName(dwarf: Dwarf, cu: CompileUnit, die: Die): string {
  const own = cu.string(die, DW_AT.name);
  if (own) return own;
  const o = originOf(dwarf, cu, die);
  return o.cu.string(o.die, DW_AT.name) ?? o.cu.string(o.die, DW_AT.linkage_name) ?? '??';
}

/** The concrete function containing pc, then each inlined call containing it, outermost first. */
export function scopeChain(cu: CompileUnit, pc: bigint): Die[] {
  const spans = unitFunctions(cu);
  let lo = 0;
  let hi = spans.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (spans[mid].low <= pc) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  let fn: FunctionSpan | undefined;
  // Functions split into hot/cold parts make the "last low <= pc" guess wrong; scan back.
  for (let i = found; i >= 0 && i >= found - 64; i--) {
    if (rangesContain(spans[i].ranges, pc)) {
      fn = spans[i];
      break;
    }
  }
  if (!fn) fn = spans.find((s) => rangesContain(s.ranges, pc));
  if (!fn) return [];
  const chain: Die[] = [fn.die];
  let scope = fn.die;
  for (;;) {
    let next: Die | undefined;
    for (const c of scope.children) {
      if ((c.tag === DW_TAG.inlined_subroutine || c.tag === DW_TAG.lexical_block) && rangesContain(cu.ranges(c), pc)) {
        next = c;
        break;
      }
    }
    if (!next) break;
    if (next.tag === DW_TAG.inlined_subroutine) chain.push(next);
    scope = next;
  }
  return chain;
}

/** The innermost block (lexical block, inlined call or function) containing pc. */
export function innermostBlock(cu: CompileUnit, pc: bigint): Die | undefined {
  const chain = scopeChain(cu, pc);
  if (!chain.length) return undefined;
  let scope = chain[chain.length - 1];
  for (;;) {
    const next = scope.children.find((c) => (c.tag === DW_TAG.lexical_block || c.tag === DW_TAG.inlined_subroutine) && rangesContain(cu.ranges(c), pc));
    if (!next) return scope;
    scope = next;
  }
}

export interface CallSite {
  file: string | undefined;
  line: number;
  column: number;
}

/** Where an inlined call was made, from its call_file/call_line/call_column. */
export function callSite(dwarf: Dwarf, cu: CompileUnit, die: Die): CallSite {
  const fileIndex = attrNumber(die, DW_AT.call_file);
  const idx = dwarf.lineIndex(cu);
  const f = fileIndex !== undefined && idx ? lineFile(idx.table.header, fileIndex) : undefined;
  return { file: f?.path, line: attrNumber(die, DW_AT.call_line) ?? 0, column: attrNumber(die, DW_AT.call_column) ?? 0 };
}

/** Declaration line of a function (for the "opening line" gdb's prologue analysis compares). */
export function declLine(dwarf: Dwarf, cu: CompileUnit, die: Die): number | undefined {
  const o = originOf(dwarf, cu, die);
  return attrNumber(die, DW_AT.decl_line) ?? attrNumber(o.die, DW_AT.decl_line);
}
