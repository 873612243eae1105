/**
 * A fast pass over one unit's DIEs that builds no tree. It decodes only the attributes the
 * function index needs and skips every other attribute by its form, so the whole .debug_info
 * of a distribution vmlinux (about 170 MB) can go through it in the background indexer.
 */
import { parseAbbrevTable, type Abbrev } from './abbrev';
import { DW_AT, DW_TAG } from './constants';
import type { CompileUnit } from './cu';
import { infoOffset } from './offsets';
import { readForm, skipForm, type AttrValue, type Die } from './unit';

/** A piece of code DWARF names: an inlined call, or an out-of-line copy (`foo.isra.0` too). */
export interface CodeCopy {
  /** The function's source name (from the DIE or its abstract origin). */
  name: string;
  /** Where gdb puts a breakpoint for this copy: its block's entry (low_pc, else first range). */
  entry: bigint;
  inlined: boolean;
}

/** For each abbreviation: which attributes to decode, or -1 when the DIE is skipped whole. */
interface Plan {
  abbrev: Abbrev;
  /** Indexes into abbrev.attrs that are decoded; the others are skipped. */
  wanted: Set<number>;
}

const SUBPROGRAM_ATTRS = new Set<number>([DW_AT.name, DW_AT.abstract_origin, DW_AT.specification, DW_AT.low_pc, DW_AT.high_pc, DW_AT.ranges]);
const INLINED_ATTRS = new Set<number>([DW_AT.abstract_origin, DW_AT.low_pc, DW_AT.high_pc, DW_AT.ranges]);
const VARIABLE_ATTRS = new Set<number>([DW_AT.name, DW_AT.specification, DW_AT.location, DW_AT.const_value, DW_AT.declaration]);
const TYPE_ATTRS = new Set<number>([DW_AT.name, DW_AT.declaration]);

/** Type DIEs a cast or sizeof can name, keyed the way C spells them. */
export const TYPE_PREFIX: ReadonlyMap<number, string> = new Map<number, string>([
  [DW_TAG.structure_type, 'struct '],
  [DW_TAG.union_type, 'union '],
  [DW_TAG.enumeration_type, 'enum '],
  [DW_TAG.typedef, ''],
  [DW_TAG.base_type, ''],
]);

/** Names a unit defines at its top level: global and static variables, and named types. */
export interface UnitNames {
  copies: CodeCopy[];
  /** Variable name → the DIE that gives its location (a definition, not an extern declaration). */
  variables: Array<{ name: string; offset: number }>;
  /**
   * `extern` declarations with no location: a symbol the linker script defines (init_stack,
   * __per_cpu_start) has its type only here and its address only in the ELF symbol table.
   */
  declarations: Array<{ name: string; offset: number }>;
  /**
   * `struct task_struct`, `u64`, `enum pid_type` → a complete definition; also
   * `enumerator SYSTEM_RUNNING` → the enum type that defines that constant.
   */
  types: Array<{ key: string; offset: number }>;
}

function plan(abbrev: Abbrev): Plan {
  const interesting =
    abbrev.tag === DW_TAG.subprogram
      ? SUBPROGRAM_ATTRS
      : abbrev.tag === DW_TAG.inlined_subroutine
        ? INLINED_ATTRS
        : abbrev.tag === DW_TAG.variable
          ? VARIABLE_ATTRS
          : TYPE_PREFIX.has(abbrev.tag) || abbrev.tag === DW_TAG.enumerator
            ? TYPE_ATTRS
            : undefined;
  const wanted = new Set<number>();
  if (interesting) abbrev.attrs.forEach((a, i) => interesting.has(a.name) && wanted.add(i));
  return { abbrev, wanted };
}

/**
 * Every inlined call and every concrete function in a unit, with the function's source name
 * and entry address. gdb's `break NAME` covers both; the ELF symbol table misses inlined
 * calls and names compiler clones differently (`mm_init.constprop.0.isra.0`).
 */
export function unitCodeCopies(cu: CompileUnit): CodeCopy[] {
  return unitNames(cu).copies;
}

