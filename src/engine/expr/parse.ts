/**
 * A recursive-descent parser for C expressions as gdb's `print` takes them: C's operators
 * and precedence, casts and sizeof with full abstract declarators, plus gdb's `$register`
 * and `first@count`. Function calls and `++`/`--` are refused: the debugger never runs guest
 * code, and a watch is re-evaluated at every stop, where a hidden increment would surprise.
 *
 * Every error says what was expected and the 1-based column where it went wrong; the same
 * span is on the error for a caret display (formatSyntaxError).
 */
import { DOLLAR_HELPERS, HELPERS, type AssignOp, type BinaryOp, type BuiltinType, type Derivation, type Expr, type Pos, type TypeName, type UnaryOp } from './ast';
import { at, clip, describe, ExprSyntaxError, Lexer, type Token } from './lexer';

export { ExprSyntaxError } from './lexer';

export interface ParseOptions {
  /** True when `name` is a typedef name in the program (so `(name)x` is a cast, `(name)` alone in sizeof is a type). Called lazily. */
  isTypedef?(name: string): boolean;
}

const BUILTIN_WORDS = new Set(['void', 'char', 'short', 'int', 'long', 'signed', 'unsigned', 'float', 'double', '_Bool', 'bool']);
const QUALIFIERS = new Set(['const', 'volatile', 'restrict']);
const TAG_WORDS = new Set(['struct', 'union', 'enum']);
/** Words that are never a variable, so never asked about with isTypedef. */
const KEYWORDS = new Set([...BUILTIN_WORDS, ...QUALIFIERS, ...TAG_WORDS, 'sizeof']);

