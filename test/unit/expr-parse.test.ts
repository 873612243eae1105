import * as assert from 'node:assert/strict';
import { showExpr, showType, type Expr, type TypeName } from '../../src/engine/expr/ast';
import { ExprSyntaxError, formatSyntaxError, parseExpression, type ParseOptions } from '../../src/engine/expr/parse';
import { ErrorCode, UserError } from '../../src/util/errors';

const TYPEDEFS = new Set(['u64', 'pid_t', 'size_t', 'atomic_t']);
const kernel: ParseOptions = { isTypedef: (n) => TYPEDEFS.has(n) };

function show(text: string, opts: ParseOptions = kernel): string {
  return showExpr(parseExpression(text, opts));
}

function parseError(text: string, opts: ParseOptions = kernel): ExprSyntaxError {
  try {
    parseExpression(text, opts);
  } catch (e) {
    if (e instanceof ExprSyntaxError) return e;
    throw e;
  }
  return assert.fail(`'${text}' parsed without error`);
}

/** The error's message and its span, as `[start, end)`. */
function fails(text: string, message: string, start: number, end: number, opts: ParseOptions = kernel): void {
  const e = parseError(text, opts);
  assert.equal(e.message, message, `message for ${JSON.stringify(text)}`);
  assert.deepEqual(e.pos, { start, end }, `pos for ${JSON.stringify(text)}`);
  assert.equal(e.source, text);
}

function castType(text: string, opts: ParseOptions = kernel): TypeName {
  const e = parseExpression(text, opts);
  if (e.kind !== 'cast') return assert.fail(`'${text}' is a ${e.kind}, not a cast`);
  return e.type;
}

