/**
 * Source-level questions about the kernel image, answered from DWARF with the ELF symbol
 * table as the fallback: which function and line a PC is on (with inlined calls as their
 * own frames), where a function or a file:line puts its breakpoints, and line ranges for
 * stepping.
 */
import { DW_TAG } from '../symbols/dwarf/constants';
import { rangesContain, type CompileUnit } from '../symbols/dwarf/cu';
import type { Dwarf } from '../symbols/dwarf/dwarf';
import type { DebugInfoOffset } from '../symbols/dwarf/offsets';
import type { LineSpan } from '../symbols/dwarf/lineindex';
import type { Range } from '../symbols/dwarf/ranges';
import type { UnwindRow } from '../symbols/dwarf/frame';
import type { Die } from '../symbols/dwarf/unit';
import { callSite, functionName, innermostBlock, scopeChain, unitFunctions } from '../symbols/dwarf/scopes';
import { pcScopes } from '../symbols/dwarf/pcscan';
import type { SymbolIndex } from '../symbols/index/client';
import { IDENTITY, type Relocation } from '../symbols/relocation';
import type { SymbolTable } from '../symbols/symtab';
import type { SourceMapper } from './sourcemap';

export interface SourceLocation {
  /** The path on this machine (mapped). */
  path: string;
  line: number;
  column: number;
}

export interface FrameDescription {
  name: string;
  location?: SourceLocation;
  /** True for an inlined call shown as its own frame. */
  inlined: boolean;
}

export interface FrameScope {
  cu: CompileUnit;
  die: Die;
  fn: Die;
  /**
   * Where to look locations up when not the frame's pc: a stop on the ftrace NOPs before a
   * function's DWARF start is shown at that start, and the NOPs change no register.
   */
  pc?: bigint;
}

export interface CodeLocation {
  address: bigint;
  location?: SourceLocation;
  function: string;
}

export interface LineResolution {
  /** The line the breakpoint really uses (the next line with code when the asked one has none). */
  line: number;
  locations: CodeLocation[];
}

export interface StepLine {
  start: bigint;
  end: bigint;
  line: number;
  file: string;
  isStmt: boolean;
}

/** See SourceInfo.inlineStop. */
export interface InlineStop {
  depth: number;
  entry?: { line: number; file: string };
}

/** Addresses whose step lookups are kept (see SourceInfo.landings): a few steps' worth. */
const LANDINGS_KEPT = 4096;

/**
 * Every public method takes and gives runtime addresses; `rel` turns them into the link-time
 * ones the symbols and DWARF hold (vmlinux under KASLR) and back. The private `…Link` bodies
 * work in link-time addresses and call each other directly: going through a public method
 * (which a subclass may override) would translate an address twice.
 */
export class SourceInfo {
  constructor(
    readonly symbols: SymbolTable,
    readonly dwarf: Dwarf | undefined,
    readonly mapper: SourceMapper,
    /** Whole-file indexes, built off the main thread; without one they are built here. */
    readonly index?: SymbolIndex,
    readonly rel: Relocation = IDENTITY,
  ) {}

  private toLink(pc: bigint): bigint | undefined {
    return this.rel.toLink(pc);
  }

  private out(a: bigint): bigint {
    return this.rel.toRuntime(a);
  }

  private rangesOut(ranges: readonly Range[]): readonly Range[] {
    return this.rel.bias === 0n ? ranges : ranges.map(([lo, hi]) => [this.out(lo), this.out(hi)] as Range);
  }

  private unitAt(pc: bigint): CompileUnit | undefined {
    try {
      return this.dwarf?.unitForAddress(pc);
    } catch {
      return undefined;
    }
  }

  private span(cu: CompileUnit, pc: bigint, lastRow = false): LineSpan | undefined {
    try {
      return this.dwarf?.lineIndex(cu)?.lookup(pc, lastRow);
    } catch {
      return undefined;
    }
  }

  /** As span, for a lookup that may well be the unit's only one: it need not build the index. */
  private entrySpan(cu: CompileUnit, pc: bigint): LineSpan | undefined {
    try {
      return this.dwarf?.spanAt(cu, pc);
    } catch {
      return undefined;
    }
  }

