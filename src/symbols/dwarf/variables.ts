/**
 * Which variables a frame shows, and where each one lives at a PC. A concrete function or
 * inlined call refers to its abstract instance for names and types; parameters and locals
 * the compiler dropped from the concrete instance are still listed, as gdb lists them, and
 * read as optimized out.
 */
import { DW_AT, DW_TAG } from './constants';
import { rangesContain, type CompileUnit } from './cu';
import type { Dwarf } from './dwarf';
import { expressionAt, locListIndex, readLocListV4, readLocListV5 } from './loclists';
import type { RangeContext } from './ranges';
import { attrNumber, attrRef, type Die } from './unit';

export interface VariableDie {
  cu: CompileUnit;
  /** The DIE that says where the value is (the concrete one when there is one). */
  die: Die;
  /** The DIE with the name and type: `die` itself or its abstract origin. */
  declCu: CompileUnit;
  decl: Die;
  name: string;
  param: boolean;
  /**
   * For an `extern` declaration with no location: the address the ELF symbol table gives,
   * joined to the DWARF type as gdb does (`init_stack`, defined by the linker script).
   */
  address?: bigint;
}

export type LocationAttr =
  | { kind: 'expr'; expr: Buffer }
  | { kind: 'const'; value: bigint; signed: boolean }
  | { kind: 'constBytes'; bytes: Buffer }
  | { kind: 'none'; why: string };

function origin(dwarf: Dwarf, cu: CompileUnit, die: Die): { cu: CompileUnit; die: Die } | undefined {
  const ref = attrRef(die, DW_AT.abstract_origin) ?? attrRef(die, DW_AT.specification);
  if (ref === undefined) return undefined;
  const ucu = cu.contains(ref) ? cu : dwarf.unitContaining(ref);
  const d = ucu?.dieAt(ref);
  return ucu && d ? { cu: ucu, die: d } : undefined;
}

function describe(dwarf: Dwarf, cu: CompileUnit, die: Die, param: boolean): VariableDie | undefined {
  let declCu = cu;
  let decl = die;
  for (let hops = 0; hops < 4 && decl.attrs.get(DW_AT.name) === undefined; hops++) {
    const o = origin(dwarf, declCu, decl);
    if (!o) break;
    declCu = o.cu;
    decl = o.die;
  }
  const name = declCu.string(decl, DW_AT.name);
  if (!name) return undefined;
  return { cu, die, declCu, decl, name, param };
}

/**
 * The variables of one frame's scope DIE (a subprogram or an inlined call) at pc: its
 * parameters in order, and the locals of every block containing pc, innermost block first.
 * Nested inlined calls are their own frames and are not entered.
 */
export function frameVariables(dwarf: Dwarf, cu: CompileUnit, scope: Die, pc: bigint): { params: VariableDie[]; locals: VariableDie[] } {
  const params: VariableDie[] = [];
  const blocks: VariableDie[][] = [];
  const visit = (block: Die, top: boolean): void => {
    const locals: VariableDie[] = [];
    const seen = new Set<number>();
    for (const c of block.children) {
      if (c.tag === DW_TAG.formal_parameter && top) {
        const v = describe(dwarf, cu, c, true);
        if (v) params.push(v);
        const o = attrRef(c, DW_AT.abstract_origin);
        if (o !== undefined) seen.add(o);
      } else if (c.tag === DW_TAG.variable) {
        const v = describe(dwarf, cu, c, false);
        if (v) locals.push(v);
        const o = attrRef(c, DW_AT.abstract_origin);
        if (o !== undefined) seen.add(o);
      }
    }
    // Abstract parameters and locals with no concrete DIE here were optimized away entirely.
    const abs = attrRef(block, DW_AT.abstract_origin);
    const absCu = abs !== undefined ? (cu.contains(abs) ? cu : dwarf.unitContaining(abs)) : undefined;
    const absDie = abs !== undefined ? absCu?.dieAt(abs) : undefined;
    if (absCu && absDie) {
      let paramIndex = 0;
      for (const c of absDie.children) {
        if (seen.has(c.offset)) {
          if (c.tag === DW_TAG.formal_parameter) paramIndex++;
          continue;
        }
        if (c.tag === DW_TAG.formal_parameter && top) {
          const v = describe(dwarf, absCu, c, true);
          if (v) params.splice(paramIndex++, 0, v);
        } else if (c.tag === DW_TAG.variable) {
          const v = describe(dwarf, absCu, c, false);
          if (v) locals.push(v);
        }
      }
    }
    blocks.push(locals);
  };
  // Blocks containing pc, depth first in DIE order, with an explicit stack: corrupt DWARF can
  // nest blocks deeper than the JS call stack goes.
  const stack: Array<{ block: Die; top: boolean }> = [{ block: scope, top: true }];
  for (let next = stack.pop(); next; next = stack.pop()) {
    visit(next.block, next.top);
    const inner = next.block.children.filter((c) => c.tag === DW_TAG.lexical_block && rangesContain(cu.ranges(c), pc));
    for (let i = inner.length - 1; i >= 0; i--) stack.push({ block: inner[i], top: false });
  }
  return { params, locals: blocks.reverse().flat() };
}

