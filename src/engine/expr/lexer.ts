/**
 * Tokens of the C expression language. Tokens are produced on demand so that, as the parser
 * advances, the leftmost problem in the text is the one reported, lexical or not.
 */
import { ErrorCode, UserError } from '../../util/errors';
import type { Pos } from './ast';

/** A syntax error with the span at fault; `message` names the 1-based column of `pos.start`. */
export class ExprSyntaxError extends UserError {
  constructor(message: string, readonly pos: Pos, readonly source: string) {
    super(ErrorCode.Expression, message);
    this.name = 'ExprSyntaxError';
  }
}

export type Punct =
  | '...' | '<<=' | '>>=' | '->' | '++' | '--' | '<<' | '>>' | '<=' | '>=' | '==' | '!=' | '&&' | '||'
  | '+=' | '-=' | '*=' | '/=' | '%=' | '&=' | '|=' | '^='
  | '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | '!' | '~' | '&' | '|' | '^' | '?' | ':' | ',' | '.' | '(' | ')' | '[' | ']' | '@';

// Longest first, so maximal munch is a plain first-match scan.
const PUNCTS: readonly Punct[] = [
  '...', '<<=', '>>=',
  '->', '++', '--', '<<', '>>', '<=', '>=', '==', '!=', '&&', '||', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=',
  '+', '-', '*', '/', '%', '<', '>', '=', '!', '~', '&', '|', '^', '?', ':', ',', '.', '(', ')', '[', ']', '@',
];

export type Token =
  /** Keywords too: which words are keywords depends on where they appear (`p->int` is fine). */
  | { kind: 'ident'; text: string; pos: Pos }
  | { kind: 'register'; text: string; name: string; pos: Pos }
  | { kind: 'int'; text: string; value: bigint; unsigned: boolean; long: 0 | 1 | 2; radix: 2 | 8 | 10 | 16; pos: Pos }
  | { kind: 'char'; text: string; value: number; pos: Pos }
  | { kind: 'string'; text: string; value: string; pos: Pos }
  | { kind: 'punct'; text: Punct; pos: Pos }
  | { kind: 'eof'; text: ''; pos: Pos };

export function at(pos: Pos): string {
  return `at column ${pos.start + 1}`;
}