  /**
   * What a step asks of each address it lands on, kept: a step's stop costs those lookups
   * again otherwise, and Stepper.prepare makes them ahead for the places a step can land.
   * The answers come from the vmlinux alone, so they never go stale.
   */
  private readonly landings = new Map<bigint, { line?: StepLine; inline?: InlineStop }>();

  private landing(pc: bigint): { line?: StepLine; inline?: InlineStop } {
    let l = this.landings.get(pc);
    if (!l) {
      if (this.landings.size >= LANDINGS_KEPT) this.landings.clear();
      l = {};
      this.landings.set(pc, l);
    }
    return l;
  }

  /** The line-table span holding pc, for stepping. */
  lineAt(pc: bigint): StepLine | undefined {
    const link = this.toLink(pc);
    const line = link === undefined ? undefined : this.lineAtLink(link);
    return line && this.rel.bias !== 0n ? { ...line, start: this.out(line.start), end: this.out(line.end) } : line;
  }

  private lineAtLink(pc: bigint): StepLine | undefined {
    const l = this.landing(pc);
    if (!('line' in l)) l.line = this.lineAtUncached(pc);
    return l.line;
  }

  private lineAtUncached(pc: bigint): StepLine | undefined {
    const cu = this.unitAt(pc);
    const s = cu && this.span(cu, pc);
    if (!s || s.row.line === 0) return undefined;
    return { start: s.row.address, end: s.end, line: s.row.line, file: s.file?.path ?? '', isStmt: s.row.isStmt };
  }

  /**
   * The addresses a step over `line` of `file` can run through without stopping, from pc's
   * span on: following spans of that line, and spans that are no statement (a step stops
   * only at the start of a statement on another line). Undefined without line info at pc.
   */
  stepRange(pc: bigint, line: number, file: string): [bigint, bigint] | undefined {
    const link = this.toLink(pc);
    const r = link === undefined ? undefined : this.stepRangeLink(link, line, file);
    return r && [this.out(r[0]), this.out(r[1])];
  }

  private stepRangeLink(pc: bigint, line: number, file: string): [bigint, bigint] | undefined {
    const cu = this.unitAt(pc);
    const index = cu && this.dwarf?.lineIndex(cu);
    const first = index?.lookup(pc);
    if (!index || !first || first.row.line === 0) return undefined;
    let end = first.end;
    const other = (l: number, f: string): boolean => l !== line || f !== file;
    for (let next = index.lookup(end); next && next.row.line !== 0; next = index.lookup(end)) {
      if (next.row.isStmt && other(next.row.line, next.file?.path ?? '')) break;
      // The start of an inlined call from another line ends a step too.
      const { entry } = this.inlineStopLink(end);
      if (entry && other(entry.line, entry.file)) break;
      end = next.end;
    }
    return [first.row.address, end];
  }

  /**
   * The frames a physical frame at pc expands to, innermost first. For caller frames pc is
   * a return address, so pc-1 is looked up: the call may be the function's last instruction.
   */
  describe(pc: bigint, isCaller: boolean, reveal?: ReadonlySet<string>): FrameDescription[] {
    const link = this.toLink(pc);
    return link === undefined ? [{ name: `0x${pc.toString(16)}`, inlined: false }] : this.describeLink(link, isCaller, reveal);
  }

  /**
   * Every inlined call at exactly pc, innermost first, as `addr2line -i` lists them: no
   * return-address adjustment, and a call entered at pc is not hidden as a stop there would be.
   * Code DWARF has no function for (assembly) comes back unnamed: the caller has its symbol.
   */
  inlineChainAt(pc: bigint): FrameDescription[] {
    const link = this.toLink(pc);
    return link === undefined ? [{ name: `0x${pc.toString(16)}`, inlined: false }] : this.describeLink(link, false, undefined, true);
  }