/** Names a unit declares `extern` at its top level with no location of its own. */
export function unitDeclarations(dwarf: Dwarf, cu: CompileUnit): VariableDie[] {
  const out: VariableDie[] = [];
  for (const c of cu.dies().children) {
    if (c.tag !== DW_TAG.variable || !c.attrs.has(DW_AT.declaration)) continue;
    if (c.attrs.has(DW_AT.location) || c.attrs.has(DW_AT.const_value)) continue;
    const v = describe(dwarf, cu, c, false);
    if (v) out.push(v);
  }
  return out;
}

/** Variables defined at a unit's top level (its globals and file statics), in DIE order. */
export function unitVariables(dwarf: Dwarf, cu: CompileUnit): VariableDie[] {
  const out: VariableDie[] = [];
  for (const c of cu.dies().children) {
    if (c.tag !== DW_TAG.variable) continue;
    if (!c.attrs.has(DW_AT.location) && !c.attrs.has(DW_AT.const_value)) continue;
    const v = describe(dwarf, cu, c, false);
    if (v) out.push(v);
  }
  return out;
}

/** Where a variable is at pc: a location expression, a constant, or nowhere (optimized out). */
export function locationAt(cu: CompileUnit, die: Die, pc: bigint): LocationAttr {
  const cv = die.attrs.get(DW_AT.const_value);
  if (cv) {
    if (cv.kind === 'udata') return { kind: 'const', value: cv.value, signed: false };
    if (cv.kind === 'sdata') return { kind: 'const', value: cv.value, signed: true };
    if (cv.kind === 'block') return { kind: 'constBytes', bytes: cv.value };
    const s = cu.str(cv);
    if (s !== undefined) return { kind: 'constBytes', bytes: Buffer.from(s + '\0', 'latin1') };
  }
  const loc = die.attrs.get(DW_AT.location);
  if (!loc) return { kind: 'none', why: 'optimized out' };
  if (loc.kind === 'block') return { kind: 'expr', expr: loc.value };
  const ctx: RangeContext = { addressSize: cu.header.addressSize, offsetSize: cu.header.offsetSize, base: cu.baseAddress, addrx: (i) => cu.addrx(i) };
  let list;
  if (cu.header.version >= 5) {
    if (loc.kind === 'listx') {
      const base = attrNumber(cu.root, DW_AT.loclists_base) ?? (cu.header.offsetSize === 8 ? 20 : 12);
      list = readLocListV5(cu.sections, locListIndex(cu.sections, base, loc.value, cu.header.offsetSize), ctx);
    } else if (loc.kind === 'secOffset') list = readLocListV5(cu.sections, loc.value, ctx);
  } else if (loc.kind === 'secOffset' || loc.kind === 'udata') {
    list = readLocListV4(cu.sections, Number(loc.value), ctx);
  }
  if (!list) return { kind: 'none', why: `DW_AT_location has an unexpected form (${loc.kind})` };
  const expr = expressionAt(list, pc);
  return expr ? { kind: 'expr', expr } : { kind: 'none', why: 'optimized out' };
}

/** DW_AT_frame_base of the concrete function holding a frame. */
export function frameBaseExpr(fn: Die): Buffer | undefined {
  const fb = fn.attrs.get(DW_AT.frame_base);
  return fb?.kind === 'block' ? fb.value : undefined;
}