/** One pass over a unit's DIEs for the function index and the global-name index. */
export function unitNames(cu: CompileUnit): UnitNames {
  const h = cu.header;
  const variables: UnitNames['variables'] = [];
  const declarations: UnitNames['declarations'] = [];
  const types: UnitNames['types'] = [];
  const varNames = new Map<number, AttrValue>();
  const varDefs: Array<{ at: number; name: AttrValue | undefined; spec: number | undefined }> = [];
  let depth = 0;
  /** The top-level enum whose enumerators are being read, while inside it. */
  let openEnum: number | undefined;
  const plans = new Map<number, Plan>();
  for (const [code, a] of parseAbbrevTable(cu.sections, h.abbrevOffset)) plans.set(code, plan(a));
  const r = cu.sections.require('.debug_info').reader(h.firstDie, h.end - h.firstDie);
  const names = new Map<number, AttrValue>();
  const refs = new Map<number, number>();
  const calls: Array<{ origin: number; die: Die; inlined: boolean }> = [];
  while (!r.atEnd()) {
    const at = r.offset;
    const code = r.uleb();
    if (code === 0) {
      depth--;
      continue;
    }
    const p = plans.get(code);
    if (!p) return r.fail(`DIE uses abbreviation code ${code}, which the unit's table lacks`, r.pos - 1);
    const attrs = p.abbrev.attrs;
    const myDepth = depth;
    if (p.abbrev.hasChildren) depth++;
    if (p.wanted.size === 0) {
      for (const a of attrs) skipForm(r, a.form, h);
      continue;
    }
    const values = new Map<number, AttrValue>();
    for (let i = 0; i < attrs.length; i++) {
      if (p.wanted.has(i)) values.set(attrs[i].name, readForm(r, attrs[i].form, attrs[i].implicitConst, h));
      else skipForm(r, attrs[i].form, h);
    }
    const tag = p.abbrev.tag;
    // Depth 1 is the unit's top level: function-local statics are found through their scope.
    if (tag === DW_TAG.variable) {
      if (myDepth !== 1) continue;
      const name = values.get(DW_AT.name);
      if (name) varNames.set(at, name);
      const spec = values.get(DW_AT.specification);
      if (values.has(DW_AT.location) || values.has(DW_AT.const_value)) varDefs.push({ at, name, spec: spec?.kind === 'ref' ? spec.value : undefined });
      else if (name && values.has(DW_AT.declaration)) {
        const n = cu.str(name);
        if (n) declarations.push({ name: n, offset: at });
      }
      continue;
    }
    if (tag === DW_TAG.enumerator) {
      const name = values.get(DW_AT.name);
      const n = openEnum !== undefined && myDepth === 2 && name ? cu.str(name) : undefined;
      if (n && openEnum !== undefined) types.push({ key: `enumerator ${n}`, offset: openEnum });
      continue;
    }
    const prefix = TYPE_PREFIX.get(tag);
    if (prefix !== undefined) {
      const name = values.get(DW_AT.name);
      if (myDepth === 1) openEnum = tag === DW_TAG.enumeration_type && p.abbrev.hasChildren ? at : undefined;
      if (myDepth === 1 && name && !values.has(DW_AT.declaration)) {
        const n = cu.str(name);
        if (n) types.push({ key: prefix + n, offset: at });
      }
      continue;
    }
    const origin = values.get(DW_AT.abstract_origin) ?? values.get(DW_AT.specification);
    const ref = origin?.kind === 'ref' ? origin.value : undefined;
    const inlined = p.abbrev.tag === DW_TAG.inlined_subroutine;
    if (!inlined) {
      const name = values.get(DW_AT.name);
      if (name) names.set(at, name);
      else if (ref !== undefined) refs.set(at, ref);
    }
    const hasCode = values.has(DW_AT.low_pc) || values.has(DW_AT.ranges);
    const self = names.has(at) ? at : ref;
    if (hasCode && self !== undefined) {
      calls.push({ origin: self, inlined, die: { offset: infoOffset(at), tag: p.abbrev.tag, attrs: values, hasChildren: false, children: [], parent: undefined } });
    }
  }
  const out: CodeCopy[] = [];
  const nameCache = new Map<number, string | undefined>();
  for (const c of calls) {
    let o: number | undefined = c.origin;
    // An origin can be a concrete out-of-line copy pointing at the abstract one, or a
    // declaration: follow a few hops (the origin may come later in the unit, hence after the walk).
    for (let hop = 0; hop < 4 && o !== undefined && !names.has(o); hop++) o = refs.get(o);
    if (o === undefined || !names.has(o)) continue;
    let name = nameCache.get(o);
    if (!nameCache.has(o)) nameCache.set(o, (name = cu.str(names.get(o))));
    const entry = cu.blockEntry(c.die);
    if (name && entry !== undefined) out.push({ name, entry, inlined: c.inlined });
  }
  for (const v of varDefs) {
    const n = v.name ?? (v.spec !== undefined ? varNames.get(v.spec) : undefined);
    const name = n && cu.str(n);
    if (name) variables.push({ name, offset: v.at });
  }
  return { copies: out, variables, declarations, types };
}