  private describeLink(pc: bigint, isCaller: boolean, reveal?: ReadonlySet<string>, everyCall = false): FrameDescription[] {
    const entry = isCaller || everyCall ? undefined : this.patchableEntryLink(pc);
    if (entry !== undefined) {
      // The function as DWARF names it, at the line the line table gives the NOPs (the
      // function's opening line, where gdb shows such a stop) when it gives one.
      const out = this.describeLink(entry, false, reveal);
      const cu = this.unitAt(pc);
      const s = cu && this.span(cu, pc);
      if (s?.file && s.row.line && out[0]) out[0] = { ...out[0], location: { path: this.mapper.toLocal(s.file.path), line: s.row.line, column: s.row.column } };
      return out;
    }
    const look = isCaller ? pc - 1n : pc;
    // Only without DWARF's answer: the first locate sorts the whole symbol table.
    const elfName = (): string => this.symbols.locate(look)?.symbol.name ?? `0x${this.out(pc).toString(16)}`;
    const cu = this.unitAt(look);
    if (!cu || !this.dwarf) return [{ name: elfName(), inlined: false }];
    // Every call, for a one-off lookup: a pass over the unit that builds no DIE tree.
    const fast = everyCall ? safely(() => pcScopes(cu, look)) : undefined;
    const chain = fast ? fast.map((x) => x.die) : this.visibleChain(cu, look, isCaller, reveal);
    const s = this.span(cu, look, everyCall);
    let loc = s?.file && s.row.line ? { path: this.mapper.toLocal(s.file.path), line: s.row.line, column: s.row.column } : undefined;
    const hidden = fast ? undefined : this.hiddenInline;
    if (hidden) {
      const site = callSite(this.dwarf, cu, hidden);
      loc = site.file ? { path: this.mapper.toLocal(site.file), line: site.line, column: site.column } : loc;
    }
    // A one-off lookup names code DWARF has no function for (assembly) by the caller's symbol.
    if (chain.length === 0) return [{ name: everyCall ? '' : elfName(), location: loc, inlined: false }];
    const out: FrameDescription[] = [];
    let where = loc;
    for (let i = chain.length - 1; i >= 0; i--) {
      const die = chain[i];
      out.push({ name: fast?.[i].name ?? functionName(this.dwarf, cu, die), location: where, inlined: i > 0 });
      if (i > 0) {
        const site = callSite(this.dwarf, cu, die);
        where = site.file ? { path: this.mapper.toLocal(site.file), line: site.line, column: site.column } : undefined;
      }
    }
    return out;
  }

  private hiddenInline: ReturnType<typeof scopeChain>[number] | undefined;

  /**
   * The DWARF scope of one frame as describe() listed it: its unit, the DIE whose variables
   * it shows (a subprogram or an inlined call), and the concrete function (for frame base).
   */
  frameScope(pc: bigint, isCaller: boolean, inlineDepth: number, reveal?: ReadonlySet<string>): FrameScope | undefined {
    const link = this.toLink(pc);
    const s = link === undefined ? undefined : this.frameScopeLink(link, isCaller, inlineDepth, reveal);
    return s?.pc !== undefined ? { ...s, pc: this.out(s.pc) } : s;
  }

  private frameScopeLink(pc: bigint, isCaller: boolean, inlineDepth: number, reveal?: ReadonlySet<string>): FrameScope | undefined {
    const entry = isCaller ? undefined : this.patchableEntryLink(pc);
    if (entry !== undefined) {
      const s = this.frameScopeLink(entry, false, inlineDepth, reveal);
      return s && { ...s, pc: entry };
    }
    const look = isCaller ? pc - 1n : pc;
    const cu = this.unitAt(look);
    if (!cu || !this.dwarf) return undefined;
    const chain = this.visibleChain(cu, look, isCaller, reveal);
    const die = chain[chain.length - 1 - inlineDepth];
    if (!die) return undefined;
    const fn = chain[0];
    // An inlined call's frame base is its concrete function's.
    return { cu, die, fn };
  }

  /**
   * The scope chain as a user sees it. Like gdb, a stop exactly at the entry of an inlined
   * call shows the call site in the caller: the inlined frame appears once execution is
   * inside it. Sets hiddenInline to the outermost hidden call (whose call site is shown).
   * Also like gdb, a call stopped at by a breakpoint on its function's name (`reveal`) is
   * shown: the user asked to stop in that function.
   */
  private visibleChain(cu: CompileUnit, pc: bigint, isCaller: boolean, reveal?: ReadonlySet<string>): ReturnType<typeof scopeChain> {
    this.hiddenInline = undefined;
    let chain: ReturnType<typeof scopeChain>;
    try {
      chain = scopeChain(cu, pc);
    } catch {
      return [];
    }
    if (isCaller) return chain;
    while (chain.length > 1) {
      const last = chain[chain.length - 1];
      if (last.tag !== DW_TAG.inlined_subroutine || cu.blockEntry(last) !== pc) break;
      if (reveal?.size && this.dwarf && reveal.has(functionName(this.dwarf, cu, last))) break;
      this.hiddenInline = last;
      chain = chain.slice(0, -1);
    }
    return chain;
  }

