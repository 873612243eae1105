/**
 * The DWARF of one vmlinux, read lazily: unit headers are hopped through once, a unit's
 * root DIE is read when the unit is first asked about, its DIE tree and line table when they
 * are needed, and every result (errors included) is cached per unit.
 */
import type { ElfFile } from '../elf';
import { CallFrameInfo } from './frame';
import { CompileUnit } from './cu';
import { FileNameScanner } from './filenames';
import { lineFileNames, parseLineTable } from './line';
import { LineIndex, lineSpanAt, type LineSpan } from './lineindex';
import { infoOffset, lineOffset, type DebugInfoOffset } from './offsets';
import { ArangeIndex } from './ranges';
import { DwarfSections } from './sections';
import { readUnitHeader, rootStmtList, unitHeaders, type UnitHeader } from './unit';

type Cached<T> = { ok: true; value: T } | { ok: false; error: unknown };

function cached<K, T>(map: Map<K, Cached<T>>, key: K, make: () => T): T {
  let c = map.get(key);
  if (!c) {
    try {
      c = { ok: true, value: make() };
    } catch (error) {
      c = { ok: false, error };
    }
    map.set(key, c);
  }
  if (!c.ok) throw c.error;
  return c.value;
}

export class Dwarf {
  readonly sections: DwarfSections;
  private headers: UnitHeader[] | undefined;
  private readonly units = new Map<number, Cached<CompileUnit>>();
  private readonly lines = new Map<number, Cached<LineIndex>>();
  private aranges: ArangeIndex | undefined;
  private arangeScans = 0;
  private cfi: CallFrameInfo | undefined;
  private fileIndex: Map<string, DebugInfoOffset[]> | undefined;

  private constructor(readonly elf: ElfFile) {
    this.sections = new DwarfSections(elf);
  }

  /** The file's DWARF, or undefined when it has none (a stripped or non-debug build). */
  static open(elf: ElfFile): Dwarf | undefined {
    const d = new Dwarf(elf);
    return d.sections.hasDebugInfo() ? d : undefined;
  }

  unitHeaders(): UnitHeader[] {
    if (!this.headers) this.headers = [...unitHeaders(this.sections)];
    return this.headers;
  }

  unit(offset: DebugInfoOffset): CompileUnit {
    // The header is read where the offset points, so one lookup costs no scan of all units.
    return cached(this.units, offset, () => new CompileUnit(this.sections, readUnitHeader(this.sections, offset)));
  }

  /** Drop a unit's cached tree and lines (a one-pass scan over all units keeps memory flat). */
  forget(offset: DebugInfoOffset): void {
    this.units.delete(offset);
    this.lines.delete(offset);
  }

  /** The unit whose bytes hold a .debug_info offset (for references across units). */
  unitContaining(offset: number): CompileUnit | undefined {
    const hs = this.unitHeaders();
    let lo = 0;
    let hi = hs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (hs[mid].end <= offset) lo = mid + 1;
      else if (hs[mid].offset > offset) hi = mid - 1;
      else return this.unit(hs[mid].offset);
    }
    return undefined;
  }

  /** Build the address → unit index now (read-ahead), rather than on a later lookup. */
  indexAddresses(): void {
    this.aranges ??= ArangeIndex.read(this.sections);
  }

  unitForAddress(pc: bigint): CompileUnit | undefined {
    // The first few lookups (a cold breakpoint) scan; later ones (stack walks) pay for the index once.
    if (!this.aranges && this.arangeScans < 4) {
      this.arangeScans++;
      const u = ArangeIndex.scan(this.sections, pc);
      return u === undefined ? undefined : this.unit(infoOffset(u));
    }
    if (!this.aranges) this.aranges = ArangeIndex.read(this.sections);
    const u = this.aranges.unitFor(pc);
    if (u !== undefined) return this.unit(infoOffset(u));
    return undefined;
  }

  lineIndex(cu: CompileUnit): LineIndex | undefined {
    const stmt = cu.stmtList;
    if (stmt === undefined) return undefined;
    return cached(this.lines, cu.offset, () => new LineIndex(parseLineTable(this.sections, lineOffset(stmt), cu.compDir, cu.header.addressSize)));
  }

  /**
   * The line-table span holding pc, for a one-off question (where a function starts): from
   * the unit's index when it is built, else from one pass over its program that keeps no
   * rows, which costs a cold process a fraction of building the index.
   */
  spanAt(cu: CompileUnit, pc: bigint): LineSpan | undefined {
    const stmt = cu.stmtList;
    if (stmt === undefined) return undefined;
    if (!this.lines.has(cu.offset)) {
      let span: LineSpan | undefined | null = null;
      try {
        span = lineSpanAt(this.sections, lineOffset(stmt), cu.compDir, cu.header.addressSize, pc);
      } catch {
        // A bad table: the index is built and fails the same way, and remembers the error.
      }
      if (span !== null) return span;
    }
    return this.lineIndex(cu)?.lookup(pc);
  }

  frames(): CallFrameInfo | undefined {
    if (!this.cfi && this.sections.get('.debug_frame')) this.cfi = new CallFrameInfo(this.sections, 8);
    return this.cfi;
  }

  /**
   * The file → units index: for each file base name, the units whose line tables name it.
   * Built from line-table file names and each unit root's stmt_list only (no line programs,
   * no DIE trees, no abbreviation tables beyond the root's), and it keeps only names and
   * offsets, so it stays small and quick on a full distribution vmlinux.
   */
  unitsNaming(baseName: string): DebugInfoOffset[] {
    if (!this.fileIndex) {
      const index = new Map<string, DebugInfoOffset[]>();
      const scanner = new FileNameScanner(this.sections);
      // Every unit's root needs its abbreviation: one read of the section beats one per unit.
      const abbrevs = this.sections.require('.debug_abbrev').all();
      for (const h of this.unitHeaders()) {
        const stmt = rootStmtList(this.sections, h, abbrevs);
        if (stmt === undefined) continue;
        const add = (base: string): void => {
          const list = index.get(base);
          if (!list) index.set(base, [h.offset]);
          else if (list[list.length - 1] !== h.offset) list.push(h.offset);
        };
        if (!scanner.scan(stmt, add)) for (const name of lineFileNames(this.sections, lineOffset(stmt)).names) add(name.slice(name.lastIndexOf('/') + 1));
      }
      this.fileIndex = index;
    }
    return this.fileIndex.get(baseName) ?? [];
  }
}
