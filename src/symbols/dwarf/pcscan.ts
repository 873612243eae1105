/**
 * The function and inlined calls at one address, found in one pass over a unit's DIEs that
 * builds no tree: a function whose ranges miss the address is skipped whole through its
 * DW_AT_sibling, and only the attributes that place and name code are decoded. This is what a
 * cold one-off lookup needs (decoding an Oops: a few addresses in as many units), where
 * scopeChain's full tree of a large unit costs tens of milliseconds.
 */
import { parseAbbrevTable, type Abbrev } from './abbrev';
import { DW_AT, DW_FORM, DW_TAG } from './constants';
import type { CompileUnit } from './cu';
import { infoOffset } from './offsets';
import type { ByteReader } from './reader';
import { readForm, skipForm, type AttrValue, type Die } from './unit';

export const SCOPES = new Set<number>([DW_TAG.subprogram, DW_TAG.inlined_subroutine, DW_TAG.lexical_block]);
export const WANTED = new Set<number>([DW_AT.name, DW_AT.linkage_name, DW_AT.abstract_origin, DW_AT.specification, DW_AT.low_pc, DW_AT.high_pc, DW_AT.ranges, DW_AT.call_file, DW_AT.call_line, DW_AT.call_column, DW_AT.sibling]);

/** Each unit's abbreviations, parsed once: a log's frames often share units. */
const ABBREVS = new WeakMap<CompileUnit, Map<number, Abbrev>>();

export interface PcScope {
  die: Die;
  /** The function's source name, from the DIE or its origin in the same unit; undefined when the origin is elsewhere. */
  name: string | undefined;
}

/** A walk over a unit's DIEs from its first: its header, abbreviations (parsed once per unit), a reader, and the names and origins it notes. */
export function startWalk(cu: CompileUnit): { h: CompileUnit['header']; abbrevs: Map<number, Abbrev>; r: ByteReader; names: Map<number, AttrValue>; origins: Map<number, number> } {
  const h = cu.header;
  let abbrevs = ABBREVS.get(cu);
  if (!abbrevs) ABBREVS.set(cu, (abbrevs = new Map<number, Abbrev>(parseAbbrevTable(cu.sections, h.abbrevOffset))));
  const r = cu.sections.require('.debug_info').reader(h.firstDie, h.end - h.firstDie);
  return { h, abbrevs, r, names: new Map<number, AttrValue>(), origins: new Map<number, number>() };
}

/** The concrete function holding pc, then each inlined call holding it, outermost first (as scopeChain). */
export function pcScopes(cu: CompileUnit, pc: bigint): PcScope[] {
  const { h, abbrevs, r, names, origins } = startWalk(cu);
  /** The scopes holding pc, with the depth of their children. */
  const open: Array<{ die: Die; inner: number }> = [];
  const plans: Array<SkipPlan | undefined> = [];
  let depth = 0;
  while (!r.atEnd()) {
    const at = r.offset;
    const code = r.uleb();
    if (code === 0) {
      depth--;
      // The function holding pc has ended: every scope inside it has been seen.
      if (open.length && depth < open[0].inner) break;
      continue;
    }
    const a = abbrevs.get(code);
    if (!a) return r.fail(`DIE uses abbreviation code ${code}, which the unit's table lacks`, r.pos - 1);
    const myDepth = depth;
    if (a.hasChildren) depth++;
    if (!SCOPES.has(a.tag)) {
      // A type, a variable, …: its children (a struct's members) hold no code; jump past them.
      const sibling = skipAttributes(r, a, plans[code] ?? (plans[code] = skipPlan(a, h)), h);
      if (sibling !== undefined && sibling > at) {
        r.pos = sibling - r.base;
        depth--;
      }
      continue;
    }
    // A declaration or an abstract function (no code of its own) cannot hold pc: only its
    // name and origin matter, read in place when its attributes have fixed sizes.
    const pl = plans[code] ?? (plans[code] = skipPlan(a, h));
    if (pl.codeless && pl.fixed !== undefined) {
      const sibling = readCodeless(r, pl, h, at, names, origins);
      if (sibling !== undefined && sibling > at) {
        r.pos = sibling - r.base;
        depth--;
      }
      continue;
    }
    const values = readScope(r, a, h, at, names, origins);
    const die: Die = { offset: infoOffset(at), tag: a.tag, attrs: values, hasChildren: a.hasChildren, children: [], parent: open[open.length - 1]?.die };
    // Only a scope nested in the ones found so far can hold pc too.
    const nested = open.length === 0 ? a.tag === DW_TAG.subprogram : myDepth >= open[open.length - 1].inner;
    const holds = nested && (values.has(DW_AT.low_pc) || values.has(DW_AT.ranges)) && cu.ranges(die).some(([lo, hi]) => pc >= lo && pc < hi);
    if (holds) {
      open.push({ die, inner: myDepth + 1 });
      continue;
    }
    // A function or block elsewhere: jump over its body (an abstract function has no code, but
    // its children name the parameters that inlined copies refer to; they are not needed here).
    const sibling = values.get(DW_AT.sibling);
    if (a.hasChildren && sibling?.kind === 'ref' && sibling.value > at) {
      r.pos = sibling.value - r.base;
      depth--;
    }
  }
  // An inlined call's abstract function may come after the function that holds pc: read on,
  // past everything but the names of the unit's top-level functions, until every one is known.
  const unresolved = (): boolean => open.some((o) => o.die.tag !== DW_TAG.lexical_block && !nameOf(o.die.offset));
  const nameOf = (off: number): AttrValue | undefined => {
    let cur: number | undefined = off;
    for (let hop = 0; hop < 4 && cur !== undefined && !names.has(cur); hop++) cur = origins.get(cur);
    return cur !== undefined ? names.get(cur) : undefined;
  };
  if (open.length && unresolved()) readNames(cu, r, abbrevs, names, origins, unresolved);
  return open
    .filter((o) => o.die.tag !== DW_TAG.lexical_block)
    .map((o) => {
      let cur: number | undefined = o.die.offset;
      for (let hop = 0; hop < 4 && cur !== undefined && !names.has(cur); hop++) cur = origins.get(cur);
      return { die: o.die, name: cur !== undefined ? cu.str(names.get(cur)) : undefined };
    });
}