  /**
   * Where pc stands among inlined calls, as a stop there is shown: how many inlined frames
   * deep (those entered exactly at pc are hidden, as gdb hides them), and the site of the
   * call entered at pc, if any. gdb ends a step at such an entry when the call is on another
   * line and made from the frame being stepped.
   */
  inlineStop(pc: bigint): InlineStop {
    const link = this.toLink(pc);
    return link === undefined ? { depth: 0 } : this.inlineStopLink(link);
  }

  private inlineStopLink(pc: bigint): InlineStop {
    const l = this.landing(pc);
    l.inline ??= this.inlineStopUncached(pc);
    return l.inline;
  }

  private inlineStopUncached(pc: bigint): InlineStop {
    const cu = this.unitAt(pc);
    if (!cu || !this.dwarf) return { depth: 0 };
    const chain = this.visibleChain(cu, pc, false);
    const depth = Math.max(0, chain.length - 1);
    const hidden = this.hiddenInline;
    if (!hidden) return { depth };
    const site = callSite(this.dwarf, cu, hidden);
    return { depth, entry: { line: site.line, file: site.file ?? '' } };
  }

  /** The last function functionRanges found: a step asks about the same one again and again. */
  private lastFunction: readonly Range[] = [];

  /** The address ranges of the concrete function holding pc (for telling a call from a jump). */
  functionRanges(pc: bigint): readonly Range[] {
    const link = this.toLink(pc);
    return link === undefined ? [] : this.rangesOut(this.functionRangesLink(link));
  }

  private functionRangesLink(pc: bigint): readonly Range[] {
    if (rangesContain(this.lastFunction, pc)) return this.lastFunction;
    const cu = this.unitAt(pc);
    if (cu) {
      try {
        const chain = scopeChain(cu, pc);
        if (chain.length) return (this.lastFunction = cu.ranges(chain[0]));
      } catch {
        // fall back to the symbol table
      }
    }
    const sym = this.symbols.locate(pc);
    return sym ? [[sym.symbol.value, sym.symbol.value + BigInt(Math.max(1, sym.symbol.size))]] : [];
  }

  /** The ranges of the innermost inlined call holding pc, for stepping out of it. */
  inlinedRanges(pc: bigint, depth: number): readonly Range[] | undefined {
    const link = this.toLink(pc);
    const cu = link === undefined ? undefined : this.unitAt(link);
    if (!cu || link === undefined) return undefined;
    const chain = this.visibleChain(cu, link, false);
    const die = chain[chain.length - 1 - depth];
    if (!die || die.tag !== DW_TAG.inlined_subroutine) return undefined;
    return this.rangesOut(cu.ranges(die));
  }

  /** The CFI row at pc, for the unwinder; undefined where there is none or it can't be read. */
  cfiRow(pc: bigint): UnwindRow | undefined {
    const link = this.toLink(pc);
    return link === undefined ? undefined : this.dwarf?.frames()?.rowAt(link);
  }

  hasLineInfo(pc: bigint): boolean {
    return this.lineAt(pc) !== undefined;
  }

  private codeLocation(address: bigint): CodeLocation {
    const [top] = this.describe(address, false);
    return { address, location: top.location, function: top.name };
  }

  /**
   * Where a function breakpoint goes at once: every out-of-line copy's entry (a static
   * function can exist in several units, each with its own ELF symbol). Like gdb on
   * GCC-built code with valid locations, the entry itself, with no prologue skipping. This
   * reads the symbol table and one line table, so it stays fast on a distribution vmlinux.
   */
  functionEntries(name: string): CodeLocation[] {
    const addrs = new Set<bigint>();
    for (const s of this.symbols.lookup(name)) if (s.type === 'func' && s.value !== 0n) addrs.add(s.value);
    return [...addrs].sort((a, b) => (a < b ? -1 : 1)).map((a) => this.entryLocation(a, name));
  }

