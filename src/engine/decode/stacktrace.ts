/**
 * A kernel log decoded line by line as scripts/decode_stacktrace.sh prints it: a line with a
 * code reference has its last one replaced by `func (file:line inlined-file:line …)` and its
 * words joined by single spaces (timestamps kept at the kernel's width); other lines pass
 * through. Paths under the kernel tree are shown relative to it. A reference that can't be
 * resolved stays as it was, with the reason on stderr, as the script warns.
 */
import { codeRefs } from '../../kernel/logrefs';
import type { Decoder, Resolution } from './resolve';

export interface DecodeOutput {
  lines: string[];
  warnings: string[];
}

export function decodeLog(text: string, decoder: Decoder): DecodeOutput {
  const base = decoder.basePath();
  const out: DecodeOutput = { lines: [], warnings: [] };
  const warned = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const refs = codeRefs(line);
    if (!refs.length || !/[^+ ]+\+0x[0-9a-f]+\/0x[0-9a-f]+/.test(line)) {
      out.lines.push(line);
      continue;
    }
    out.lines.push(decodeLine(line, decoder, base, (w) => {
      if (!warned.has(w)) out.warnings.push(w);
      warned.add(w);
    }));
  }
  if (out.lines.length && out.lines[out.lines.length - 1] === '' && text.endsWith('\n')) out.lines.pop();
  return out;
}

/** One line, word by word as the script's handle_line() takes it apart. */
function decodeLine(line: string, decoder: Decoder, base: string | undefined, warn: (w: string) => void): string {
  let words = line.split(/\s+/).filter((w) => w !== '');
  words = words.filter((w) => !/\[<[^\]]+>\]/.test(w));
  const joined: string[] = [];
  for (let i = 0; i < words.length; i++) {
    // "[    2.368092]" splits into "[" and "2.368092]": put it back at the kernel's width.
    if (words[i] === '[' && words[i + 1]?.endsWith(']')) {
      joined.push(`[${words[i + 1].padStart(13)}`);
      i++;
    } else joined.push(words[i]);
  }
  words = joined;
  // "[qkd_sample" "0123abcd…]": a module with its build ID.
  if (words.length > 1 && /^[0-9a-f]+\]$/.test(words[words.length - 1]) && words[words.length - 2].startsWith('[')) {
    words.splice(words.length - 2, 2, `${words[words.length - 2]} ${words[words.length - 1]}`);
  }
  let module = '';
  let symbol: string;
  const last = words[words.length - 1];
  const mod = /^\[([^\]]+)\]$/.exec(last);
  if (mod && words.length > 1) {
    module = mod[1].split(' ')[0];
    symbol = words[words.length - 2];
    words = words.slice(0, -2);
  } else {
    symbol = last;
    words = words.slice(0, -1);
  }
  const decoded = decodeSymbol(symbol, module, decoder, base, warn);
  return [...words, `${decoded} ${module}`].join(' ');
}

function decodeSymbol(word: string, module: string, decoder: Decoder, base: string | undefined, warn: (w: string) => void): string {
  let symbol = word.replace(/^\(/, '').replace(/\)$/, '');
  let segment = '';
  const colon = symbol.indexOf(':');
  if (colon >= 0) {
    segment = symbol.slice(0, colon + 1);
    symbol = symbol.slice(colon + 1);
  }
  const m = /^(.*)\+(0x[0-9a-f]+)\/0x[0-9a-f]+$/.exec(symbol);
  if (!m) return word;
  const r = decoder.resolve({ func: m[1], offset: BigInt(m[2]), module: module || undefined });
  if (typeof r === 'string') {
    warn(`WARNING! ${r}`);
    return word;
  }
  const code = codeText(r, base);
  return code === undefined ? word : `${segment}${m[1]} (${code})`;
}

/** addr2line -i's lines, one per inlined level, joined by spaces; undefined when it knows no line. */
export function codeText(r: Resolution, base: string | undefined): string | undefined {
  const parts = r.chain.map((d) => (d.location ? `${relative(d.location.path, base)}:${d.location.line}` : '??:?'));
  if (!parts.length || parts.every((p) => p === '??:?')) return undefined;
  return parts.join(' ');
}

function relative(file: string, base: string | undefined): string {
  return base && file.startsWith(base + '/') ? file.slice(base.length + 1) : file;
}