describe('expr/parse', () => {
  describe('primary and postfix expressions', () => {
    it('reads identifiers, registers and member chains', () => {
      assert.equal(show('init_task'), 'init_task');
      assert.equal(show('$rip'), '$rip');
      assert.equal(show('args->flags'), '(-> args flags)');
      assert.equal(show('init_task.comm'), '(. init_task comm)');
      assert.equal(show('a->b.c[1].d'), '(. ([] (. (-> a b) c) 1) d)');
      assert.equal(show('$rsp[0]'), '([] $rsp 0)');
      assert.equal(show('a[i][j]'), '([] ([] a i) j)');
      assert.equal(show('a[i, j]'), '([] a (, i j))');
    });

    it('gives register nodes the name without the sigil', () => {
      assert.deepEqual(parseExpression('$eflags'), { kind: 'register', name: 'eflags', pos: { start: 0, end: 7 } });
    });

    it('accepts keywords as member names, which live in their own namespace', () => {
      assert.equal(show('x.int'), '(. x int)');
      assert.equal(show('p->bool'), '(-> p bool)');
    });

    it('records spans for every node', () => {
      const e = parseExpression('  a->b [ 2 ] ');
      assert.equal(e.kind, 'index');
      assert.deepEqual(e.pos, { start: 2, end: 12 });
      if (e.kind !== 'index') return;
      assert.deepEqual(e.object.pos, { start: 2, end: 6 });
      assert.deepEqual(e.index.pos, { start: 9, end: 10 });
    });

    it('widens a parenthesised node to cover its parentheses', () => {
      const e = parseExpression('(a + b) * c');
      assert.equal(showExpr(e), '(* (+ a b) c)');
      if (e.kind !== 'binary') return assert.fail(e.kind);
      assert.deepEqual(e.left.pos, { start: 0, end: 7 });
      assert.deepEqual(e.pos, { start: 0, end: 11 });
      assert.equal(show('((x))'), 'x');
      assert.deepEqual(parseExpression('((x))').pos, { start: 0, end: 5 });
    });
  });

  describe('operators', () => {
    it('orders the binary operators as C does', () => {
      assert.equal(show('a * b + c * d'), '(+ (* a b) (* c d))');
      assert.equal(show('a + b << c'), '(<< (+ a b) c)');
      assert.equal(show('a << 1 < b == c & d ^ e | f && g || h'), '(|| (&& (| (^ (& (== (< (<< a 1) b) c) d) e) f) g) h)');
      assert.equal(show('a || b && c | d ^ e & f == g < h << i + j * k'), '(|| a (&& b (| c (^ d (& e (== f (< g (<< h (+ i (* j k))))))))))');
      assert.equal(show('a % b / c'), '(/ (% a b) c)');
      assert.equal(show('a != b >= c'), '(!= a (>= b c))');
    });

    it('associates binary operators to the left', () => {
      assert.equal(show('a - b - c'), '(- (- a b) c)');
      assert.equal(show('a / b / c'), '(/ (/ a b) c)');
      assert.equal(show('a >> 1 >> 2'), '(>> (>> a 1) 2)');
      assert.equal(show('a, b, c'), '(, (, a b) c)');
    });

    it('applies unary operators to their cast-expression operand, before any binary operator', () => {
      assert.equal(show('-a * b'), '(* (- a) b)');
      assert.equal(show('!x || ~y && -z'), '(|| (! x) (&& (~ y) (- z)))');
      assert.equal(show('*p->next'), '(* (-> p next))');
      assert.equal(show('&init_task.tasks'), '(& (. init_task tasks))');
      assert.equal(show('**pp'), '(* (* pp))');
      assert.equal(show('- -1'), '(- (- 1))');
      assert.equal(show('+x'), '(+ x)');
      assert.equal(show('a - -b'), '(- a (- b))');
    });

    it('keeps negative literals as unary minus on a non-negative value', () => {
      const e = parseExpression('-1');
      assert.equal(e.kind, 'unary');
      if (e.kind === 'unary') assert.deepEqual(e.operand, { kind: 'int', value: 1n, unsigned: false, long: 0, radix: 10, pos: { start: 1, end: 2 } });
    });

    it('nests ternaries to the right and allows a comma in the middle', () => {
      assert.equal(show('a ? b : c ? d : e'), '(? a b (? c d e))');
      assert.equal(show('a ? b ? c : d : e'), '(? a (? b c d) e)');
      assert.equal(show('a ? b, c : d'), '(? a (, b c) d)');
      assert.equal(show('1 ? 2 : 3, 4'), '(, (? 1 2 3) 4)');
      assert.equal(show('a || b ? c : d'), '(? (|| a b) c d)');
      assert.equal(show('x = a ? b : c'), '(= x (? a b c))');
    });

    it('parses assignments right to left, below the ternary and above the comma', () => {
      assert.equal(show('a = b = c'), '(= a (= b c))');
      assert.equal(show('a, b = c'), '(, a (= b c))');
      assert.equal(show('x += 1'), '(+= x 1)');
      assert.equal(show('p->flags |= 1 << 3'), '(|= (-> p flags) (<< 1 3))');
      for (const op of ['=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '<<=', '>>=']) {
        assert.equal(show(`x ${op} y`), `(${op} x y)`);
      }
      assert.equal(show('*p = 0'), '(= (* p) 0)');
      assert.equal(show('a[1] = $rax = 2'), '(= ([] a 1) (= $rax 2))');
      assert.equal(show('(x) = 1'), '(= x 1)');
    });

    it("puts '@' between the shifts and + -, as gdb does", () => {
      assert.equal(show('*p@3'), '(@ (* p) 3)');
      assert.equal(show('p->data[0]@len'), '(@ ([] (-> p data) 0) len)');
      assert.equal(show('*p@n+1'), '(@ (* p) (+ n 1))');
      assert.equal(show('*p@n*2'), '(@ (* p) (* n 2))');
      assert.equal(show('*p@n<<1'), '(<< (@ (* p) n) 1)');
      assert.equal(show('x == *p@2'), '(== x (@ (* p) 2))');
      assert.equal(show('x = *p@2'), '(= x (@ (* p) 2))');
      assert.equal(show('c ? *p@2 : *q@2'), '(? c (@ (* p) 2) (@ (* q) 2))');
      assert.equal(show('a@2@3'), '(@ (@ a 2) 3)');
      assert.equal(show('*p@2, 1'), '(, (@ (* p) 2) 1)');
      const e = parseExpression('*p@3');
      assert.equal(e.kind, 'array');
      if (e.kind === 'array') {
        assert.equal(e.first.kind, 'unary');
        assert.deepEqual(e.pos, { start: 0, end: 4 });
      }
    });
  });

  describe('literals', () => {
    it('reads every radix and suffix', () => {
      const lit = (text: string): Expr => parseExpression(text);
      assert.deepEqual(lit('42'), { kind: 'int', value: 42n, unsigned: false, long: 0, radix: 10, pos: { start: 0, end: 2 } });
      assert.deepEqual(lit('0x1F'), { kind: 'int', value: 31n, unsigned: false, long: 0, radix: 16, pos: { start: 0, end: 4 } });
      assert.deepEqual(lit('0XffUL'), { kind: 'int', value: 255n, unsigned: true, long: 1, radix: 16, pos: { start: 0, end: 6 } });
      assert.deepEqual(lit('017'), { kind: 'int', value: 15n, unsigned: false, long: 0, radix: 8, pos: { start: 0, end: 3 } });
      assert.deepEqual(lit('0b101'), { kind: 'int', value: 5n, unsigned: false, long: 0, radix: 2, pos: { start: 0, end: 5 } });
      assert.deepEqual(lit('0B11u'), { kind: 'int', value: 3n, unsigned: true, long: 0, radix: 2, pos: { start: 0, end: 5 } });
      assert.deepEqual(lit('0'), { kind: 'int', value: 0n, unsigned: false, long: 0, radix: 8, pos: { start: 0, end: 1 } });
      const suffixes: Array<[string, string]> = [
        ['1u', '1u'], ['1U', '1u'], ['1l', '1l'], ['1L', '1l'], ['1ll', '1ll'], ['1LL', '1ll'],
        ['1ul', '1ul'], ['1lu', '1ul'], ['1ULL', '1ull'], ['1llu', '1ull'], ['1LLU', '1ull'], ['1uLL', '1ull'], ['1Ul', '1ul'],
      ];
      for (const [text, shown] of suffixes) assert.equal(show(text), shown, text);
    });

    it('reads the full 64-bit range', () => {
      assert.equal(show('18446744073709551615ULL'), '18446744073709551615ull');
      assert.equal(show('0xffffffffffffffff'), '18446744073709551615');
      assert.equal(show('0xffff888000000000'), '18446612682070032384');
      assert.equal(show('01777777777777777777777'), '18446744073709551615');
    });

    it('reads character literals and their escapes', () => {
      const cases: Array<[string, number]> = [
        ["'a'", 97], ["'\\n'", 10], ["'\\t'", 9], ["'\\r'", 13], ["'\\0'", 0], ["'\\x41'", 0x41], ["'\\xff'", 255],
        ["'\\101'", 65], ["'\\7'", 7], ["'\\\\'", 92], ["'\\''", 39], ["'\"'", 34], ["'\\\"'", 34], ["'\\a'", 7],
        ["'\\b'", 8], ["'\\f'", 12], ["'\\v'", 11], ["'\\e'", 27], ["'\\?'", 63], ["' '", 32],
      ];
      for (const [text, value] of cases) {
        assert.deepEqual(parseExpression(text), { kind: 'char', value, pos: { start: 0, end: text.length } }, text);
      }
    });

    it('reads strings with escapes and concatenates adjacent literals', () => {
      assert.deepEqual(parseExpression('"a\\tb"'), { kind: 'string', value: 'a\tb', pos: { start: 0, end: 6 } });
      assert.deepEqual(parseExpression('"ab" "c\\n"  "\\x41\\101\\0"'), { kind: 'string', value: 'abc\nAA\0', pos: { start: 0, end: 24 } });
      assert.equal(show('"it\'s \\"q\\""'), JSON.stringify('it\'s "q"'));
      assert.equal(show('""'), '""');
      assert.equal(show('"\\377"'), JSON.stringify('\xff'));
    });

    it('ends an octal escape after three digits', () => {
      assert.equal(show('"\\1012"'), JSON.stringify('A2'));
    });
  });

  describe('casts and parenthesised expressions', () => {
    it('casts to builtin, struct and typedef types', () => {
      assert.equal(show('(struct task_struct *)0xffff888000000000'), '(cast <struct task_struct *> 18446612682070032384)');
      assert.equal(show('(unsigned long)x'), '(cast <unsigned long> x)');
      assert.equal(show('(char)65'), '(cast <char> 65)');
      assert.equal(show('(u64)x'), '(cast <u64> x)');
      assert.equal(show('(const char *)p'), '(cast <const char *> p)');
      assert.equal(show('(long)-1'), '(cast <long> (- 1))');
      assert.equal(show('(union u *)p'), '(cast <union u *> p)');
      assert.equal(show('(enum pid_type)1'), '(cast <enum pid_type> 1)');
      assert.equal(show('(pid_t)(x)'), '(cast <pid_t> x)');
    });

    it('binds a cast tighter than binary operators and looser than postfix ones', () => {
      assert.equal(show('(long)a + b'), '(+ (cast <long> a) b)');
      assert.equal(show('(char *)p->name'), '(cast <char *> (-> p name))');
      assert.equal(show('(int)(char)x'), '(cast <int> (cast <char> x))');
      assert.equal(show('*(int *)p'), '(* (cast <int *> p))');
      assert.equal(show('((struct file *)f)->f_op'), '(-> (cast <struct file *> f) f_op)');
    });

    it('treats (name) as a cast only when name is a typedef', () => {
      assert.equal(show('(x) - 1'), '(- x 1)');
      assert.equal(show('(u64) - 1'), '(cast <u64> (- 1))');
      assert.equal(show('(u64) - 1', {}), '(- u64 1)');
      assert.equal(show('(u64)*p'), '(cast <u64> (* p))');
      assert.equal(show('(u64)*p', {}), '(* u64 p)');
      assert.equal(show('(size_t)&x'), '(cast <size_t> (& x))');
      assert.equal(show('(size_t)&x', {}), '(& size_t x)');
    });

    it('asks isTypedef only about identifiers right after a parenthesis, once each', () => {
      const asked: string[] = [];
      const opts: ParseOptions = { isTypedef: (n) => (asked.push(n), n === 'u64') };
      assert.equal(show('a + b * c->d', opts), '(+ a (* b (-> c d)))');
      assert.deepEqual(asked, []);
      assert.equal(show('(int)x + (struct s *)y', opts), '(+ (cast <int> x) (cast <struct s *> y))');
      assert.deepEqual(asked, []);
      assert.equal(show('(u64)a + (u64)b + (a)', opts), '(+ (+ (cast <u64> a) (cast <u64> b)) a)');
      assert.deepEqual(asked, ['u64', 'a']);
    });

    it('describes the type with base, qualifiers, text and span', () => {
      const t = castType(' ( const struct task_struct * ) p');
      assert.deepEqual(t.base, { kind: 'struct', tag: 'task_struct' });
      assert.deepEqual(t.qualifiers, ['const']);
      assert.deepEqual(t.derived, [{ kind: 'pointer' }]);
      assert.equal(t.text, 'const struct task_struct *');
      assert.deepEqual(t.pos, { start: 3, end: 29 });
      const e = parseExpression(' ( const struct task_struct * ) p');
      assert.deepEqual(e.pos, { start: 1, end: 33 });
    });

    it('spells builtin types canonically, whatever the word order', () => {
      const cases: Array<[string, string]> = [
        ['void', 'void'], ['char', 'char'], ['signed char', 'signed char'], ['char signed', 'signed char'], ['unsigned char', 'unsigned char'],
        ['short', 'short'], ['short int', 'short'], ['signed short int', 'short'], ['unsigned short', 'unsigned short'], ['int short unsigned', 'unsigned short'],
        ['int', 'int'], ['signed', 'int'], ['signed int', 'int'], ['unsigned', 'unsigned int'], ['int unsigned', 'unsigned int'],
        ['long', 'long'], ['long int', 'long'], ['signed long', 'long'], ['long unsigned int', 'unsigned long'], ['unsigned long', 'unsigned long'],
        ['long long', 'long long'], ['long long int', 'long long'], ['int long long', 'long long'], ['long int long', 'long long'],
        ['unsigned long long', 'unsigned long long'], ['long long unsigned int', 'unsigned long long'],
        ['_Bool', '_Bool'], ['bool', '_Bool'], ['float', 'float'], ['double', 'double'], ['long double', 'long double'], ['double long', 'long double'],
      ];
      for (const [text, name] of cases) assert.deepEqual(castType(`(${text})x`).base, { kind: 'builtin', name }, text);
    });

    it('keeps qualifiers on the base and on each pointer', () => {
      const t = castType('(char const volatile * const * volatile const)p');
      assert.deepEqual(t.qualifiers, ['const', 'volatile']);
      assert.deepEqual(t.derived, [{ kind: 'pointer', qualifiers: ['const'] }, { kind: 'pointer', qualifiers: ['volatile', 'const'] }]);
      assert.deepEqual(castType('(const const int)x').qualifiers, ['const']);
      assert.deepEqual(castType('(u64 const)x').base, { kind: 'named', name: 'u64' });
      assert.deepEqual(castType('(u64 const)x').qualifiers, ['const']);
    });
  });

  describe('derived types (innermost first, the last entry is the whole type)', () => {
    it('reads an array of pointers and a pointer to an array the way C does', () => {
      assert.deepEqual(castType('(char *[4])x').derived, [{ kind: 'pointer' }, { kind: 'array', length: 4 }]);
      assert.deepEqual(castType('(int (*)[3])x').derived, [{ kind: 'array', length: 3 }, { kind: 'pointer' }]);
      assert.equal(showType(castType('(char *[4])x')), '<char * [4]>');
      assert.equal(showType(castType('(int (*)[3])x')), '<int [3] *>');
    });

    it('reads multidimensional arrays with the rightmost bound innermost', () => {
      assert.deepEqual(castType('(int [2][3])x').derived, [{ kind: 'array', length: 3 }, { kind: 'array', length: 2 }]);
      assert.deepEqual(castType('(int (*)[2][3])x').derived, [{ kind: 'array', length: 3 }, { kind: 'array', length: 2 }, { kind: 'pointer' }]);
      assert.deepEqual(castType('(int [])x').derived, [{ kind: 'array' }]);
    });

    it('reads function pointers with their parameters', () => {
      const t = castType('(int (*)(void *))fn');
      assert.equal(t.derived.length, 2);
      const [fn, ptr] = t.derived;
      assert.deepEqual(ptr, { kind: 'pointer' });
      if (fn.kind !== 'function') return assert.fail(fn.kind);
      assert.equal(fn.variadic, false);
      assert.equal(fn.params.length, 1);
      assert.deepEqual(fn.params[0].base, { kind: 'builtin', name: 'void' });
      assert.deepEqual(fn.params[0].derived, [{ kind: 'pointer' }]);
      assert.equal(fn.params[0].text, 'void *');
      assert.deepEqual(fn.params[0].pos, { start: 9, end: 15 });
      assert.equal(showType(t), '<int (<void *>) *>');
    });

    it('reads nested, named, variadic and empty parameter lists', () => {
      assert.equal(showType(castType('(int *(*)(long, ...))f')), '<int * (<long>, ...) *>');
      assert.equal(showType(castType('(void (*)(int (*cb)(void), u64 n))f')), '<void (<int () *>, <u64>) *>');
      assert.equal(showType(castType('(void (*)(void))f')), '<void () *>');
      assert.equal(showType(castType('(void (*)())f')), '<void () *>');
      assert.equal(showType(castType('(void (*[4])(int))f')), '<void (<int>) * [4]>');
      assert.equal(showType(castType('(char *(*(*)(void))[2])f')), '<char * [2] * () *>');
    });

    it('takes type names in sizeof', () => {
      assert.equal(show('sizeof(int *)'), '(sizeof <int *>)');
      assert.equal(show('sizeof(struct foo)'), '(sizeof <struct foo>)');
      assert.equal(show('sizeof(char *const *)'), '(sizeof <char *const *>)');
      assert.equal(show('sizeof(u64)'), '(sizeof <u64>)');
      assert.equal(show('sizeof(u64)', {}), '(sizeof u64)');
    });
  });

  describe('sizeof', () => {
    it('takes an expression with or without parentheses', () => {
      assert.equal(show('sizeof x'), '(sizeof x)');
      assert.equal(show('sizeof(x)'), '(sizeof x)');
      assert.equal(show('sizeof *p'), '(sizeof (* p))');
      assert.equal(show('sizeof p->comm'), '(sizeof (-> p comm))');
      assert.equal(show('sizeof (x)[0]'), '(sizeof ([] x 0))');
      assert.equal(show('sizeof sizeof x'), '(sizeof (sizeof x))');
    });

    it('binds tighter than binary operators', () => {
      assert.equal(show('sizeof x + 1'), '(+ (sizeof x) 1)');
      assert.equal(show('sizeof(int) * 2'), '(* (sizeof <int>) 2)');
      assert.equal(show('sizeof init_task.comm / sizeof init_task.comm[0]'), '(/ (sizeof (. init_task comm)) (sizeof ([] (. init_task comm) 0)))');
    });

    it('sets exactly one of type and operand, and spans the whole form', () => {
      const t = parseExpression('sizeof ( int )');
      assert.equal(t.kind, 'sizeof');
      if (t.kind === 'sizeof') {
        assert.equal(t.operand, undefined);
        assert.equal(t.type?.text, 'int');
        assert.deepEqual(t.pos, { start: 0, end: 14 });
      }
      const x = parseExpression('sizeof x');
      if (x.kind !== 'sizeof') return assert.fail(x.kind);
      assert.equal(x.type, undefined);
      assert.deepEqual(x.operand, { kind: 'ident', name: 'x', pos: { start: 7, end: 8 } });
      assert.deepEqual(x.pos, { start: 0, end: 8 });
    });
  });

  describe('errors', () => {
    it('names the missing piece and where it should be', () => {
      fails('args->', "expected a member name after '->' at column 7, found end of expression", 6, 6);
      fails('init_task.', "expected a member name after '.' at column 11, found end of expression", 10, 10);
      fails('p->3', "expected a member name after '->' at column 4, found '3'", 3, 4);
      fails('1 +', "expected an expression after '+' at column 4, found end of expression", 3, 3);
      fails('1 + )', "expected an expression after '+' at column 5, found ')'", 4, 5);
      fails('a * / b', "expected an expression after '*' at column 5, found '/'", 4, 5);
      fails(')', "expected an expression at column 1, found ')'", 0, 1);
      fails('sizeof', "expected an expression after 'sizeof' at column 7, found end of expression", 6, 6);
      fails('(char)', "expected an expression after ')' at column 7, found end of expression", 6, 6);
      fails('x = ', "expected an expression after '=' at column 5, found end of expression", 4, 4);
    });

    it('points at the unclosed bracket as well as the place it should close', () => {
      fails('(struct task_struct *', "expected ')' at column 22 to close the '(' at column 1, found end of expression", 21, 21);
      fails('((a)', "expected ')' at column 5 to close the '(' at column 1, found end of expression", 4, 4);
      fails('1+(2 3', "expected ')' at column 6 to close the '(' at column 3, found '3'", 5, 6);
      fails('a[1', "expected ']' at column 4 to close the '[' at column 2, found end of expression", 3, 3);
      fails('x ? y', "expected ':' at column 6 to complete the '?' at column 3, found end of expression", 5, 5);
      fails('(a ? b)', "expected ':' at column 7 to complete the '?' at column 4, found ')'", 6, 7);
      fails('(int x)', "expected ')' at column 6 to close the '(' at column 1, found 'x'", 5, 6);
    });

    it('rejects trailing text and stray closers', () => {
      fails('a b', "unexpected 'b' after the expression at column 3", 2, 3);
      fails('1 2', "unexpected '2' after the expression at column 3", 2, 3);
      fails('x "s"', 'unexpected "s" after the expression at column 3', 2, 5);
      fails('a)', "unmatched ')' at column 2", 1, 2);
      fails('a]', "unmatched ']' at column 2", 1, 2);
      fails('a : b', "unexpected ':' after the expression at column 3", 2, 3);
    });

    it('rejects empty input', () => {
      fails('', 'empty expression', 0, 0);
      fails('  \t', 'empty expression', 0, 3);
    });

    it('refuses function calls, pointing at the callee', () => {
      fails('foo(1)', "calling functions in the guest is not supported: 'foo(...)' at column 1 (the kernel helpers are per_cpu, per_cpu_ptr, this_cpu, this_cpu_ptr, container_of and $task)", 0, 4);
      fails('x + ops->open()', "calling functions in the guest is not supported: 'ops->open(...)' at column 5 (the kernel helpers are per_cpu, per_cpu_ptr, this_cpu, this_cpu_ptr, container_of and $task)", 4, 14);
      fails('(x)(y)', "calling functions in the guest is not supported: '(x)(...)' at column 1 (the kernel helpers are per_cpu, per_cpu_ptr, this_cpu, this_cpu_ptr, container_of and $task)", 0, 4);
    });

    it('parses the kernel helpers as calls: per_cpu, this_cpu, container_of with its type and member path, $task', () => {
      assert.equal(show('per_cpu(runqueues, 1).curr'), '(. (call per_cpu runqueues 1) curr)');
      assert.equal(show('this_cpu_ptr(&runqueues)->nr_running'), '(-> (call this_cpu_ptr (& runqueues)) nr_running)');
      assert.equal(show('container_of(p->next, struct task_struct, se.group_node)'), '(call container_of (-> p next) <struct task_struct> se.group_node)');
      assert.equal(show('container_of(p, struct foo, a[2].b)->x'), '(-> (call container_of p <struct foo> a[2].b) x)');
      assert.equal(show('$task(1)->comm'), '(-> (call $task 1) comm)');
      assert.equal(show('$current->pid'), '(-> $current pid)');
    });

    it('says what a kernel helper takes when it is given something else', () => {
      fails('per_cpu(x)', "expected ',' (per_cpu takes 2 arguments) after 'x' at column 10, found ')'", 9, 10);
      fails('this_cpu(x, 1)', "expected ')' (this_cpu takes 1 argument) after 'x' at column 11, found ','", 10, 11);
      fails('container_of(p, 5, m)', "expected a type (container_of's second argument, as in 'container_of(p, struct task_struct, tasks)') after ',' at column 17, found '5'", 16, 17);
      fails('$task(1, 2)', "expected ')' ($task takes 1 argument) after '1' at column 8, found ','", 7, 8);
    });

    it('refuses ++ and --, suggesting the assignment to use', () => {
      fails('x++', "'++' at column 2 is not supported; write 'x += 1' to change a variable", 1, 3);
      fails('a[i--]', "'--' at column 4 is not supported; write 'i -= 1' to change a variable", 3, 5);
      fails('++p->x', "'++' at column 1 is not supported; write 'p->x += 1' to change a variable", 0, 2);
      fails('--', "'--' at column 1 is not supported; use '-= 1' to change a variable", 0, 2);
    });

    it('refuses assignment to what cannot be an object', () => {
      fails('(a + b) = 3', "cannot assign to '(a + b)' at column 1: the left of '=' must be a variable, register, member, array element or '*' dereference", 0, 7);
      fails('1 += x', "cannot assign to '1' at column 1: the left of '+=' must be a variable, register, member, array element or '*' dereference", 0, 1);
      fails('a ? b : c = d', "cannot assign to 'a ? b : c' at column 1: the left of '=' must be a variable, register, member, array element or '*' dereference", 0, 9);
    });

    it('reports bad integer literals at the offending characters', () => {
      fails('0x', "hexadecimal literal '0x' at column 1 has no digits", 0, 2);
      fails('0xg', "hexadecimal literal '0xg' at column 1 has no digits", 0, 3);
      fails('0b', "binary literal '0b' at column 1 has no digits", 0, 2);
      fails('08', "invalid digit '8' at column 2 in octal literal '08'", 1, 2);
      fails('x + 0779', "invalid digit '9' at column 8 in octal literal '0779'", 7, 8);
      fails('0b102', "invalid digit '2' at column 5 in binary literal '0b102'", 4, 5);
      fails('123abc', "invalid suffix 'abc' at column 4 on integer literal '123abc'", 3, 6);
      fails('1lL', "invalid suffix 'lL' at column 2 on integer literal '1lL'", 1, 3);
      fails('1uu', "invalid suffix 'uu' at column 2 on integer literal '1uu'", 1, 3);
      fails('1lul', "invalid suffix 'lul' at column 2 on integer literal '1lul'", 1, 4);
      fails('18446744073709551616', "integer literal '18446744073709551616' at column 1 does not fit in 64 bits", 0, 20);
      fails('0x10000000000000000', "integer literal '0x10000000000000000' at column 1 does not fit in 64 bits", 0, 19);
    });

    it('refuses floating-point literals rather than misreading them', () => {
      fails('1.5', "floating-point literal '1.5' at column 1 is not supported; only integers are", 0, 3);
      fails('x * .5', "floating-point literal '.5' at column 5 is not supported; only integers are", 4, 6);
      fails('1e5', "floating-point literal '1e5' at column 1 is not supported; only integers are", 0, 3);
      fails('2e+3', "floating-point literal '2e+3' at column 1 is not supported; only integers are", 0, 4);
      fails('0x1p3', "floating-point literal '0x1p3' at column 1 is not supported; only integers are", 0, 5);
      assert.equal(show('0xe+1'), '(+ 14 1)');
    });

    it('reports bad character and string literals', () => {
      fails("'ab'", "multi-character constant 'ab' at column 1 is not supported; a character literal holds one character", 0, 4);
      fails("''", 'empty character literal at column 1', 0, 2);
      fails("x == 'a", "unterminated character literal at column 6: it needs a closing '", 5, 6);
      fails('"abc', 'unterminated string literal at column 1: it needs a closing "', 0, 1);
      fails('"abc\\', 'unterminated string literal at column 1: it needs a closing "', 0, 1);
      fails("'\\", "unterminated character literal at column 1: it needs a closing '", 0, 1);
      fails('"ab\ncd"', 'unterminated string literal at column 1: it needs a closing "', 0, 1);
      fails("'\\q'", "unknown escape sequence '\\q' at column 2", 1, 3);
      fails("'\\777'", "octal escape '\\777' at column 2 is out of range; the largest is '\\377'", 1, 5);
      fails('"\\x100"', "hex escape '\\x100' at column 2 is out of range; the largest is '\\xff'", 1, 6);
      fails('"\\xz"', "'\\x' at column 2 must be followed by hexadecimal digits", 1, 3);
      fails("'é'", "non-ASCII character 'é' at column 2 in a character literal; write its byte as an escape, as in '\\xe9'", 1, 2);
    });

    it('names unknown characters, escaping invisible ones', () => {
      fails('#', "unexpected character '#' at column 1", 0, 1);
      fails('a ` b', "unexpected character '`' at column 3", 2, 3);
      fails('x – 1', "unexpected character '–' (U+2013) at column 3", 2, 3);
      fails('x\u0001', "unexpected character '\\u0001' (U+0001) at column 2", 1, 2);
      fails('{int}p', "unexpected character '{' at column 1", 0, 1);
    });

    it("allows '$' only as the register sigil", () => {
      fails('foo$bar', "'$' at column 4 may only start a register name, as in '$rip'", 3, 4);
      fails('$', "'$' at column 1 must be followed by a register name, as in '$rip'", 0, 1);
      fails('$rip + $1', "'$1' at column 8: gdb's value history is not available here; name a register, as in '$rip'", 7, 9);
      fails('$$2', "'$$2' at column 1: gdb's value history is not available here; name a register, as in '$rip'", 0, 3);
    });

    it('reports the leftmost problem, lexical or not', () => {
      fails('a b #', "unexpected 'b' after the expression at column 3", 2, 3);
      fails('foo(1) #', "calling functions in the guest is not supported: 'foo(...)' at column 1 (the kernel helpers are per_cpu, per_cpu_ptr, this_cpu, this_cpu_ptr, container_of and $task)", 0, 4);
      fails('# a b', "unexpected character '#' at column 1", 0, 1);
    });

    it('reports bad type names', () => {
      fails('sizeof(struct)', "expected a tag name after 'struct' at column 14, found ')'", 13, 14);
      fails('(union int)x', "expected a tag name after 'union' at column 8, found 'int'", 7, 10);
      fails('(short long)x', "'short long' at column 2 is not a valid combination of type specifiers", 1, 11);
      fails('(long long long)x', "'long long long' at column 2 is not a valid combination of type specifiers", 1, 15);
      fails('(long long double)x', "'long long double' at column 2 is not a valid combination of type specifiers", 1, 17);
      fails('(signed unsigned)x', "'signed unsigned' at column 2 is not a valid combination of type specifiers", 1, 16);
      fails('(int int)x', "'int int' at column 2 is not a valid combination of type specifiers", 1, 8);
      fails('(char double)x', "'char double' at column 2 is not a valid combination of type specifiers", 1, 12);
      fails('(unsigned float)x', "'unsigned float' at column 2 is not a valid combination of type specifiers", 1, 15);
      fails('(void int)x', "'void int' at column 2 is not a valid combination of type specifiers", 1, 9);
      fails('(u64 int)x', "'u64 int' at column 2 is not a valid combination of type specifiers", 1, 8);
      fails('(struct foo int)x', "'struct foo int' at column 2 is not a valid combination of type specifiers", 1, 15);
      fails('(int struct foo)x', "'int struct' at column 2 is not a valid combination of type specifiers", 1, 11);
      fails('(const)x', "expected a type name after 'const' at column 7, found ')'", 6, 7);
      fails('(int [N])p', "expected an array length after '[' at column 7, found 'N'; it must be an integer literal", 6, 7);
      fails('(int [3)p', "expected ']' at column 8 to close the '[' at column 6, found ')'", 7, 8);
      fails('(int (*)(x))p', "expected a parameter type after '(' at column 10, found 'x'", 9, 10);
      fails('(int (*)(void, int))p', '\'void\' at column 10 must be the only parameter when it stands for "no parameters"', 9, 13);
      fails('(int (*)(int,))p', "expected a parameter type after ',' at column 14, found ')'", 13, 14);
    });

    it('explains a parenthesised name followed by an operand: a cast to an unknown type', () => {
      fails('(foo)x', "'foo' at column 2 is not a type name, so '(foo)' cannot be a cast", 1, 4);
      fails('(u64)x', "'u64' at column 2 is not a type name, so '(u64)' cannot be a cast", 1, 4, {});
      fails('(pid_t) 5', "'pid_t' at column 2 is not a type name, so '(pid_t)' cannot be a cast", 1, 6, {});
    });

    it('hints that a type in expression position needs parentheses', () => {
      fails('sizeof int', "expected an expression after 'sizeof' at column 8, found 'int'; a type goes in parentheses, as in '(type)x' or 'sizeof(type)'", 7, 10);
      fails('struct foo', "expected an expression at column 1, found 'struct'; a type goes in parentheses, as in '(type)x' or 'sizeof(type)'", 0, 6);
      fails('x + const', "expected an expression after '+' at column 5, found 'const'", 4, 9);
    });

    it('always names the column of the start of its span', () => {
      const bad = ['args->', '(struct task_struct *', '1 +', 'init_task.', 'foo(1)', "'ab'", '0x', '08', '"abc', '#', 'sizeof(struct)', 'a b', 'x++', '(short long)x', '$1', 'a ? b', '1.5'];
      for (const text of bad) {
        const e = parseError(text);
        assert.ok(e.message.includes(`column ${e.pos.start + 1}`), `${JSON.stringify(text)}: ${e.message}`);
        assert.ok(e.pos.start <= e.pos.end && e.pos.end <= text.length, `${JSON.stringify(text)}: span ${JSON.stringify(e.pos)}`);
      }
    });

    it('is a user-facing expression error', () => {
      const e = parseError('1 +');
      assert.ok(e instanceof UserError);
      assert.equal(e.code, ErrorCode.Expression);
      assert.equal(e.name, 'ExprSyntaxError');
    });
  });

  describe('formatSyntaxError', () => {
    it('draws carets under the bad span', () => {
      assert.equal(formatSyntaxError(parseError('x + 123abc')), "invalid suffix 'abc' at column 8 on integer literal '123abc'\n  x + 123abc\n         ^^^");
    });

    it('puts one caret just past the text when the expression ends too early', () => {
      assert.equal(formatSyntaxError(parseError('args->')), "expected a member name after '->' at column 7, found end of expression\n  args->\n        ^");
    });

    it('keeps carets aligned when the source has tabs or newlines', () => {
      assert.equal(formatSyntaxError(parseError('a\t+\n#')), "unexpected character '#' at column 5\n  a + #\n      ^");
    });

    it('shows a window around the error in a long expression', () => {
      const text = `${'a + '.repeat(60)}#${' + b'.repeat(60)}`;
      const out = formatSyntaxError(parseError(text)).split('\n');
      assert.equal(out[0], "unexpected character '#' at column 241");
      assert.ok(out[1].startsWith('  …') && out[1].endsWith('…'), out[1]);
      assert.ok(out[1].length <= 2 + 100 + 2);
      const caret = out[2].indexOf('^');
      assert.equal(out[1][caret], '#');
      assert.equal(out[2].trim(), '^');
    });
  });
});
