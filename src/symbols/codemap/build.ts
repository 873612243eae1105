/**
 * Builds a code map (format.ts) from a vmlinux's DWARF: every unit's line table and scope
 * tree, replayed at each address where either changes. The answers are SourceInfo's
 * one-off lookup (describeLink with every call: pcScopes for the chain, the line table's
 * last row at an address, as addr2line takes it), so a map and the DWARF never disagree.
 */
import type { CompileUnit } from '../dwarf/cu';
import { DW_AT, DW_TAG } from '../dwarf/constants';
import type { Dwarf } from '../dwarf/dwarf';
import { lineFile } from '../dwarf/line';
import { LineIndex } from '../dwarf/lineindex';
import { parseLineTable } from '../dwarf/line';
import { infoOffset, lineOffset } from '../dwarf/offsets';
import { ArangeIndex } from '../dwarf/ranges';
import { chainBelow, unitScopes, type ScopeNode } from '../dwarf/scopetree';
import { functionName } from '../dwarf/scopes';
import { attrNumber } from '../dwarf/unit';
import type { ElfSymbol } from '../elf';
import { ASK, BLOCK, FORMAT_VERSION, GAP, HEADER_SIZE, nameHash, NONE, writeHeader } from './format';

export interface CodeMapStats {
  units: number;
  /** Units the map sends back to the DWARF (theirs did not read). */
  unreadable: number;
  records: number;
  answers: number;
  nodes: number;
  bytes: number;
}

class Tables {
  readonly strings = new Map<string, number>();
  readonly nodes: number[] = [];
  private readonly nodeIds = new Map<string, number>();
  readonly answers: number[] = [];
  private readonly answerIds = new Map<string, number>();

  str(s: string | undefined): number {
    if (s === undefined) return NONE;
    let id = this.strings.get(s);
    if (id === undefined) this.strings.set(s, (id = this.strings.size));
    return id;
  }

  node(parent: number, name: number, file: number, line: number, column: number): number {
    const key = `${parent},${name},${file},${line},${column}`;
    let id = this.nodeIds.get(key);
    if (id === undefined) {
      this.nodeIds.set(key, (id = this.nodes.length / 5));
      this.nodes.push(parent, name, file, line, column);
    }
    return id;
  }

  answer(leaf: number, file: number, line: number, column: number): number {
    const key = `${leaf},${file},${line},${column}`;
    let id = this.answerIds.get(key);
    if (id === undefined) {
      this.answerIds.set(key, (id = this.answers.length / 4));
      this.answers.push(leaf, file, line, column);
    }
    return id;
  }
}

/**
 * `symbols`: the file's defined symbols in table order (ElfFile.symbols()); the map keeps,
 * per name, the code symbol SymbolTable.lookup ranks first.
 */
export function buildCodeMap(dwarf: Dwarf, source: { size: number; mtimeMs: number }, symbols: readonly ElfSymbol[]): { bytes: Buffer; stats: CodeMapStats } {
  const aranges = ArangeIndex.read(dwarf.sections);
  const byUnit = new Map<number, Array<[bigint, bigint]>>();
  const edges: bigint[] = [];
  for (const e of aranges.entries()) {
    if (e.end <= e.start) continue;
    let list = byUnit.get(e.unit);
    if (!list) byUnit.set(e.unit, (list = []));
    list.push([e.start, e.end]);
    edges.push(e.start, e.end);
  }
  edges.sort(cmp);
  const t = new Tables();
  const starts: bigint[] = [];
  const answers: number[] = [];
  let unreadable = 0;
  for (const [unit, ranges] of byUnit) {
    const mine = (a: bigint): boolean => aranges.unitFor(a) === unit;
    let cu: CompileUnit;
    let perUnit: Array<[bigint, number]>;
    try {
      cu = dwarf.unit(infoOffset(unit));
      perUnit = unitRecords(dwarf, cu, ranges, edges, mine, t);
    } catch {
      unreadable++;
      perUnit = [];
      for (const [s] of ranges) if (mine(s)) perUnit.push([s, ASK]);
    }
    for (const [a, ans] of perUnit) {
      starts.push(a);
      answers.push(ans);
    }
    // Where this unit's ranges end and no other unit's begins, no unit covers the address.
    for (const [, e] of ranges) if (aranges.unitFor(e) === undefined) {
      starts.push(e);
      answers.push(GAP);
    }
  }
  // Address order; of two records at one address, the later wins (a gap never hides code).
  const order = starts.map((_, i) => i).sort((i, j) => cmp(starts[i], starts[j]) || (answers[i] === GAP ? -1 : 0) - (answers[j] === GAP ? -1 : 0));
  const recStarts: bigint[] = [];
  const recAnswers: number[] = [];
  for (const i of order) {
    const n = recStarts.length;
    if (n && recStarts[n - 1] === starts[i]) {
      if (answers[i] !== GAP) recAnswers[n - 1] = answers[i];
      continue;
    }
    if (n && recAnswers[n - 1] === answers[i]) continue;
    recStarts.push(starts[i]);
    recAnswers.push(answers[i]);
  }
  const bytes = serialize(t, recStarts, recAnswers, codeSymbols(symbols), source);
  return { bytes, stats: { units: byUnit.size, unreadable, records: recStarts.length, answers: t.answers.length / 4, nodes: t.nodes.length / 5, bytes: bytes.length } };
}

