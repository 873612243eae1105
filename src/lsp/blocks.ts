/**
 * The report blocks of a kernel log: where each Oops, BUG, WARN, sanitizer report, panic,
 * lockdep splat, hung task or RCU stall starts and ends, what it is and how bad. A block
 * starts at the kernel's header line and ends at its `---[ end trace … ]---` (or a
 * sanitizer's closing `=====` rule), at the next report's header, or after MAX_LINES.
 */

export type ReportKind = 'oops' | 'bug' | 'warn' | 'kasan' | 'kfence' | 'ubsan' | 'panic' | 'lockdep' | 'hung' | 'rcu' | 'lockup';

export interface ReportBlock {
  kind: ReportKind;
  /** The header line without its timestamp: "BUG: kernel NULL pointer dereference, address: …". */
  title: string;
  severity: 'error' | 'warning';
  /** 0-based line numbers, inclusive. */
  start: number;
  end: number;
}

const MAX_LINES = 400;
const STAMP = /^\s*(?:<\d>)?\s*\[\s*\d+\.\d+\]\s?(?:\[\s*[TC]\d+\]\s?)?/;

/** Header lines, most specific first. */
const HEADERS: ReadonlyArray<[RegExp, ReportKind]> = [
  [/^BUG: KASAN: /, 'kasan'],
  [/^BUG: KFENCE: /, 'kfence'],
  [/^BUG: soft lockup /, 'lockup'],
  [/^UBSAN: /, 'ubsan'],
  [/^WARNING: possible (?:circular|recursive) locking|^WARNING: inconsistent lock state|^WARNING: bad unlock balance/, 'lockdep'],
  [/^WARNING: CPU: \d+ PID: \d+/, 'warn'],
  [/^kernel BUG at /, 'bug'],
  [/^(?:BUG: |Unable to handle kernel |general protection fault|Internal error: )/, 'oops'],
  [/^Kernel panic - not syncing: /, 'panic'],
  [/^INFO: task .* blocked for more than \d+ seconds/, 'hung'],
  [/^rcu: INFO: .*(?:detected stall|self-detected stall)|^INFO: rcu_\w+ (?:self-)?detected stall/, 'rcu'],
];

const SEVERITY: Record<ReportKind, 'error' | 'warning'> = {
  oops: 'error',
  bug: 'error',
  kasan: 'error',
  kfence: 'error',
  panic: 'error',
  lockup: 'error',
  warn: 'warning',
  ubsan: 'warning',
  lockdep: 'warning',
  hung: 'warning',
  rcu: 'warning',
};

/** A line's text after the kernel's timestamp (and caller id), as the header patterns see it. */
export function logText(line: string): string {
  return line.replace(STAMP, '');
}

export function reportBlocks(lines: readonly string[]): ReportBlock[] {
  const out: ReportBlock[] = [];
  let open: ReportBlock | undefined;
  const close = (end: number): void => {
    if (open) out.push({ ...open, end: Math.max(open.start, end) });
    open = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const text = logText(lines[i]).replace(/\r$/, '');
    if (open && /^-+\[ end (?:trace|Kernel panic)/.test(text)) {
      close(i);
      continue;
    }
    // A sanitizer report is framed by rules of '=': the second one closes it.
    if (/^=+\s*$/.test(text)) {
      if (open && (open.kind === 'kasan' || open.kind === 'kfence' || open.kind === 'ubsan') && i > open.start + 1) close(i);
      continue;
    }
    const header = HEADERS.find(([re]) => re.test(text));
    if (header) {
      const [, kind] = header;
      // Inside an Oops, "kernel BUG at" and "Internal error" are its own lines, not new reports;
      // a panic that follows ("Fatal exception") is one.
      const continues = open !== undefined && kind !== 'panic' && (open.kind === 'bug' || open.kind === 'oops') && (kind === 'oops' || kind === 'bug');
      if (!continues) {
        close(i - 1);
        open = { kind, title: text.trim(), severity: SEVERITY[kind], start: i, end: i };
      }
      continue;
    }
    if (open && i - open.start >= MAX_LINES) close(i - 1);
  }
  close(lines.length - 1);
  return out;
}