  /** The copies of a function DWARF knows: inlined calls and compiler clones (from the background function index). */
  async inlinedLocations(name: string): Promise<CodeLocation[]> {
    if (!this.index) return [];
    // The index knows a function by DWARF's start, which on arm64 and riscv64 is past the
    // ftrace NOPs its ELF symbol (the breakpoint's address) covers: the same entry, not a
    // second copy, or each call would stop twice.
    const past = new Set(this.functionEntries(name).map((e) => this.patchableEntry(e.address)).filter((a): a is bigint => a !== undefined).map((a) => this.toLink(a)));
    const addrs = [...new Set(await this.index.codeEntries(name))].filter((a) => !past.has(a));
    return addrs.sort((a, b) => (a < b ? -1 : 1)).map((a) => this.entryLocation(a, name));
  }

  /** Every location of a function: out-of-line copies and inlined ones, in address order. */
  async functionLocations(name: string): Promise<CodeLocation[]> {
    const all = new Map<bigint, CodeLocation>();
    for (const l of [...this.functionEntries(name), ...(await this.inlinedLocations(name))]) if (!all.has(l.address)) all.set(l.address, l);
    return [...all.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
  }

  /** A function entry's location from the line table alone: no DIE tree is needed for it. */
  private entryLocation(address: bigint, name: string): CodeLocation {
    const cu = this.unitAt(address);
    const s = cu && this.entrySpan(cu, address);
    const location = s?.file && s.row.line ? { path: this.mapper.toLocal(s.file.path), line: s.row.line, column: s.row.column } : undefined;
    return { address: this.out(address), location, function: name };
  }

  /**
   * Addresses for a source line. Statement rows of every unit whose line table names the
   * file; when the line has no code, the next line that has some. One address per block,
   * the lowest, as gdb does, so a line split by the scheduler gets one breakpoint, while
   * inlined copies of the line (different blocks) each get theirs.
   */
  async lineLocations(clientPath: string, line: number): Promise<LineResolution | undefined> {
    const r = await this.lineAddresses(clientPath, line);
    return r && { line: r.line, locations: r.addresses.map((a) => this.codeLocation(a)) };
  }

  /**
   * lineLocations' addresses alone, without naming each one's function: what placing a
   * breakpoint needs, so a module's breakpoints are placed at its load without reading the
   * unit's DIE tree (the guest waits meanwhile).
   */
  async lineAddresses(clientPath: string, line: number): Promise<{ line: number; addresses: bigint[] } | undefined> {
    const dwarf = this.dwarf;
    if (!dwarf) return undefined;
    const matches = this.mapper.matcher(clientPath);
    type Cand = { cu: CompileUnit; span: LineSpan };
    const candidates: Cand[] = [];
    const base = clientPath.slice(clientPath.lastIndexOf('/') + 1);
    for (const unit of await this.unitsNaming(dwarf, base)) {
      const cu = dwarf.unit(unit);
      const idx = dwarf.lineIndex(cu);
      if (!idx) continue;
      const files = idx.filesMatching((f) => matches(f.path));
      if (!files.size) continue;
      for (const span of idx.statementsIn(files)) if (span.row.line >= line) candidates.push({ cu, span });
    }
    if (!candidates.length) return { line, addresses: [] };
    const best = candidates.reduce((m, c) => Math.min(m, c.span.row.line), Number.MAX_SAFE_INTEGER);
    const exact = candidates.filter((c) => c.span.row.line === best);
    // One address needs no grouping by block (which reads the unit's whole DIE tree).
    if (exact.length === 1) return { line: best, addresses: [this.out(exact[0].span.row.address)] };
    const perBlock = new Map<string, bigint>();
    for (const c of exact) {
      let key = `${c.cu.offset}:${c.span.row.address}`;
      try {
        const block = innermostBlock(c.cu, c.span.row.address);
        if (block) key = `${c.cu.offset}:${block.offset}`;
      } catch {
        // no DIE tree: one location per address
      }
      const prev = perBlock.get(key);
      if (prev === undefined || c.span.row.address < prev) perBlock.set(key, c.span.row.address);
    }
    return { line: best, addresses: [...new Set(perBlock.values())].sort((a, b) => (a < b ? -1 : 1)).map((a) => this.out(a)) };
  }

  private async unitsNaming(dwarf: Dwarf, base: string): Promise<DebugInfoOffset[]> {
    if (this.index) {
      try {
        return await this.index.unitsNaming(base);
      } catch {
        // the worker is gone: the same index, built in this thread
      }
    }
    return dwarf.unitsNaming(base);
  }

  /**
   * Read ahead what a stop at these addresses will need (their units' DIE trees and line
   * tables, the CFI index, the symbol orders), one address per event-loop turn, while the
   * guest runs toward them: the stop itself then only evaluates.
   */
  async warm(runtime: readonly bigint[]): Promise<void> {
    const addresses = runtime.map((a) => this.toLink(a)).filter((a): a is bigint => a !== undefined);
    const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 0));
    this.symbols.locate(addresses[0] ?? 0n);
    await turn();
    this.symbols.locateData(0xffffffff80000000n);
    await turn();
    try {
      this.dwarf?.frames()?.rowAt(addresses[0] ?? 0n);
    } catch {
      // Read ahead only: a CFI error here is the unwinder's to handle (it falls back to the
      // frame pointer) and must not reject this promise, which nobody awaits.
    }
    await turn();
    try {
      // Stepping and stack walks look up units by address many times over.
      this.dwarf?.indexAddresses();
    } catch {
      // A broken .debug_aranges is reported where a lookup needs it.
    }
    for (const pc of addresses) {
      await turn();
      const cu = this.unitAt(pc);
      if (!cu) continue;
      try {
        scopeChain(cu, pc);
        cu.dieAt(cu.offset);
        this.span(cu, pc);
      } catch {
        // A unit that can't be read fails again, with its message, when it is really needed.
      }
    }
  }

  /**
   * Where the function really starts when pc is on the NOPs `-fpatchable-function-entry`
   * puts before it (arm64 and riscv64 ftrace): the ELF symbol covers them, DWARF starts
   * after them. A stop there is shown as the function at its first line, as gdb shows a
   * breakpoint it placed past them. Undefined when pc is not on such NOPs.
   */
  patchableEntry(pc: bigint): bigint | undefined {
    const link = this.toLink(pc);
    const at = link === undefined ? undefined : this.patchableEntryLink(link);
    return at === undefined ? undefined : this.out(at);
  }

  private patchableEntryLink(pc: bigint): bigint | undefined {
    const sym = this.symbols.locate(pc);
    if (!sym || sym.offset > 16n || this.inDwarfFunctionLink(pc)) return undefined;
    const end = sym.symbol.value + BigInt(Math.max(1, sym.symbol.size));
    for (let at = pc + 2n; at <= pc + 16n && at < end; at += 2n) if (this.isFunctionEntryLink(at) && this.inDwarfFunctionLink(at)) return at;
    return undefined;
  }

  /**
   * Whether DWARF places pc inside a function. The ELF symbol can start earlier: arm64's
   * ftrace NOPs (-fpatchable-function-entry) sit before the function's DW_AT_low_pc.
   */
  inDwarfFunction(pc: bigint): boolean {
    const link = this.toLink(pc);
    return link !== undefined && this.inDwarfFunctionLink(link);
  }

  private inDwarfFunctionLink(pc: bigint): boolean {
    const cu = this.unitAt(pc);
    if (!cu) return false;
    try {
      return scopeChain(cu, pc).length > 0;
    } catch {
      return false;
    }
  }

  /** Whether pc is the first address of a concrete function (a call just landed there). */
  isFunctionEntry(pc: bigint): boolean {
    const link = this.toLink(pc);
    return link !== undefined && this.isFunctionEntryLink(link);
  }

  private isFunctionEntryLink(pc: bigint): boolean {
    const sym = this.symbols.locate(pc);
    if (sym && sym.offset === 0n) return true;
    const cu = this.unitAt(pc);
    if (!cu) return false;
    try {
      return unitFunctions(cu).some((f) => f.low === pc && rangesContain(f.ranges, pc));
    } catch {
      return false;
    }
  }
}

/** The answer, or undefined where the DWARF can't give it (a corrupt unit): the caller falls back. */
function safely<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