/** One unit's records: an answer at each address of its ranges where its line or chain may change. */
function unitRecords(dwarf: Dwarf, cu: CompileUnit, ranges: Array<[bigint, bigint]>, edges: readonly bigint[], mine: (a: bigint) => boolean, t: Tables): Array<[bigint, number]> {
  const stmt = cu.stmtList;
  const lines = stmt === undefined ? undefined : new LineIndex(parseLineTable(dwarf.sections, lineOffset(stmt), cu.compDir, cu.header.addressSize));
  const scopes = unitScopes(cu);
  const inside = (a: bigint): boolean => ranges.some(([s, e]) => a >= s && a < e) && mine(a);
  const points = new Set<bigint>();
  const add = (a: bigint): void => {
    if (inside(a)) points.add(a);
  };
  for (const [s, e] of ranges) {
    add(s);
    // Another unit's range inside this one's, when aranges overlap: this unit resumes at its end.
    for (let i = lowerBound(edges, s); i < edges.length && edges[i] < e; i++) add(edges[i]);
  }
  for (const sp of lines?.spans ?? []) {
    add(sp.row.address);
    add(sp.end);
  }
  const visit = (list: readonly ScopeNode[]): void => {
    for (const n of list) {
      for (const [lo, hi] of n.ranges) {
        add(lo);
        add(hi);
      }
      visit(n.children);
    }
  };
  visit(scopes.roots);
  const sorted = [...points].sort(cmp);
  // The functions as intervals by low address, for a sweep: the first in DIE order that holds the address starts the chain.
  const intervals: Array<{ lo: bigint; hi: bigint; order: number }> = [];
  scopes.functions.forEach((f, order) => {
    for (const [lo, hi] of f.ranges) if (hi > lo) intervals.push({ lo, hi, order });
  });
  intervals.sort((a, b) => cmp(a.lo, b.lo));
  let next = 0;
  let active: typeof intervals = [];
  const names = new Map<ScopeNode, number>();
  const sites = new Map<ScopeNode, [number, number, number]>();
  const out: Array<[bigint, number]> = [];
  for (const pc of sorted) {
    while (next < intervals.length && intervals[next].lo <= pc) active.push(intervals[next++]);
    active = active.filter((x) => x.hi > pc);
    let fn: ScopeNode | undefined;
    let best = Infinity;
    for (const x of active) if (x.order < best) best = x.order;
    if (best !== Infinity) fn = scopes.functions[best];
    let leaf = NONE;
    if (fn) {
      for (const s of chainBelow(fn, pc)) {
        if (s.tag === DW_TAG.lexical_block) continue;
        let name = names.get(s);
        if (name === undefined) names.set(s, (name = t.str(s.name ?? functionName(dwarf, cu, s.die))));
        let site = sites.get(s);
        if (!site) {
          const f = attrNumber(s.die, DW_AT.call_file);
          const file = f !== undefined && lines ? lineFile(lines.table.header, f)?.path : undefined;
          sites.set(s, (site = [t.str(file), file ? attrNumber(s.die, DW_AT.call_line) ?? 0 : 0, file ? attrNumber(s.die, DW_AT.call_column) ?? 0 : 0]));
        }
        leaf = t.node(leaf, name, ...site);
      }
    }
    const span = lines?.lookup(pc, true);
    const at = span?.file && span.row.line ? [t.str(span.file.path), span.row.line, span.row.column] : [NONE, 0, 0];
    out.push([pc, t.answer(leaf, at[0], at[1], at[2])]);
  }
  return out;
}

