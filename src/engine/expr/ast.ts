/**
 * The syntax tree of a C expression as typed in a watch, a hover or the Debug Console
 * (gdb's `print` language, minus what a debugger that never runs guest code cannot do).
 * Parsing knows nothing of the program beyond which names are typedefs; the evaluator
 * resolves names, types and values.
 */

/** 0-based UTF-16 offsets into the source text, `end` exclusive. */
export interface Pos {
  start: number;
  end: number;
}

export type Expr =
  | { kind: 'ident'; name: string; pos: Pos }
  /** `$rip`, `$eflags`: the name without the '$'. */
  | { kind: 'register'; name: string; pos: Pos }
  /**
   * Never negative: `-1` is unary '-' applied to 1, as in C. `long` counts the l/L suffixes;
   * picking the literal's C type (int, long, unsigned long...) from value, radix and suffix is
   * the evaluator's business, so `radix` is kept for it (C types decimal and non-decimal
   * literals differently). The parser always sets it; absent means 10.
   */
  | { kind: 'int'; value: bigint; unsigned: boolean; long: 0 | 1 | 2; radix?: 2 | 8 | 10 | 16; pos: Pos }
  /** The byte value, 0..255: whether '\xff' is -1 or 255 depends on the signedness of char. */
  | { kind: 'char'; value: number; pos: Pos }
  /**
   * Adjacent literals already concatenated. Each char is one byte (escapes give 0..255);
   * non-ASCII text typed as is stays as typed, for the evaluator to encode (UTF-8 in practice).
   */
  | { kind: 'string'; value: string; pos: Pos }
  | { kind: 'member'; object: Expr; name: string; arrow: boolean; pos: Pos }
  | { kind: 'index'; object: Expr; index: Expr; pos: Pos }
  | { kind: 'unary'; op: UnaryOp; operand: Expr; pos: Pos }
  | { kind: 'cast'; type: TypeName; operand: Expr; pos: Pos }
  /** Exactly one of `type` (sizeof(int)) and `operand` (sizeof x, sizeof(x)) is set. */
  | { kind: 'sizeof'; type?: TypeName; operand?: Expr; pos: Pos }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr; pos: Pos }
  | { kind: 'ternary'; cond: Expr; then: Expr; else: Expr; pos: Pos }
  /**
   * The parser only lets an ident, register, member, index or '*' dereference (possibly
   * parenthesised) be a target; whether it is writable is the evaluator's call.
   */
  | { kind: 'assign'; op: AssignOp; target: Expr; value: Expr; pos: Pos }
  /** gdb's artificial array `first@count`: `count` objects laid out from `first`'s address. */
  | { kind: 'array'; first: Expr; count: Expr; pos: Pos }
  /**
   * A kernel helper, the only calls there are (nothing runs in the guest): `per_cpu(var, cpu)`,
   * `per_cpu_ptr(ptr, cpu)`, `this_cpu(var)`, `container_of(ptr, type, member)` and `$task(pid)`.
   * `container_of` carries its type and member path apart from `args`.
   */
  | { kind: 'call'; name: string; dollar: boolean; args: Expr[]; type?: TypeName; member?: string; pos: Pos };

/** The helpers a call may name, with their argument counts. */
export const HELPERS: Record<string, number> = { per_cpu: 2, per_cpu_ptr: 2, this_cpu: 1, this_cpu_ptr: 1, container_of: 3 };
export const DOLLAR_HELPERS: Record<string, number> = { task: 1 };

export type UnaryOp = '*' | '&' | '-' | '+' | '~' | '!';
export type AssignOp = '=' | '+=' | '-=' | '*=' | '/=' | '%=' | '&=' | '|=' | '^=' | '<<=' | '>>=';
export type BinaryOp = '*' | '/' | '%' | '+' | '-' | '<<' | '>>' | '<' | '>' | '<=' | '>=' | '==' | '!=' | '&' | '^' | '|' | '&&' | '||' | ',';

export type BuiltinType =
  | 'void'
  | 'char'
  | 'signed char'
  | 'unsigned char'
  | 'short'
  | 'unsigned short'
  | 'int'
  | 'unsigned int'
  | 'long'
  | 'unsigned long'
  | 'long long'
  | 'unsigned long long'
  | '_Bool'
  | 'float'
  | 'double'
  | 'long double';