const UNARY_OPS = new Set<string>(['*', '&', '-', '+', '~', '!']);
const ASSIGN_OPS = new Set<string>(['=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '<<=', '>>=']);
/**
 * Binary precedence, higher binds tighter. '@' sits where gdb's c-exp.y puts it, between
 * the shifts and + -, so `*p@n+1` is `*p@(n+1)` and `x == *p@2` compares the whole array.
 */
const BINARY_PREC: Readonly<Record<string, number>> = {
  '||': 1, '&&': 2, '|': 3, '^': 4, '&': 5, '==': 6, '!=': 6,
  '<': 7, '>': 7, '<=': 7, '>=': 7, '<<': 8, '>>': 8, '@': 9,
  '+': 10, '-': 10, '*': 11, '/': 11, '%': 11,
};
/** Tokens that can only begin an operand, never continue an expression. */
const OPERAND_START = new Set<Token['kind']>(['ident', 'register', 'int', 'char', 'string']);
/** Kinds the parser accepts left of an assignment; the rest can never denote an object. */
const ASSIGNABLE = new Set<Expr['kind']>(['ident', 'register', 'member', 'index']);

export function parseExpression(text: string, opts: ParseOptions = {}): Expr {
  const p = new Parser(text, opts);
  return p.parseAll();
}

class Parser {
  private readonly lexer: Lexer;
  private k = 0;
  private readonly typedefs = new Map<string, boolean>();

  constructor(
    private readonly src: string,
    private readonly opts: ParseOptions,
  ) {
    this.lexer = new Lexer(src);
  }

  parseAll(): Expr {
    if (this.peek().kind === 'eof') this.fail('empty expression', { start: 0, end: this.src.length });
    const e = this.parseComma();
    const t = this.peek();
    if (t.kind !== 'eof') {
      if (t.text === ')' || t.text === ']') this.fail(`unmatched '${t.text}' ${at(t.pos)}`, t.pos);
      this.fail(`unexpected ${describe(t)} after the expression ${at(t.pos)}`, t.pos);
    }
    return e;
  }

  // ---- tokens ----

  private peek(ahead = 0): Token {
    return this.lexer.token(this.k + ahead);
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.k++;
    return t;
  }

  private isPunct(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'punct' && t.text === text;
  }

  private isWord(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'ident' && t.text === text;
  }

  /** End offset of the last token consumed. */
  private lastEnd(): number {
    return this.k === 0 ? 0 : this.lexer.token(this.k - 1).pos.end;
  }

  private fail(message: string, pos: Pos): never {
    throw new ExprSyntaxError(message, pos, this.src);
  }

  /** "expected X after 'op' at column N, found Y", at the current token. */
  private expected(what: string, hint = ''): never {
    const t = this.peek();
    const after = this.k > 0 ? ` after '${clip(this.lexer.token(this.k - 1).text)}'` : '';
    return this.fail(`expected ${what}${after} ${at(t.pos)}, found ${describe(t)}${hint}`, t.pos);
  }

  private close(open: Token, text: ')' | ']' | ':'): Token {
    if (this.isPunct(text)) return this.next();
    const t = this.peek();
    const role = text === ':' ? 'complete' : 'close';
    return this.fail(`expected '${text}' ${at(t.pos)} to ${role} the '${open.text}' ${at(open.pos)}, found ${describe(t)}`, t.pos);
  }

  private span(start: number): Pos {
    return { start, end: this.lastEnd() };
  }

  private isTypedef(name: string): boolean {
    if (KEYWORDS.has(name) || !this.opts.isTypedef) return false;
    let known = this.typedefs.get(name);
    if (known === undefined) {
      known = this.opts.isTypedef(name);
      this.typedefs.set(name, known);
    }
    return known;
  }

  private startsType(t: Token): boolean {
    if (t.kind !== 'ident') return false;
    return BUILTIN_WORDS.has(t.text) || QUALIFIERS.has(t.text) || TAG_WORDS.has(t.text) || this.isTypedef(t.text);
  }

  // ---- expressions, loosest first ----

  private parseComma(): Expr {
    let left = this.parseAssign();
    while (this.isPunct(',')) {
      this.next();
      const right = this.parseAssign();
      left = { kind: 'binary', op: ',', left, right, pos: { start: left.pos.start, end: right.pos.end } };
    }
    return left;
  }

  private parseAssign(): Expr {
    const target = this.parseTernary();
    const t = this.peek();
    if (t.kind !== 'punct' || !ASSIGN_OPS.has(t.text)) return target;
    if (!assignable(target)) {
      this.fail(`cannot assign to '${clip(this.text(target.pos))}' ${at(target.pos)}: the left of '${t.text}' must be a variable, register, member, array element or '*' dereference`, target.pos);
    }
    this.next();
    const value = this.parseAssign();
    return { kind: 'assign', op: t.text as AssignOp, target, value, pos: { start: target.pos.start, end: value.pos.end } };
  }

  private parseTernary(): Expr {
    const cond = this.parseBinary(1);
    if (!this.isPunct('?')) return cond;
    const q = this.next();
    const then = this.parseComma();
    this.close(q, ':');
    const otherwise = this.parseTernary();
    return { kind: 'ternary', cond, then, else: otherwise, pos: { start: cond.pos.start, end: otherwise.pos.end } };
  }

  private parseBinary(minPrec: number): Expr {
    let left = this.parseCast();
    for (;;) {
      const t = this.peek();
      const prec = t.kind === 'punct' ? BINARY_PREC[t.text] : undefined;
      if (prec === undefined || prec < minPrec) return left;
      this.next();
      const right = this.parseBinary(prec + 1);
      const pos = { start: left.pos.start, end: right.pos.end };
      left = t.text === '@' ? { kind: 'array', first: left, count: right, pos } : { kind: 'binary', op: t.text as BinaryOp, left, right, pos };
    }
  }

  private parseCast(): Expr {
    if (this.isPunct('(') && this.startsType(this.peek(1))) {
      const open = this.next();
      const type = this.parseTypeName(false);
      this.close(open, ')');
      const operand = this.parseCast();
      return { kind: 'cast', type, operand, pos: { start: open.pos.start, end: operand.pos.end } };
    }
    return this.parseUnary();
  }

  private parseUnary(): Expr {
    const t = this.peek();
    if (t.kind === 'punct' && UNARY_OPS.has(t.text)) {
      this.next();
      const operand = this.parseCast();
      return { kind: 'unary', op: t.text as UnaryOp, operand, pos: { start: t.pos.start, end: operand.pos.end } };
    }
    if (t.kind === 'punct' && (t.text === '++' || t.text === '--')) {
      this.next();
      let operand: Expr | undefined;
      try {
        operand = this.parseUnary();
      } catch (err) {
        if (!(err instanceof ExprSyntaxError)) throw err;
      }
      return this.incDec(t, operand);
    }
    if (this.isWord('sizeof')) {
      this.next();
      if (this.isPunct('(') && this.startsType(this.peek(1))) {
        const open = this.next();
        const type = this.parseTypeName(false);
        this.close(open, ')');
        return { kind: 'sizeof', type, pos: this.span(t.pos.start) };
      }
      const operand = this.parseUnary();
      return { kind: 'sizeof', operand, pos: { start: t.pos.start, end: operand.pos.end } };
    }
    return this.parsePostfix();
  }

  private incDec(op: Token, operand: Expr | undefined): never {
    const fix = op.text === '++' ? '+=' : '-=';
    const how = operand ? `write '${clip(this.text(operand.pos))} ${fix} 1'` : `use '${fix} 1'`;
    return this.fail(`'${op.text}' ${at(op.pos)} is not supported; ${how} to change a variable`, op.pos);
  }

  private parsePostfix(): Expr {
    let e = this.parsePrimary();
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'punct') return e;
      if (t.text === '[') {
        this.next();
        const index = this.parseComma();
        this.close(t, ']');
        e = { kind: 'index', object: e, index, pos: this.span(e.pos.start) };
      } else if (t.text === '.' || t.text === '->') {
        this.next();
        const name = this.peek();
        if (name.kind !== 'ident') this.expected('a member name');
        this.next();
        e = { kind: 'member', object: e, name: name.text, arrow: t.text === '->', pos: this.span(e.pos.start) };
      } else if (t.text === '(') {
        const helper = e.kind === 'ident' ? HELPERS[e.name] : e.kind === 'register' ? DOLLAR_HELPERS[e.name] : undefined;
        if (helper === undefined || (e.kind !== 'ident' && e.kind !== 'register')) {
          const pos = { start: e.pos.start, end: t.pos.end };
          this.fail(`calling functions in the guest is not supported: '${clip(this.text(e.pos))}(...)' ${at(pos)} (the kernel helpers are per_cpu, per_cpu_ptr, this_cpu, this_cpu_ptr, container_of and $task)`, pos);
        }
        e = this.parseCall(e.name, e.kind === 'register', helper, e.pos.start, t);
      } else if (t.text === '++' || t.text === '--') {
        this.incDec(t, e);
      } else {
        return e;
      }
    }
  }

  /** `name(args)` for a kernel helper; container_of's second argument is a type, its third a member path. */
  private parseCall(name: string, dollar: boolean, arity: number, start: number, open: Token): Expr {
    this.next();
    const args: Expr[] = [];
    let type: TypeName | undefined;
    let member: string | undefined;
    const shown = `${dollar ? '$' : ''}${name}`;
    for (let i = 0; i < arity; i++) {
      if (i > 0) {
        if (!this.isPunct(',')) this.expected(`',' (${shown} takes ${arity} arguments)`);
        this.next();
      }
      if (name === 'container_of' && i === 1) {
        if (!this.startsType(this.peek())) this.expected(`a type (container_of's second argument, as in 'container_of(p, struct task_struct, tasks)')`);
        type = this.parseTypeName(false);
      } else if (name === 'container_of' && i === 2) {
        member = this.parseMemberPath();
      } else {
        args.push(this.parseAssign());
      }
    }
    if (this.isPunct(',')) this.expected(`')' (${shown} takes ${arity} argument${arity === 1 ? '' : 's'})`);
    this.close(open, ')');
    return { kind: 'call', name, dollar, args, type, member, pos: this.span(start) };
  }

  /** `a.b[2].c`: a member designator, as offsetof takes one. */
  private parseMemberPath(): string {
    let path = '';
    for (;;) {
      const id = this.peek();
      if (id.kind !== 'ident') this.expected('a member name');
      this.next();
      path += id.text;
      while (this.isPunct('[')) {
        const open = this.next();
        const n = this.peek();
        if (n.kind !== 'int') this.expected('an array index (a number)');
        this.next();
        this.close(open, ']');
        path += `[${n.value}]`;
      }
      if (!this.isPunct('.')) return path;
      this.next();
      path += '.';
    }
  }

  private parsePrimary(): Expr {
    const t = this.peek();
    switch (t.kind) {
      case 'ident':
        if (KEYWORDS.has(t.text)) {
          const typeWord = !QUALIFIERS.has(t.text) && t.text !== 'sizeof';
          this.expected('an expression', typeWord ? "; a type goes in parentheses, as in '(type)x' or 'sizeof(type)'" : '');
        }
        this.next();
        return { kind: 'ident', name: t.text, pos: t.pos };
      case 'register':
        this.next();
        return { kind: 'register', name: t.name, pos: t.pos };
      case 'int':
        this.next();
        return { kind: 'int', value: t.value, unsigned: t.unsigned, long: t.long, radix: t.radix, pos: t.pos };
      case 'char':
        this.next();
        return { kind: 'char', value: t.value, pos: t.pos };
      case 'string': {
        let value = '';
        while (this.peek().kind === 'string') {
          const s = this.next();
          if (s.kind === 'string') value += s.value;
        }
        return { kind: 'string', value, pos: this.span(t.pos.start) };
      }
      case 'punct':
        if (t.text === '(') {
          this.next();
          const inner = this.parseComma();
          this.close(t, ')');
          if (inner.kind === 'ident' && OPERAND_START.has(this.peek().kind)) {
            // `(name)x` is only valid as a cast, and name was not a type: the typedef is
            // unknown (or misspelled), which says more than "unexpected 'x'".
            this.fail(`'${inner.name}' ${at(inner.pos)} is not a type name, so '(${inner.name})' cannot be a cast`, inner.pos);
          }
          // The node stands for the parenthesised text, so carets cover the parentheses too.
          return { ...inner, pos: this.span(t.pos.start) };
        }
        break;
      case 'eof':
        break;
    }
    return this.expected('an expression');
  }

  private text(pos: Pos): string {
    return this.src.slice(pos.start, pos.end);
  }

  // ---- type names ----

  /** Specifiers and qualifiers, then an abstract declarator; `named` allows a parameter name. */
  private parseTypeName(named: boolean): TypeName {
    const start = this.peek().pos.start;
    const qualifiers: string[] = [];
    const words: Token[] = [];
    let base: TypeName['base'] | undefined;
    const badCombo = (t: Token): never =>
      this.fail(`'${clip(this.src.slice(start, t.pos.end))}' ${at({ start, end: t.pos.end })} is not a valid combination of type specifiers`, { start, end: t.pos.end });
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'ident') break;
      if (QUALIFIERS.has(t.text)) {
        this.next();
        if (!qualifiers.includes(t.text)) qualifiers.push(t.text);
      } else if (BUILTIN_WORDS.has(t.text)) {
        if (base) badCombo(t);
        this.next();
        words.push(t);
        if (!builtinName(words)) badCombo(t);
      } else if (TAG_WORDS.has(t.text)) {
        if (base || words.length) badCombo(t);
        this.next();
        const tag = this.peek();
        if (tag.kind !== 'ident' || KEYWORDS.has(tag.text)) this.expected('a tag name');
        this.next();
        base = { kind: t.text as 'struct' | 'union' | 'enum', tag: tag.text };
      } else if (!base && !words.length && this.isTypedef(t.text)) {
        this.next();
        base = { kind: 'named', name: t.text };
      } else {
        break;
      }
    }
    if (words.length) base = { kind: 'builtin', name: builtinName(words) as BuiltinType };
    if (!base) return this.expected('a type name');
    const derived = this.parseDeclarator(named);
    const pos = this.span(start);
    return { base, derived, qualifiers, text: this.text(pos), pos };
  }

  /**
   * An abstract declarator, as derivations innermost first (see TypeName in ast.ts). In
   * `P (D) S`, the pointers P apply to the base first, then the suffixes S right to left, and
   * the parenthesised D wraps the result.
   */
  private parseDeclarator(named: boolean): Derivation[] {
    const pointers: Derivation[] = [];
    while (this.isPunct('*')) {
      this.next();
      const quals: string[] = [];
      while (this.peek().kind === 'ident' && QUALIFIERS.has(this.peek().text)) {
        const q = this.next().text;
        if (!quals.includes(q)) quals.push(q);
      }
      pointers.push(quals.length ? { kind: 'pointer', qualifiers: quals } : { kind: 'pointer' });
    }
    let inner: Derivation[] = [];
    const after = this.peek(1);
    if (this.isPunct('(') && after.kind === 'punct' && (after.text === '*' || after.text === '(' || after.text === '[')) {
      const open = this.next();
      inner = this.parseDeclarator(named);
      this.close(open, ')');
    } else if (named && this.peek().kind === 'ident' && !KEYWORDS.has(this.peek().text)) {
      this.next();
    }
    const suffixes: Derivation[] = [];
    for (;;) {
      if (this.isPunct('[')) {
        const open = this.next();
        suffixes.push(this.isPunct(']') ? { kind: 'array' } : { kind: 'array', length: this.arrayLength() });
        this.close(open, ']');
      } else if (this.isPunct('(')) {
        const open = this.next();
        const fn = this.parseParams();
        this.close(open, ')');
        suffixes.push(fn);
      } else {
        break;
      }
    }
    return [...pointers, ...suffixes.reverse(), ...inner];
  }

  private arrayLength(): number {
    const t = this.peek();
    if (t.kind !== 'int') this.expected('an array length', '; it must be an integer literal');
    if (t.value > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`array length '${clip(t.text)}' ${at(t.pos)} is too large`, t.pos);
    this.next();
    return Number(t.value);
  }

  private parseParams(): Derivation {
    const params: TypeName[] = [];
    let variadic = false;
    if (this.isWord('void') && this.isPunct(')', 1)) {
      this.next();
      return { kind: 'function', params, variadic };
    }
    if (this.isPunct(')')) return { kind: 'function', params, variadic };
    for (;;) {
      if (this.isPunct('...')) {
        this.next();
        variadic = true;
        break;
      }
      if (!this.startsType(this.peek())) this.expected('a parameter type');
      const param = this.parseTypeName(true);
      if (param.base.kind === 'builtin' && param.base.name === 'void' && !param.derived.length) {
        this.fail(`'void' ${at(param.pos)} must be the only parameter when it stands for "no parameters"`, param.pos);
      }
      params.push(param);
      if (!this.isPunct(',')) break;
      this.next();
    }
    return { kind: 'function', params, variadic };
  }
}