/** Per name, the code symbol (not data, not at 0) of the lowest rank: functions, then globals, then table order. */
function codeSymbols(symbols: readonly ElfSymbol[]): Map<string, bigint> {
  const best = new Map<string, ElfSymbol>();
  const rank = (x: ElfSymbol): number => (x.type === 'func' ? 0 : x.type === 'object' ? 1 : 2) * 3 + (x.bind === 'global' ? 0 : x.bind === 'weak' ? 1 : 2);
  for (const x of symbols) {
    if (x.type === 'object' || x.value === 0n || !x.name) continue;
    const had = best.get(x.name);
    if (!had || rank(x) < rank(had)) best.set(x.name, x);
  }
  return new Map([...best].map(([n, x]) => [n, x.value]));
}

function serialize(t: Tables, starts: readonly bigint[], answers: readonly number[], symbols: Map<string, bigint>, source: { size: number; mtimeMs: number }): Buffer {
  const blocks = Math.ceil(starts.length / BLOCK);
  const index = new BigUint64Array(blocks);
  const body = Buffer.alloc(blocks * BLOCK * 12);
  for (let b = 0; b < blocks; b++) {
    index[b] = starts[b * BLOCK];
    const at = b * BLOCK * 12;
    for (let i = 0; i < BLOCK; i++) {
      const k = b * BLOCK + i;
      // A short last block repeats its last record, which changes no answer.
      const j = Math.min(k, starts.length - 1);
      body.writeBigUInt64LE(starts[j], at + i * 8);
      body.writeUInt32LE(answers[j], at + BLOCK * 8 + i * 4);
    }
  }
  // Buckets of about four names each, a power of two so a hash is masked, not divided.
  let buckets = 1;
  while (buckets * 4 < symbols.size) buckets *= 2;
  const byBucket: Array<Array<[number, bigint]>> = Array.from({ length: buckets }, () => []);
  for (const [name, value] of symbols) byBucket[nameHash(name) & (buckets - 1)].push([t.str(name), value]);
  const bucketStarts = new Uint32Array(buckets + 1);
  const symbolEntries = new Uint32Array(symbols.size * 3);
  let k = 0;
  byBucket.forEach((list, b) => {
    for (const [name, value] of list) {
      symbolEntries[k * 3] = name;
      symbolEntries[k * 3 + 1] = Number(value & 0xffff_ffffn);
      symbolEntries[k * 3 + 2] = Number(value >> 32n);
      k++;
    }
    bucketStarts[b + 1] = k;
  });
  const strs = [...t.strings.keys()].map((s) => Buffer.from(s, 'utf8'));
  const offsets = new Uint32Array(strs.length + 1);
  strs.forEach((s, i) => (offsets[i + 1] = offsets[i] + s.length));
  const parts: Buffer[] = [];
  let size = HEADER_SIZE;
  const place = (b: Buffer): number => {
    const at = size;
    parts.push(b);
    size += b.length;
    const pad = (8 - (size % 8)) % 8;
    if (pad) {
      parts.push(Buffer.alloc(pad));
      size += pad;
    }
    return at;
  };
  const u8 = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const blockIndexAt = place(u8(index));
  const blocksAt = place(body);
  const nodesAt = place(u8(Uint32Array.from(t.nodes)));
  const answersAt = place(u8(Uint32Array.from(t.answers)));
  const stringOffsetsAt = place(u8(offsets));
  const stringDataAt = place(Buffer.concat(strs));
  const symbolBucketsAt = place(u8(bucketStarts));
  const symbolsAt = place(u8(symbolEntries));
  const header = writeHeader({
    version: FORMAT_VERSION, records: starts.length, blocks, nodes: t.nodes.length / 5, answers: t.answers.length / 4, strings: strs.length,
    blockIndexAt, blocksAt, nodesAt, answersAt, stringOffsetsAt, stringDataAt, symbolBuckets: buckets, symbolBucketsAt, symbolsAt, sourceSize: source.size, sourceMtimeMs: source.mtimeMs,
  });
  return Buffer.concat([header, ...parts]);
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function lowerBound(sorted: readonly bigint[], x: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
