/**
 * Source-level questions about the kernel image, answered from DWARF with the ELF symbol
 * table as the fallback: which function and line a PC is on (with inlined calls as their
 * own frames), where a function or a file:line puts its breakpoints, and line ranges for
 * stepping.
 */
import { DW_TAG } from '../symbols/dwarf/constants';
import { rangesContain, type CompileUnit } from '../symbols/dwarf/cu';
import type { Dwarf } from '../symbols/dwarf/dwarf';
import type { LineSpan } from '../symbols/dwarf/lineindex';
import type { Range } from '../symbols/dwarf/ranges';
import { callSite, functionName, innermostBlock, scopeChain, unitFunctions } from '../symbols/dwarf/scopes';
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

export class SourceInfo {
  constructor(
    readonly symbols: SymbolTable,
    readonly dwarf: Dwarf | undefined,
    readonly mapper: SourceMapper,
  ) {}

  private unitAt(pc: bigint): CompileUnit | undefined {
    try {
      return this.dwarf?.unitForAddress(pc);
    } catch {
      return undefined;
    }
  }

  private span(cu: CompileUnit, pc: bigint): LineSpan | undefined {
    try {
      return this.dwarf?.lineIndex(cu)?.lookup(pc);
    } catch {
      return undefined;
    }
  }

  /** The line-table span holding pc, for stepping. */
  lineAt(pc: bigint): StepLine | undefined {
    const cu = this.unitAt(pc);
    const s = cu && this.span(cu, pc);
    if (!s || s.row.line === 0) return undefined;
    return { start: s.row.address, end: s.end, line: s.row.line, file: s.file?.path ?? '', isStmt: s.row.isStmt };
  }

  /**
   * The frames a physical frame at pc expands to, innermost first. For caller frames pc is
   * a return address, so pc-1 is looked up: the call may be the function's last instruction.
   */
  describe(pc: bigint, isCaller: boolean): FrameDescription[] {
    const look = isCaller ? pc - 1n : pc;
    const sym = this.symbols.locate(look)?.symbol.name;
    const elfName = sym ?? this.symbols.describe(pc);
    const cu = this.unitAt(look);
    if (!cu || !this.dwarf) return [{ name: elfName, inlined: false }];
    const chain = this.visibleChain(cu, look, isCaller);
    const s = this.span(cu, look);
    let loc = s?.file && s.row.line ? { path: this.mapper.toLocal(s.file.path), line: s.row.line, column: s.row.column } : undefined;
    const hidden = this.hiddenInline;
    if (hidden) {
      const site = callSite(this.dwarf, cu, hidden);
      loc = site.file ? { path: this.mapper.toLocal(site.file), line: site.line, column: site.column } : loc;
    }
    if (chain.length === 0) return [{ name: elfName, location: loc, inlined: false }];
    const out: FrameDescription[] = [];
    let where = loc;
    for (let i = chain.length - 1; i >= 0; i--) {
      const die = chain[i];
      out.push({ name: functionName(this.dwarf, cu, die), location: where, inlined: i > 0 });
      if (i > 0) {
        const site = callSite(this.dwarf, cu, die);
        where = site.file ? { path: this.mapper.toLocal(site.file), line: site.line, column: site.column } : undefined;
      }
    }
    return out;
  }

  private hiddenInline: ReturnType<typeof scopeChain>[number] | undefined;