function assignable(e: Expr): boolean {
  return ASSIGNABLE.has(e.kind) || (e.kind === 'unary' && e.op === '*');
}

/** The canonical spelling of a run of builtin type words, or undefined if C rejects it. */
function builtinName(words: Token[]): BuiltinType | undefined {
  const n: Record<string, number> = {};
  for (const w of words) {
    const word = w.text === 'bool' ? '_Bool' : w.text;
    n[word] = (n[word] ?? 0) + 1;
  }
  const count = (w: string): number => n[w] ?? 0;
  const only = (...allowed: string[]): boolean => Object.keys(n).every((w) => allowed.includes(w));
  const sign = count('signed') ? 'signed' : count('unsigned') ? 'unsigned' : undefined;
  const unsigned = sign === 'unsigned' ? 'unsigned ' : '';
  if (Object.entries(n).some(([w, c]) => c > (w === 'long' ? 2 : 1)) || (count('signed') && count('unsigned'))) return undefined;
  for (const lone of ['void', '_Bool', 'float'] as const) if (count(lone)) return only(lone) ? lone : undefined;
  if (count('double')) return only('double', 'long') && count('long') < 2 ? (count('long') ? 'long double' : 'double') : undefined;
  if (count('char')) return only('char', 'signed', 'unsigned') ? (sign ? `${sign} char` : 'char') : undefined;
  if (count('short')) return only('short', 'int', 'signed', 'unsigned') ? (unsigned ? 'unsigned short' : 'short') : undefined;
  if (count('long') === 2) return `${unsigned}long long` as BuiltinType;
  if (count('long')) return `${unsigned}long` as BuiltinType;
  return unsigned ? 'unsigned int' : 'int';
}

/** The message, the source (a window of it when long) and carets under the bad span. */
export function formatSyntaxError(e: ExprSyntaxError): string {
  const WIDTH = 100;
  const LEAD = 40;
  const flat = e.source.replace(/[\t\n\r\v\f]/g, ' ');
  const from = flat.length <= WIDTH ? 0 : Math.max(0, Math.min(e.pos.start - LEAD, flat.length - WIDTH));
  const to = Math.min(flat.length, from + WIDTH);
  const shown = `${from > 0 ? '…' : ''}${flat.slice(from, to)}${to < flat.length ? '…' : ''}`;
  const indent = e.pos.start - from + (from > 0 ? 1 : 0);
  const width = Math.max(1, Math.min(e.pos.end, to) - e.pos.start);
  return `${e.message}\n  ${shown}\n  ${' '.repeat(indent)}${'^'.repeat(width)}`;
}