/** The rest of the unit's top level, for the names (and origins) of its functions, skipping every body. */
function readNames(cu: CompileUnit, r: ByteReader, abbrevs: Map<number, Abbrev>, names: Map<number, AttrValue>, origins: Map<number, number>, unresolved: () => boolean): void {
  const h = cu.header;
  let depth = 1;
  while (!r.atEnd() && depth > 0) {
    const at = r.offset;
    const code = r.uleb();
    if (code === 0) {
      depth--;
      continue;
    }
    const a = abbrevs.get(code);
    if (!a) return;
    if (a.hasChildren) depth++;
    let sibling: AttrValue | undefined;
    for (const x of a.attrs) {
      const keep = x.name === DW_AT.sibling || (a.tag === DW_TAG.subprogram && (x.name === DW_AT.name || x.name === DW_AT.abstract_origin || x.name === DW_AT.specification));
      if (!keep) {
        skipForm(r, x.form, h);
        continue;
      }
      const v = readForm(r, x.form, x.implicitConst, h);
      if (x.name === DW_AT.sibling) sibling = v;
      else if (x.name === DW_AT.name) names.set(at, v);
      else if (v.kind === 'ref') origins.set(at, v.value);
    }
    if (a.tag === DW_TAG.subprogram && !unresolved()) return;
    if (a.hasChildren && sibling?.kind === 'ref' && sibling.value > at) {
      r.pos = sibling.value - r.base;
      depth--;
    }
  }
}

/** Past a DIE's attributes (one that holds no code); its DW_AT_sibling when it has children and one. */
export function skipAttributes(r: ByteReader, a: Abbrev, pl: SkipPlan, h: CompileUnit['header']): number | undefined {
  // Most DIEs have only fixed-size attributes: skipped in one step, the sibling read in place.
  let sibling: number | undefined;
  if (pl.fixed !== undefined) {
    if (pl.siblingAt !== undefined) sibling = h.offset + r.buf.readUInt32LE(r.pos + pl.siblingAt);
    r.skip(pl.fixed);
    return sibling;
  }
  for (const x of a.attrs) {
    if (x.name === DW_AT.sibling && a.hasChildren) {
      const v = readForm(r, x.form, x.implicitConst, h);
      if (v.kind === 'ref') sibling = v.value;
    } else skipForm(r, x.form, h);
  }
  return sibling;
}

