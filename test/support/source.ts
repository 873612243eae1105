/** Reading source positions the way both sides print them: gdb's text, and our DAP frames. */
import * as fs from 'node:fs';
import { DebugProtocol } from '@vscode/debugprotocol';

export interface Where {
  fn: string;
  file: string;
  line: number;
}

/** Lines of fork.c found by their text, so the test follows the source rather than numbers. */
export function lineOf(file: string, text: string, after = 0): number {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l, n) => n >= after && l.includes(text));
  if (i < 0) throw new Error(`'${text}' not found in ${file}`);
  return i + 1;
}

export function parseBacktrace(text: string): Where[] {
  const out: Where[] = [];
  for (const line of text.split('\n')) {
    const m = /^#(\d+)\s+(?:0x[0-9a-f]+ in )?([\w.]+) \(.*\) at (\S+):(\d+)\s*$/.exec(line);
    if (m) out.push({ fn: m[2], file: m[3], line: Number(m[4]) });
  }
  return out;
}

/** The source lines gdb printed after each `next`/`step` (a line number, a tab, the text). */
export function sourceLines(text: string): number[] {
  return text
    .split('\n')
    .map((l) => /^(\d+)\t/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
}

export function ours(f: DebugProtocol.StackFrame): Where {
  return { fn: f.name.replace(/ \[inlined\]$/, ''), file: f.source?.path ?? '', line: f.line };
}