export type Derivation =
  | { kind: 'pointer'; qualifiers?: string[] }
  /** `length` is absent for `[]`. */
  | { kind: 'array'; length?: number }
  /** `()` and `(void)` both give no params; parameter names, when written, are dropped. */
  | { kind: 'function'; params: TypeName[]; variadic: boolean };

/**
 * A C type name as written in a cast or sizeof.
 *
 * `derived` lists the derivations innermost first: start from the base type and apply them
 * in order, so the last one is the outermost and says what the whole type is.
 *   `char *[4]`        → [pointer, array 4]         array of 4 pointers to char
 *   `int (*)[3]`       → [array 3, pointer]         pointer to array of 3 int
 *   `int [2][3]`       → [array 3, array 2]         array of 2 arrays of 3 int
 *   `int (*)(void *)`  → [function(void *), pointer] pointer to function returning int
 *   `int *(*)(long)`   → [pointer, function(long), pointer]
 *   `char *const *`    → [pointer const, pointer]   pointer to const pointer to char
 */
export interface TypeName {
  base: { kind: 'struct' | 'union' | 'enum'; tag: string } | { kind: 'named'; name: string } | { kind: 'builtin'; name: BuiltinType };
  derived: Derivation[];
  /** 'const', 'volatile' (and 'restrict') on the base, in source order, without repeats. */
  qualifiers: string[];
  /** The source text of the type, for messages. */
  text: string;
  pos: Pos;
}

/**
 * A compact, unambiguous rendering of a tree: `(-> args flags)`, `(cast <char *> p)`.
 * Types read base first, then the derivations innermost first: `char *[4]` is `<char * [4]>`.
 * For tests and logs, not for users.
 */
export function showExpr(e: Expr): string {
  switch (e.kind) {
    case 'ident':
      return e.name;
    case 'register':
      return `$${e.name}`;
    case 'int':
      return `${e.value}${e.unsigned ? 'u' : ''}${'l'.repeat(e.long)}`;
    case 'char':
      return `(char ${e.value})`;
    case 'string':
      return JSON.stringify(e.value);
    case 'member':
      return `(${e.arrow ? '->' : '.'} ${showExpr(e.object)} ${e.name})`;
    case 'index':
      return `([] ${showExpr(e.object)} ${showExpr(e.index)})`;
    case 'unary':
      return `(${e.op} ${showExpr(e.operand)})`;
    case 'cast':
      return `(cast ${showType(e.type)} ${showExpr(e.operand)})`;
    case 'sizeof':
      return `(sizeof ${e.type ? showType(e.type) : e.operand ? showExpr(e.operand) : '?'})`;
    case 'binary':
      return `(${e.op} ${showExpr(e.left)} ${showExpr(e.right)})`;
    case 'ternary':
      return `(? ${showExpr(e.cond)} ${showExpr(e.then)} ${showExpr(e.else)})`;
    case 'assign':
      return `(${e.op} ${showExpr(e.target)} ${showExpr(e.value)})`;
    case 'array':
      return `(@ ${showExpr(e.first)} ${showExpr(e.count)})`;
    case 'call': {
      const extra = e.type ? [showType(e.type), e.member ?? ''] : [];
      return `(call ${e.dollar ? '$' : ''}${e.name} ${[...e.args.map(showExpr), ...extra].join(' ')})`;
    }
  }
}

export function showType(t: TypeName): string {
  const base = t.base.kind === 'named' || t.base.kind === 'builtin' ? t.base.name : `${t.base.kind} ${t.base.tag}`;
  const parts = [...t.qualifiers, base, ...t.derived.map(showDerivation)];
  return `<${parts.join(' ')}>`;
}

function showDerivation(d: Derivation): string {
  switch (d.kind) {
    case 'pointer':
      return d.qualifiers?.length ? `*${d.qualifiers.join(' ')}` : '*';
    case 'array':
      return `[${d.length ?? ''}]`;
    case 'function': {
      const params = d.params.map(showType);
      if (d.variadic) params.push('...');
      return `(${params.join(', ')})`;
    }
  }
}