/** A scope's attributes that place and name code; its name and origin noted. */
export function readScope(r: ByteReader, a: Abbrev, h: CompileUnit['header'], at: number, names: Map<number, AttrValue>, origins: Map<number, number>): Map<number, AttrValue> {
  const values = new Map<number, AttrValue>();
  for (const x of a.attrs) {
    if (WANTED.has(x.name)) values.set(x.name, readForm(r, x.form, x.implicitConst, h));
    else skipForm(r, x.form, h);
  }
  const name = values.get(DW_AT.name);
  if (name) names.set(at, name);
  const origin = values.get(DW_AT.abstract_origin) ?? values.get(DW_AT.specification);
  if (origin?.kind === 'ref') origins.set(at, origin.value);
  return values;
}

/** A codeless scope with fixed-size attributes: its name and origin noted in place; its DW_AT_sibling. */
export function readCodeless(r: ByteReader, pl: SkipPlan, h: CompileUnit['header'], at: number, names: Map<number, AttrValue>, origins: Map<number, number>): number | undefined {
  if (pl.nameAt !== undefined) names.set(at, { kind: 'strp', value: r.buf.readUInt32LE(r.pos + pl.nameAt), section: '.debug_str' });
  if (pl.originAt !== undefined) origins.set(at, h.offset + r.buf.readUInt32LE(r.pos + pl.originAt));
  const sibling = pl.siblingAt !== undefined ? h.offset + r.buf.readUInt32LE(r.pos + pl.siblingAt) : undefined;
  r.skip(pl.fixed ?? 0);
  return sibling;
}

export interface SkipPlan {
  /** The DIE's attribute bytes when every form has a fixed size. */
  fixed: number | undefined;
  /** Where a DW_FORM_ref4 DW_AT_sibling sits among them, for a DIE with children. */
  siblingAt: number | undefined;
  /** Where a 32-bit DW_FORM_strp DW_AT_name sits, and a DW_FORM_ref4 origin (abstract_origin or specification). */
  nameAt: number | undefined;
  originAt: number | undefined;
  /** No low_pc, high_pc or ranges (the DIE has no code of its own), and its name and origin in the forms above. */
  codeless: boolean;
}

export function skipPlan(a: Abbrev, h: CompileUnit['header']): SkipPlan {
  let at = 0;
  const plan: SkipPlan = { fixed: undefined, siblingAt: undefined, nameAt: undefined, originAt: undefined, codeless: true };
  let fixed = true;
  for (const x of a.attrs) {
    if (x.name === DW_AT.low_pc || x.name === DW_AT.high_pc || x.name === DW_AT.ranges) plan.codeless = false;
    const n = fixedSize(x.form, h);
    if (n === undefined) fixed = false;
    if (!fixed) continue;
    if (x.name === DW_AT.sibling && a.hasChildren && x.form === DW_FORM.ref4) plan.siblingAt = at;
    if (x.name === DW_AT.name && x.form === DW_FORM.strp && h.offsetSize === 4) plan.nameAt = at;
    if ((x.name === DW_AT.abstract_origin || x.name === DW_AT.specification) && x.form === DW_FORM.ref4) plan.originAt = at;
    at += n as number;
  }
  // A name or an origin in another form would be lost: such scopes take the slow path.
  const other = a.attrs.some((x) => (x.name === DW_AT.name && x.form !== DW_FORM.strp) || ((x.name === DW_AT.abstract_origin || x.name === DW_AT.specification) && x.form !== DW_FORM.ref4));
  if (fixed) plan.fixed = at;
  if (other) plan.codeless = false;
  return plan;
}

/** A form's size when it does not depend on the data (skipForm's fixed cases). */
function fixedSize(form: number, h: CompileUnit['header']): number | undefined {
  switch (form) {
    case DW_FORM.flag_present:
    case DW_FORM.implicit_const:
      return 0;
    case DW_FORM.data1:
    case DW_FORM.ref1:
    case DW_FORM.flag:
    case DW_FORM.strx1:
    case DW_FORM.addrx1:
      return 1;
    case DW_FORM.data2:
    case DW_FORM.ref2:
    case DW_FORM.strx2:
    case DW_FORM.addrx2:
      return 2;
    case DW_FORM.strx3:
    case DW_FORM.addrx3:
      return 3;
    case DW_FORM.data4:
    case DW_FORM.ref4:
    case DW_FORM.strx4:
    case DW_FORM.addrx4:
      return 4;
    case DW_FORM.data8:
    case DW_FORM.ref8:
    case DW_FORM.ref_sig8:
      return 8;
    case DW_FORM.data16:
      return 16;
    case DW_FORM.addr:
      return h.addressSize;
    case DW_FORM.strp:
    case DW_FORM.line_strp:
    case DW_FORM.sec_offset:
      return h.offsetSize;
    default:
      return undefined;
  }
}
