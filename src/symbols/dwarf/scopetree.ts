/**
 * Every scope of a unit that can hold code (functions, inlined calls, blocks) as a tree, in
 * one pass over its DIEs, for the code map (src/symbols/codemap/), which answers pcScopes'
 * question for every address of a vmlinux at once. The walk is pcScopes' own, DIE for DIE:
 * what it jumps over (a DIE with DW_AT_sibling that cannot hold the address) is marked
 * `skippable` here, and chainAt replays its choices, so both give the same chain at any pc
 * (test/integration/codemap.test.ts checks that on thousands of addresses).
 */
import { DW_AT, DW_TAG } from './constants';
import { rangesContain, type CompileUnit } from './cu';
import { infoOffset } from './offsets';
import { readCodeless, readScope, SCOPES, skipAttributes, skipPlan, startWalk, type SkipPlan } from './pcscan';
import type { Range } from './ranges';
import type { Die } from './unit';

export interface ScopeNode {
  die: Die;
  tag: number;
  ranges: readonly Range[];
  /** pcScopes jumps over this scope's body when the scope does not hold the address. */
  skippable: boolean;
  /** The scopes pcScopes can reach inside this one, in DIE order (codeless ones left out, their insides kept). */
  children: ScopeNode[];
  /** The source name, from the DIE or its origins in this unit, as pcScopes resolves it. */
  name: string | undefined;
}

export interface UnitScopes {
  /** The scopes at the top of the walk, in DIE order. */
  roots: ScopeNode[];
  /** The functions a chain can start with, in DIE order (see chainAt). */
  functions: ScopeNode[];
}

export function unitScopes(cu: CompileUnit): UnitScopes {
  const { h, abbrevs, r, names, origins } = startWalk(cu);
  const roots: ScopeNode[] = [];
  /** Scopes whose children are being read, with the depth of those children. */
  const open: Array<{ node: ScopeNode; inner: number }> = [];
  const plans: Array<SkipPlan | undefined> = [];
  const all: ScopeNode[] = [];
  let depth = 0;
  const jump = (to: number | undefined, at: number, withChildren: boolean): boolean => {
    if (!withChildren || to === undefined || to <= at) return false;
    r.pos = to - r.base;
    depth--;
    return true;
  };
  while (!r.atEnd()) {
    const at = r.offset;
    const code = r.uleb();
    if (code === 0) {
      depth--;
      while (open.length && depth < open[open.length - 1].inner) open.pop();
      continue;
    }
    const a = abbrevs.get(code);
    if (!a) return r.fail(`DIE uses abbreviation code ${code}, which the unit's table lacks`, r.pos - 1);
    const myDepth = depth;
    if (a.hasChildren) depth++;
    const pl = plans[code] ?? (plans[code] = skipPlan(a, h));
    if (!SCOPES.has(a.tag)) {
      jump(skipAttributes(r, a, pl, h), at, true);
      continue;
    }
    if (pl.codeless && pl.fixed !== undefined) {
      jump(readCodeless(r, pl, h, at, names, origins), at, true);
      continue;
    }
    const values = readScope(r, a, h, at, names, origins);
    const parent = open[open.length - 1];
    const die: Die = { offset: infoOffset(at), tag: a.tag, attrs: values, hasChildren: a.hasChildren, children: [], parent: parent?.node.die };
    const ranges = values.has(DW_AT.low_pc) || values.has(DW_AT.ranges) ? cu.ranges(die) : [];
    const sib = values.get(DW_AT.sibling);
    const sibling = sib?.kind === 'ref' ? sib.value : undefined;
    const skippable = a.hasChildren && sibling !== undefined && sibling > at;
    // No code of its own: it never holds an address, so only what pcScopes reads inside it counts.
    if (!ranges.length) {
      jump(sibling, at, a.hasChildren);
      continue;
    }
    const node: ScopeNode = { die, tag: a.tag, ranges, skippable, children: [], name: undefined };
    all.push(node);
    (parent ? parent.node.children : roots).push(node);
    if (a.hasChildren) open.push({ node, inner: myDepth + 1 });
  }
  for (const n of all) {
    let cur: number | undefined = n.die.offset;
    for (let hop = 0; hop < 4 && cur !== undefined && !names.has(cur); hop++) cur = origins.get(cur);
    n.name = cur !== undefined ? cu.str(names.get(cur)) : undefined;
  }
  const functions: ScopeNode[] = [];
  const visit = (list: readonly ScopeNode[]): void => {
    for (const n of list) {
      if (n.tag === DW_TAG.subprogram) functions.push(n);
      if (!n.skippable) visit(n.children);
    }
  };
  visit(roots);
  return { roots, functions };
}

/**
 * The scopes holding pc below `fn` (a function holding it), outermost first, as pcScopes
 * finds them: at each level the first scope in DIE order that holds pc, looking inside the
 * ones it does not jump over.
 */
export function chainBelow(fn: ScopeNode, pc: bigint): ScopeNode[] {
  const chain = [fn];
  for (let cur: ScopeNode | undefined = fn; cur; ) {
    cur = firstHolding(cur.children, pc);
    if (cur) chain.push(cur);
  }
  return chain;
}

function firstHolding(list: readonly ScopeNode[], pc: bigint): ScopeNode | undefined {
  for (const n of list) {
    if (rangesContain(n.ranges, pc)) return n;
    if (!n.skippable) {
      const inner = firstHolding(n.children, pc);
      if (inner) return inner;
    }
  }
  return undefined;
}