/** Source text for a message: one line, and short enough to read at a glance. */
export function clip(text: string, max = 40): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** How a "found X" clause names a token. */
export function describe(tok: Token): string {
  if (tok.kind === 'eof') return 'end of expression';
  // Literals bring their own quotes.
  if (tok.kind === 'string' || tok.kind === 'char') return clip(tok.text);
  return `'${clip(tok.text)}'`;
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;
const DIGIT = /[0-9]/;
const HEX = /[0-9A-Fa-f]/;
const U64_MAX = (1n << 64n) - 1n;

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = {
  n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11,
  // GNU C's ESC, which gdb accepts as well.
  e: 27,
  '\\': 92, "'": 39, '"': 34, '?': 63,
};

export class Lexer {
  private i = 0;
  private readonly toks: Token[] = [];

  constructor(readonly src: string) {}

  /** The k-th token from the start, lexing as far as needed; past the end it is eof. */
  token(k: number): Token {
    while (this.toks.length <= k) {
      const last = this.toks[this.toks.length - 1];
      if (last?.kind === 'eof') return last;
      this.toks.push(this.lexOne());
    }
    return this.toks[k];
  }

  private fail(message: string, start: number, end: number): never {
    throw new ExprSyntaxError(message, { start, end }, this.src);
  }

  private lexOne(): Token {
    const s = this.src;
    while (this.i < s.length && /\s/.test(s[this.i])) this.i++;
    const start = this.i;
    if (start >= s.length) return { kind: 'eof', text: '', pos: { start, end: start } };
    const c = s[start];
    if (IDENT_START.test(c)) return this.ident(start);
    if (c === '$') return this.register(start);
    if (DIGIT.test(c) || (c === '.' && DIGIT.test(s[start + 1] ?? ''))) return this.number(start);
    if (c === "'") return this.charLiteral(start);
    if (c === '"') return this.stringLiteral(start);
    for (const p of PUNCTS) {
      if (s.startsWith(p, start)) {
        this.i = start + p.length;
        return { kind: 'punct', text: p, pos: { start, end: this.i } };
      }
    }
    const cp = s.codePointAt(start) ?? 0;
    const ch = String.fromCodePoint(cp);
    // Control characters and lookalikes pasted from documents (en dash, smart quotes) are
    // invisible or misleading when quoted alone.
    const shown = cp < 0x20 || cp === 0x7f ? JSON.stringify(ch).slice(1, -1) : ch;
    const code = cp > 0x7e || cp < 0x20 ? ` (U+${cp.toString(16).toUpperCase().padStart(4, '0')})` : '';
    return this.fail(`unexpected character '${shown}'${code} at column ${start + 1}`, start, start + ch.length);
  }

  private run(from: number, re: RegExp): number {
    let j = from;
    while (j < this.src.length && re.test(this.src[j])) j++;
    return j;
  }

  private ident(start: number): Token {
    this.i = this.run(start, IDENT_PART);
    if (this.src[this.i] === '$') {
      this.fail(`'$' at column ${this.i + 1} may only start a register name, as in '$rip'`, this.i, this.i + 1);
    }
    return { kind: 'ident', text: this.src.slice(start, this.i), pos: { start, end: this.i } };
  }

  private register(start: number): Token {
    const s = this.src;
    const first = s[start + 1] ?? '';
    if (IDENT_START.test(first)) {
      this.i = this.run(start + 1, IDENT_PART);
      return { kind: 'register', text: s.slice(start, this.i), name: s.slice(start + 1, this.i), pos: { start, end: this.i } };
    }
    if (first === '$' || DIGIT.test(first)) {
      const end = this.run(start + 1, /[$0-9]/);
      return this.fail(`'${s.slice(start, end)}' at column ${start + 1}: gdb's value history is not available here; name a register, as in '$rip'`, start, end);
    }
    return this.fail(`'$' at column ${start + 1} must be followed by a register name, as in '$rip'`, start, start + 1);
  }

  private number(start: number): Token {
    const s = this.src;
    let radix: 2 | 8 | 10 | 16 = 10;
    let digitsFrom = start;
    if (s[start] === '0' && /[xX]/.test(s[start + 1] ?? '')) {
      radix = 16;
      digitsFrom = start + 2;
    } else if (s[start] === '0' && /[bB]/.test(s[start + 1] ?? '')) {
      radix = 2;
      digitsFrom = start + 2;
    } else if (s[start] === '0') {
      radix = 8;
    }
    // Digits run to the first non-digit; an octal or binary literal takes every decimal digit
    // so that `09` is reported as a bad digit rather than as a bad suffix.
    const digitsEnd = this.run(digitsFrom, radix === 16 ? HEX : DIGIT);
    const end = this.run(digitsEnd, IDENT_PART);
    const suffix = s.slice(digitsEnd, end);
    const isFloat =
      s[end] === '.' ||
      s[start] === '.' ||
      (radix === 16 ? /^[pP]/.test(suffix) : /^[eE][0-9]/.test(suffix) || (/^[eE]$/.test(suffix) && /[+-][0-9]/.test(s.slice(end, end + 2))));
    if (isFloat) {
      let j = start;
      while (j < s.length && (/[0-9A-Za-z_.]/.test(s[j]) || (/[+-]/.test(s[j]) && /[eEpP]/.test(s[j - 1])))) j++;
      this.fail(`floating-point literal '${clip(s.slice(start, j))}' at column ${start + 1} is not supported; only integers are`, start, j);
    }
    const text = s.slice(start, end);
    const digits = s.slice(digitsFrom, digitsEnd);
    const name = { 2: 'binary', 8: 'octal', 10: 'decimal', 16: 'hexadecimal' }[radix];
    if (digits === '') this.fail(`${name} literal '${clip(text)}' at column ${start + 1} has no digits`, start, end);
    if (radix === 2 || radix === 8) {
      for (let j = 0; j < digits.length; j++) {
        if (Number(digits[j]) >= radix) {
          const col = digitsFrom + j;
          this.fail(`invalid digit '${digits[j]}' at column ${col + 1} in ${name} literal '${clip(text)}'`, col, col + 1);
        }
      }
    }
    const m = /^(?:([uU])(ll|LL|[lL])?|(ll|LL|[lL])([uU])?)?$/.exec(suffix);
    if (!m) this.fail(`invalid suffix '${clip(suffix)}' at column ${digitsEnd + 1} on integer literal '${clip(text)}'`, digitsEnd, end);
    const value = BigInt(radix === 8 ? `0o${digits}` : radix === 10 ? digits : `0${radix === 16 ? 'x' : 'b'}${digits}`);
    if (value > U64_MAX) this.fail(`integer literal '${clip(text)}' at column ${start + 1} does not fit in 64 bits`, start, end);
    const longs = m[2] ?? m[3] ?? '';
    this.i = end;
    return { kind: 'int', text, value, unsigned: Boolean(m[1] ?? m[4]), long: longs.length === 2 ? 2 : longs.length === 1 ? 1 : 0, radix, pos: { start, end } };
  }

  /** The escape starting at the backslash `b`: its byte value and where the literal goes on. */
  private escape(b: number, litStart: number): { value: number; next: number } {
    const s = this.src;
    const c = s[b + 1];
    if (c === undefined || c === '\n') this.unterminated(litStart);
    if (c in SIMPLE_ESCAPES) return { value: SIMPLE_ESCAPES[c], next: b + 2 };
    if (/[0-7]/.test(c)) {
      let j = b + 1;
      while (j < b + 4 && /[0-7]/.test(s[j] ?? '')) j++;
      const value = parseInt(s.slice(b + 1, j), 8);
      if (value > 0xff) this.fail(`octal escape '${s.slice(b, j)}' at column ${b + 1} is out of range; the largest is '\\377'`, b, j);
      return { value, next: j };
    }
    if (c === 'x') {
      const j = this.run(b + 2, HEX);
      if (j === b + 2) this.fail(`'\\x' at column ${b + 1} must be followed by hexadecimal digits`, b, b + 2);
      const value = parseInt(s.slice(b + 2, j), 16);
      if (value > 0xff) this.fail(`hex escape '${clip(s.slice(b, j))}' at column ${b + 1} is out of range; the largest is '\\xff'`, b, j);
      return { value, next: j };
    }
    const ch = String.fromCodePoint(s.codePointAt(b + 1) ?? 0);
    return this.fail(`unknown escape sequence '\\${ch}' at column ${b + 1}`, b, b + 1 + ch.length);
  }

  private unterminated(start: number): never {
    const quote = this.src[start];
    const what = quote === '"' ? 'string' : 'character';
    return this.fail(`unterminated ${what} literal at column ${start + 1}: it needs a closing ${quote}`, start, start + 1);
  }

  private charLiteral(start: number): Token {
    const s = this.src;
    const values: number[] = [];
    let j = start + 1;
    for (;;) {
      const c = s[j];
      if (c === undefined || c === '\n') this.unterminated(start);
      if (c === "'") break;
      if (c === '\\') {
        const e = this.escape(j, start);
        values.push(e.value);
        j = e.next;
        continue;
      }
      const cp = s.codePointAt(j) ?? 0;
      const ch = String.fromCodePoint(cp);
      // Such a character is several bytes in the guest's UTF-8, i.e. a multi-character constant.
      if (cp > 0x7e) this.fail(`non-ASCII character '${ch}' at column ${j + 1} in a character literal; write its byte as an escape, as in '\\xe9'`, j, j + ch.length);
      values.push(cp);
      j += ch.length;
    }
    this.i = j + 1;
    const text = s.slice(start, this.i);
    const pos = { start, end: this.i };
    if (values.length === 0) this.fail(`empty character literal at column ${start + 1}`, start, this.i);
    if (values.length > 1) this.fail(`multi-character constant ${clip(text)} at column ${start + 1} is not supported; a character literal holds one character`, start, this.i);
    return { kind: 'char', text, value: values[0], pos };
  }

  private stringLiteral(start: number): Token {
    const s = this.src;
    let value = '';
    let j = start + 1;
    for (;;) {
      const c = s[j];
      if (c === undefined || c === '\n') this.unterminated(start);
      if (c === '"') break;
      if (c === '\\') {
        const e = this.escape(j, start);
        value += String.fromCharCode(e.value);
        j = e.next;
        continue;
      }
      value += c;
      j++;
    }
    this.i = j + 1;
    return { kind: 'string', text: s.slice(start, this.i), value, pos: { start, end: this.i } };
  }
}