  /**
   * The scope chain as a user sees it. Like gdb, a stop exactly at the entry of an inlined
   * call shows the call site in the caller: the inlined frame appears once execution is
   * inside it. Sets hiddenInline to the outermost hidden call (whose call site is shown).
   */
  private visibleChain(cu: CompileUnit, pc: bigint, isCaller: boolean): ReturnType<typeof scopeChain> {
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
      this.hiddenInline = last;
      chain = chain.slice(0, -1);
    }
    return chain;
  }

  /** The address ranges of the concrete function holding pc (for telling a call from a jump). */
  functionRanges(pc: bigint): Range[] {
    const cu = this.unitAt(pc);
    if (cu) {
      try {
        const chain = scopeChain(cu, pc);
        if (chain.length) return cu.ranges(chain[0]);
      } catch {
        // fall back to the symbol table
      }
    }
    const sym = this.symbols.locate(pc);
    return sym ? [[sym.symbol.value, sym.symbol.value + BigInt(Math.max(1, sym.symbol.size))]] : [];
  }

  /** The ranges of the innermost inlined call holding pc, for stepping out of it. */
  inlinedRanges(pc: bigint, depth: number): Range[] | undefined {
    const cu = this.unitAt(pc);
    if (!cu) return undefined;
    const chain = this.visibleChain(cu, pc, false);
    const die = chain[chain.length - 1 - depth];
    if (!die || die.tag !== DW_TAG.inlined_subroutine) return undefined;
    return cu.ranges(die);
  }

  hasLineInfo(pc: bigint): boolean {
    return this.lineAt(pc) !== undefined;
  }

  private codeLocation(address: bigint): CodeLocation {
    const [top] = this.describe(address, false);
    return { address, location: top.location, function: top.name };
  }

  /**
   * Where a function breakpoint goes: every concrete copy's entry (a static function can
   * exist in several units, each with its own ELF symbol), plus DWARF's inlined copies in
   * those units. Like gdb on GCC-built code with valid locations, the entry itself, with no
   * prologue skipping.
   */
  functionLocations(name: string): CodeLocation[] {
    const addrs = new Set<bigint>();
    for (const s of this.symbols.lookup(name)) if (s.type === 'func' && s.value !== 0n) addrs.add(s.value);
    if (this.dwarf) {
      const units = new Set<CompileUnit>();
      for (const a of addrs) {
        const cu = this.unitAt(a);
        if (cu) units.add(cu);
      }
      for (const cu of units) for (const a of this.inlinedEntries(cu, name)) addrs.add(a);
    }
    return [...addrs].sort((a, b) => (a < b ? -1 : 1)).map((a) => this.entryLocation(a, name));
  }

  /** A function entry's location from the line table alone: no DIE tree is needed for it. */
  private entryLocation(address: bigint, name: string): CodeLocation {
    const cu = this.unitAt(address);
    const s = cu && this.span(cu, address);
    const location = s?.file && s.row.line ? { path: this.mapper.toLocal(s.file.path), line: s.row.line, column: s.row.column } : undefined;
    return { address, location, function: name };
  }

  private inlinedEntries(cu: CompileUnit, name: string): bigint[] {
    const dwarf = this.dwarf;
    if (!dwarf) return [];
    const out: bigint[] = [];
    const visit = (d: ReturnType<CompileUnit['dies']>): void => {
      for (const c of d.children) {
        if (c.tag === DW_TAG.inlined_subroutine && functionName(dwarf, cu, c) === name) {
          const e = cu.blockEntry(c);
          if (e !== undefined) out.push(e);
        }
        if (c.hasChildren && (c.tag === DW_TAG.subprogram || c.tag === DW_TAG.inlined_subroutine || c.tag === DW_TAG.lexical_block)) visit(c);
      }
    };
    try {
      visit(cu.dies());
    } catch {
      return [];
    }
    return out;
  }

  /**
   * Addresses for a source line. Statement rows of every unit whose line table names the
   * file; when the line has no code, the next line that has some. One address per block,
   * the lowest, as gdb does, so a line split by the scheduler gets one breakpoint, while
   * inlined copies of the line (different blocks) each get theirs.
   */
  lineLocations(clientPath: string, line: number): LineResolution | undefined {
    const dwarf = this.dwarf;
    if (!dwarf) return undefined;
    const matches = this.mapper.matcher(clientPath);
    type Cand = { cu: CompileUnit; span: LineSpan };
    const candidates: Cand[] = [];
    const base = clientPath.slice(clientPath.lastIndexOf('/') + 1);
    for (const unit of dwarf.unitsNaming(base)) {
      const cu = dwarf.unit(unit);
      const idx = dwarf.lineIndex(cu);
      if (!idx) continue;
      const files = idx.filesMatching((f) => matches(f.path));
      if (!files.size) continue;
      for (const span of idx.statementsIn(files)) if (span.row.line >= line) candidates.push({ cu, span });
    }
    if (!candidates.length) return { line, locations: [] };
    const best = candidates.reduce((m, c) => Math.min(m, c.span.row.line), Number.MAX_SAFE_INTEGER);
    const exact = candidates.filter((c) => c.span.row.line === best);
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
    const addrs = [...new Set(perBlock.values())].sort((a, b) => (a < b ? -1 : 1));
    return { line: best, locations: addrs.map((a) => this.codeLocation(a)) };
  }

  /** Whether pc is the first address of a concrete function (a call just landed there). */
  isFunctionEntry(pc: bigint): boolean {
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
