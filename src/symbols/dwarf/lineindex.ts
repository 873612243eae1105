/**
 * A unit's line table arranged for the two questions a debugger asks: which line is this
 * address on (sorted rows, binary search), and which addresses start this line.
 */
import { lineFile, runLineProgram, type LineFile, type LineRow, type LineTable } from './line';
import type { DebugLineOffset } from './offsets';
import type { DwarfSections } from './sections';

export interface LineSpan {
  row: LineRow;
  file: LineFile | undefined;
  /** Address of the next row of the same sequence: the span is [row.address, end). */
  end: bigint;
}

export class LineIndex {
  /** Rows that start a span, sorted by address; end-of-sequence rows only close spans. */
  readonly spans: LineSpan[] = [];

  constructor(readonly table: LineTable) {
    const rows = table.rows;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      if (row.endSequence) continue;
      const next = rows[i + 1];
      const end = next ? next.address : row.address + 1n;
      this.spans.push({ row, file: lineFile(table.header, row.file), end });
    }
    // Stable sort keeps the program's order for rows at one address, which is_stmt picking relies on.
    this.spans.sort((a, b) => (a.row.address < b.row.address ? -1 : a.row.address > b.row.address ? 1 : 0));
  }

  /**
   * The span holding pc. Several rows can share an address (a zero-length span, often a
   * non-statement row before a statement one); like gdb, prefer a statement row there.
   */
  /**
   * The span holding pc. Of several rows at one address a statement row is preferred (the line
   * gdb shows a stop on); with `lastRow`, the last row is taken, as addr2line does.
   */
  lookup(pc: bigint, lastRow = false): LineSpan | undefined {
    const s = this.spans;
    let lo = 0;
    let hi = s.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid].row.address <= pc) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    // The last row at an address is the one whose span has length; earlier ones are empty.
    let best = s[found];
    if (pc >= best.end) return undefined;
    if (!best.row.isStmt && !lastRow) {
      for (let j = found - 1; j >= 0 && s[j].row.address === best.row.address; j--) {
        if (s[j].row.isStmt) {
          best = { ...s[j], end: best.end };
          break;
        }
      }
    }
    return best;
  }

  /** Rows that are statements and belong to one of `files` (indexes into the header's table). */
  statementsIn(files: ReadonlySet<number>): LineSpan[] {
    return this.spans.filter((x) => x.row.isStmt && files.has(x.row.file));
  }

  /** File indexes whose path satisfies `match`. */
  filesMatching(match: (f: LineFile) => boolean): Set<number> {
    const out = new Set<number>();
    const files = this.table.header.files;
    for (let i = 0; i < files.length + 1; i++) {
      const f = lineFile(this.table.header, i);
      if (f && match(f)) out.add(i);
    }
    return out;
  }

  /** The address range of the line containing pc: contiguous spans with the same file and line. */
  lineRange(pc: bigint): { start: bigint; end: bigint; line: number; file: number } | undefined {
    const cur = this.lookup(pc);
    if (!cur) return undefined;
    return { start: cur.row.address, end: cur.end, line: cur.row.line, file: cur.row.file };
  }
}

const U64_MAX = (1n << 64n) - 1n;
/** Distances from pc within this are exact as doubles, with room for a delta (< 2^49) on top. */
const EXACT = 1n << 52n;

/**
 * The span `new LineIndex(table).lookup(pc)` would return, found in one pass over the unit's
 * program with no row objects, no bigint per row and no sort: what a cold `qkd where` needs
 * from a table of ten thousand rows. Each row is measured by its distance below pc, in
 * doubles; the winner is the last row (in program order) nearest at or below pc, with the
 * same statement-row preference and span end as lookup. Sequences far from pc (a discarded
 * function's, at 0) are only noted. Null when that is not enough to be exact: nothing near
 * pc, or an address that wraps past 2^64. Then the caller builds the index.
 */
export function lineSpanAt(sections: DwarfSections, offset: DebugLineOffset, compDir: string, addressSize: number, pc: bigint): LineSpan | undefined | null {
  let epoch = -1;
  let near = false;
  let limit = 0;
  let headroom = 0;
  let farBelow = false;
  let unsure = false;
  let bestDist = Infinity;
  // Two rows filled in place: a row object per candidate was most of this pass's garbage.
  const best = blankRow();
  const stmtBefore = blankRow();
  let haveBest = false;
  let haveStmt = false;
  let needEnd = false;
  let endDist = 0;
  const header = runLineProgram(
    sections,
    offset,
    compDir,
    (m, endSequence) => {
      if (unsure) return;
      if (m.epoch !== epoch) {
        epoch = m.epoch;
        const d = pc - m.base;
        near = d < EXACT && d > -EXACT;
        if (near) limit = Number(d);
        else if (d > 0n) farBelow = true;
        headroom = Number(U64_MAX - m.base);
      }
      // A best row's span would end far away (a mid-sequence set_address), or the address wraps.
      if (m.delta > headroom || (!near && needEnd)) unsure = true;
      if (unsure || !near) return;
      const dist = limit - m.delta;
      if (needEnd) {
        endDist = dist;
        needEnd = false;
      }
      if (endSequence || dist < 0 || dist > bestDist) return;
      if (dist < bestDist) {
        bestDist = dist;
        haveStmt = false;
      } else if (best.isStmt) {
        copyRow(stmtBefore, best);
        haveStmt = true;
      }
      // Most rows below pc get here: copied inline, as copyRow would, since a call per row
      // costs more than the copy while this runs interpreted.
      best.file = m.file;
      best.line = m.line;
      best.column = m.column;
      best.isStmt = m.isStmt;
      best.basicBlock = m.basicBlock;
      best.prologueEnd = m.prologueEnd;
      best.epilogueBegin = m.epilogueBegin;
      best.discriminator = m.discriminator;
      best.opIndex = m.opIndex;
      haveBest = true;
      needEnd = true;
    },
    addressSize,
  );
  if (unsure || (!haveBest && farBelow)) return null;
  // A row's span ends at the next row (the program ends every sequence, so best has one);
  // lookup answers nothing for a pc at or past that end.
  if (!haveBest || endDist >= 0) return undefined;
  const row = !best.isStmt && haveStmt ? stmtBefore : best;
  row.address = pc - BigInt(bestDist);
  return { row, file: lineFile(header, row.file), end: pc - BigInt(endDist) };
}

function blankRow(): LineRow {
  return { address: 0n, file: 0, line: 0, column: 0, isStmt: false, basicBlock: false, endSequence: false, prologueEnd: false, epilogueBegin: false, discriminator: 0, opIndex: 0 };
}

/** A row's registers (not its address: the caller knows that) into `to`. */
function copyRow(to: LineRow, from: LineRow): void {
  to.file = from.file;
  to.line = from.line;
  to.column = from.column;
  to.isStmt = from.isStmt;
  to.basicBlock = from.basicBlock;
  to.prologueEnd = from.prologueEnd;
  to.epilogueBegin = from.epilogueBegin;
  to.discriminator = from.discriminator;
  to.opIndex = from.opIndex;
}
