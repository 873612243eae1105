/**
 * A unit's line table arranged for the two questions a debugger asks: which line is this
 * address on (sorted rows, binary search), and which addresses start this line.
 */
import { lineFile, type LineFile, type LineRow, type LineTable } from './line';

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
  lookup(pc: bigint): LineSpan | undefined {
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
    if (!best.row.isStmt) {
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
