/**
 * C expressions evaluated against a stopped frame, with gdb's semantics where C leaves room:
 * `.` and `->` both work on a pointer or a struct, arrays decay to pointers, pointer
 * arithmetic scales by the pointed-to size, and `*p@n` makes an array of n from p. Errors
 * say what was wrong and quote the part of the expression at fault.
 */
import { arrayOf, pointerTo, sizeOf, strip, syntheticId, typeName, type CType } from '../../symbols/dwarf/types';
import type { FrameContext } from '../values/frame';
import type { Program } from '../values/program';
import { bigLe, contents, derefValue, elementValue, findMember, isInteger, isPointer, isSignedType, memberValue, memoryValue, toInteger, toNumber, ValueError, valueOf, type Value, type ValueEnv } from '../values/value';
import type { BinaryOp, Expr, Pos, TypeName } from './ast';
import { callHelper, type KernelHelpers } from './helpers';

export interface EvalHost {
  program: Program;
  frame: FrameContext;
  env: ValueEnv;
  /** A register of the selected frame by name (`rip`, `eflags`, `cr3`), or undefined when there is none. */
  register(name: string): Promise<Value | undefined>;
  /** Writes: undefined when side effects are not allowed here (hover, watch). */
  write?(place: Value, bytes: Buffer): Promise<void>;
  /** The running kernel's tasks and per-CPU data, for $current, per_cpu() and friends. */
  kernel?: KernelHelpers;
}

export class EvalError extends ValueError {
  constructor(
    message: string,
    readonly pos?: Pos,
  ) {
    super(message);
  }
}

const MASK64 = (1n << 64n) - 1n;

export class Evaluator {
  constructor(
    private readonly host: EvalHost,
    private readonly source: string,
  ) {}

  private builtin(name: string): CType {
    const t = this.host.program.builtin.get(name);
    if (!t) throw new Error(`no builtin type ${name}`);
    return t;
  }

  private snippet(pos: Pos): string {
    return this.source.slice(pos.start, pos.end);
  }

  private fail(message: string, pos?: Pos): never {
    throw new EvalError(message, pos);
  }

  async evaluate(e: Expr): Promise<Value> {
    switch (e.kind) {
      case 'ident': {
        const v = await this.host.frame.lookup(e.name);
        if (v) return v;
        const en = await this.host.program.findEnumerator(e.name, this.host.frame.unit);
        if (en) return valueOf(en.type, en.value);
        const sym = this.host.program.symbols?.lookup(e.name).find((s) => s.type === 'object' || s.type === 'func');
        if (sym?.type === 'func') {
          const t = this.host.program.functionTypeAt(sym.value) ?? { kind: 'function', id: syntheticId(), returns: this.builtin('int'), params: [], variadic: false, prototyped: false };
          return memoryValue(t, sym.value);
        }
        if (sym) this.fail(`'${e.name}' has unknown type; cast it to its declared type, e.g. *(long *)&${e.name}`, e.pos);
        // The kernel's `current` is a macro (get_current()), so DWARF has no variable of that name.
        if (e.name === 'current' && this.host.kernel) return this.current();
        return this.fail(`No symbol "${e.name}" in current context.`, e.pos);
      }
      case 'register': {
        const v = await this.host.register(e.name);
        if (!v && e.name === 'current') {
          if (!this.host.kernel) this.fail('$current needs the running kernel: the session has no vmlinux with DWARF', e.pos);
          return this.current();
        }
        if (!v) this.fail(`No register named $${e.name} on this target.`, e.pos);
        return v;
      }
      case 'call':
        return callHelper(e, {
          kernel: this.host.kernel,
          env: this.host.env,
          evaluate: (x) => this.evaluate(x),
          resolveType: (t) => this.resolveType(t),
          complete: (t) => this.host.program.types.complete(t),
          fail: (m, p) => this.fail(m, p),
          snippet: (p) => this.snippet(p),
        });
      case 'int': {
        // C11 6.4.4.1: the first type in the suffix's list that holds the value.
        const decimal = (e.radix ?? 10) === 10;
        const list = e.unsigned
          ? ['unsigned int', 'unsigned long', 'unsigned long long'].slice(e.long)
          : decimal
            ? ['int', 'long', 'long long'].slice(e.long)
            : ['int', 'unsigned int', 'long', 'unsigned long', 'long long', 'unsigned long long'].slice(e.long * 2);
        const max: Record<string, bigint> = { int: 0x7fffffffn, 'unsigned int': 0xffffffffn, long: 0x7fffffffffffffffn, 'unsigned long': MASK64, 'long long': 0x7fffffffffffffffn, 'unsigned long long': MASK64 };
        const t = list.find((n) => e.value <= max[n]);
        if (!t) this.fail(`integer constant ${this.snippet(e.pos)} is too large for any integer type`, e.pos);
        return valueOf(this.builtin(t), e.value);
      }
      case 'char':
        return valueOf(this.builtin('char'), BigInt(e.value));
      case 'string': {
        const bytes = Buffer.from(e.value + '\0', 'latin1');
        return { type: arrayOf(this.builtin('char'), bytes.length), place: { kind: 'none' }, bytes };
      }
      case 'member': {
        let obj = await this.evaluate(e.object);
        // gdb accepts `.` on a pointer and `->` on a struct: be as forgiving.
        if (isPointer(obj.type)) obj = await derefValue(obj, this.host.env);
        const t = this.host.program.types.complete(strip(obj.type));
        if (t.kind !== 'struct' && t.kind !== 'union') this.fail(`'${this.snippet(e.object.pos)}' is a ${typeName(obj.type)}, not a struct or union: it has no member '${e.name}'`, e.pos);
        if (t.declaration) {
          await this.host.program.prepare(t, this.host.frame.unit);
        }
        const full = this.host.program.types.complete(t);
        const found = findMember(full, e.name);
        if (!found) this.fail(`There is no member named ${e.name} in ${typeName(full)}.`, e.pos);
        return memberValue({ ...obj, type: full }, found.member, found.offset);
      }
      case 'index': {
        const obj = await this.evaluate(e.object);
        const idx = await this.evaluate(e.index);
        return this.subscript(obj, idx, e);
      }
      case 'unary': {
        // gdb allows `&sym` on a symbol with no debug info (assembly data such as
        // init_top_pgt): a pointer to an opaque object that can be cast and compared.
        if (e.op === '&' && e.operand.kind === 'ident') {
          const opaque = await this.noDebugInfo(e.operand.name);
          if (opaque) return opaque;
        }
        return this.unary(e.op, await this.evaluate(e.operand), e);
      }
      case 'cast':
        return this.cast(await this.evaluate(e.operand), await this.resolveType(e.type), e);
      case 'sizeof': {
        const t = e.type ? await this.resolveType(e.type) : (await this.evaluate(e.operand as Expr)).type;
        const n = sizeOf(t);
        if (n === undefined) this.fail(`sizeof applied to an incomplete type '${typeName(t)}'`, e.pos);
        return valueOf(this.builtin('unsigned long'), BigInt(n));
      }
      case 'binary':
        return this.binary(e.op, e.left, e.right, e);
      case 'ternary': {
        const c = await this.truth(await this.evaluate(e.cond));
        return this.evaluate(c ? e.then : e.else);
      }
      case 'assign':
        return this.assign(e);
      case 'array': {
        const first = await this.evaluate(e.first);
        const n = Number(await toInteger(await this.evaluate(e.count), this.host.env));
        if (!(n > 0)) this.fail(`Only values in memory can be extended with '@', and the count must be positive (got ${n}).`, e.pos);
        if (first.place.kind !== 'memory') this.fail(`Only values in memory can be extended with '@'.`, e.pos);
        return memoryValue(arrayOf(first.type, n), first.place.address);
      }
    }
  }

  private async noDebugInfo(name: string): Promise<Value | undefined> {
    if (await this.host.frame.lookup(name)) return undefined;
    const sym = this.host.program.symbols?.lookup(name).find((s) => s.type === 'object');
    if (!sym) return undefined;
    const opaque: CType = { kind: 'base', id: syntheticId(), name: '<data variable, no debug info>', size: 0, encoding: 'other' };
    return valueOf(pointerTo(opaque), sym.value);
  }

  /** `current`: a pointer to the selected vCPU's task_struct. */
  private async current(): Promise<Value> {
    const k = this.host.kernel as KernelHelpers;
    return valueOf(pointerTo(await k.taskType()), await k.current());
  }

  async resolveType(t: TypeName): Promise<CType> {
    let base: CType | undefined;
    const program = this.host.program;
    if (t.base.kind === 'builtin') base = program.builtin.get(t.base.name);
    else if (t.base.kind === 'named') base = await program.findType(t.base.name, this.host.frame.unit);
    else base = await program.findType(`${t.base.kind} ${t.base.tag}`, this.host.frame.unit);
    if (!base) {
      const what = t.base.kind === 'named' || t.base.kind === 'builtin' ? t.base.name : `${t.base.kind} ${t.base.tag}`;
      return this.fail(`No type named '${what}' in the program.`, t.pos);
    }
    let out = base;
    for (const d of t.derived) {
      if (d.kind === 'pointer') out = pointerTo(out);
      else if (d.kind === 'array') out = arrayOf(out, d.length);
      else {
        const params = await Promise.all(d.params.map((p) => this.resolveType(p)));
        out = { kind: 'function', id: syntheticId(), returns: out, params, variadic: d.variadic, prototyped: true };
      }
    }
    return out;
  }

  private async truth(v: Value): Promise<boolean> {
    const s = strip(v.type);
    if (s.kind === 'base' && s.encoding === 'float') return (await toNumber(v, this.host.env)) !== 0;
    return (await this.scalarOf(v)) !== 0n;
  }

  private async scalarOf(v: Value, pos?: Pos): Promise<bigint> {
    try {
      return await toInteger(v, this.host.env);
    } catch (err) {
      return this.fail((err as Error).message, pos);
    }
  }

  private async subscript(obj: Value, idx: Value, e: Extract<Expr, { kind: 'index' }>): Promise<Value> {
    // C allows i[a] as well as a[i].
    if (!isPointer(obj.type) && strip(obj.type).kind !== 'array' && (isPointer(idx.type) || strip(idx.type).kind === 'array')) [obj, idx] = [idx, obj];
    const i = Number(await this.scalarOf(idx, e.index.pos));
    const s = strip(obj.type);
    if (s.kind === 'array') {
      if (obj.place.kind === 'memory' || obj.bytes) return elementValue(obj, i);
    }
    if (s.kind === 'pointer') {
      const size = sizeOf(s.target);
      if (!size) this.fail(`cannot subscript '${this.snippet(e.object.pos)}': it points to '${typeName(s.target)}', which has no size`, e.pos);
      const base = await this.scalarOf(obj);
      return memoryValue(s.target, base + BigInt(i) * BigInt(size));
    }
    return this.fail(`cannot subscript '${this.snippet(e.object.pos)}' of type '${typeName(obj.type)}': it is not an array or a pointer`, e.pos);
  }

  private async unary(op: '*' | '&' | '-' | '+' | '~' | '!', v: Value, e: Extract<Expr, { kind: 'unary' }>): Promise<Value> {
    switch (op) {
      case '*': {
        const s = strip(v.type);
        if (s.kind === 'function') return v;
        if (s.kind !== 'pointer' && s.kind !== 'array') {
          this.fail(`Attempt to take contents of a non-pointer value ('${this.snippet(e.operand.pos)}' is ${typeName(v.type)}).`, e.pos);
        }
        return derefValue(v, this.host.env).catch((err: Error) => this.fail(err.message, e.pos));
      }
      case '&': {
        if (v.place.kind !== 'memory' || v.bitSize !== undefined) {
          this.fail(`Attempt to take address of value not located in memory ('${this.snippet(e.operand.pos)}'${v.place.kind === 'register' ? ' lives in a register' : ''}).`, e.pos);
        }
        return valueOf(pointerTo(v.type), v.place.address);
      }
      case '!':
        return valueOf(this.builtin('int'), (await this.truth(v)) ? 0n : 1n);
      case '-':
      case '+':
      case '~': {
        const s = strip(v.type);
        if (s.kind === 'base' && s.encoding === 'float') {
          const n = await toNumber(v, this.host.env);
          return floatValue(this.builtin('double'), op === '-' ? -n : n);
        }
        if (!isInteger(v.type)) this.fail(`unary '${op}' needs an integer, not '${typeName(v.type)}'`, e.pos);
        const t = promote(v.type, this.host.program);
        const n = await this.scalarOf(v);
        return valueOf(t, op === '-' ? -n : op === '~' ? ~n : n);
      }
    }
  }

  private async cast(v: Value, to: CType, e: Extract<Expr, { kind: 'cast' }>): Promise<Value> {
    const s = strip(to);
    const from = strip(v.type);
    if (s.kind === 'void') return { type: to, place: { kind: 'none' }, bytes: Buffer.alloc(0) };
    if (s.kind === 'struct' || s.kind === 'union' || s.kind === 'array') {
      // Reinterpreting memory is what a kernel developer means by (struct foo)x.
      if (v.place.kind === 'memory') return memoryValue(to, v.place.address);
      this.fail(`Invalid cast to '${typeName(to)}': only a value in memory can be viewed as an aggregate.`, e.pos);
    }
    if (s.kind === 'base' && s.encoding === 'float') return floatValue(to, await toNumber(v, this.host.env));
    if (from.kind === 'struct' || from.kind === 'union') this.fail(`Invalid cast: '${this.snippet(e.operand.pos)}' is a ${typeName(v.type)}, not a scalar.`, e.pos);
    const n = from.kind === 'base' && from.encoding === 'float' ? BigInt(Math.trunc(await toNumber(v, this.host.env))) : await this.scalarOf(v, e.operand.pos);
    return valueOf(to, n);
  }

  private async binary(op: BinaryOp, le: Expr, re: Expr, e: Expr): Promise<Value> {
    const int = this.builtin('int');
    if (op === ',') {
      await this.evaluate(le);
      return this.evaluate(re);
    }
    if (op === '&&' || op === '||') {
      const l = await this.truth(await this.evaluate(le));
      if (op === '&&' && !l) return valueOf(int, 0n);
      if (op === '||' && l) return valueOf(int, 1n);
      return valueOf(int, (await this.truth(await this.evaluate(re))) ? 1n : 0n);
    }
    const l = await this.evaluate(le);
    const r = await this.evaluate(re);
    return this.arith(op, l, r, e.pos, le, re);
  }

  private async arith(op: BinaryOp, l: Value, r: Value, pos: Pos, le: Expr, re: Expr): Promise<Value> {
    const env = this.host.env;
    const int = this.builtin('int');
    const lt = strip(l.type);
    const rt = strip(r.type);
    const lp = lt.kind === 'pointer' || lt.kind === 'array';
    const rp = rt.kind === 'pointer' || rt.kind === 'array';
    const cmp = (a: bigint, b: bigint): Value => valueOf(int, compare(op, a, b) ? 1n : 0n);
    if (lp || rp) {
      const a = await this.scalarOf(l, le.pos);
      const b = await this.scalarOf(r, re.pos);
      if (['==', '!=', '<', '>', '<=', '>='].includes(op)) return cmp(BigInt.asUintN(64, a), BigInt.asUintN(64, b));
      const elemOf = (t: CType): CType => { const s = strip(t); return s.kind === 'pointer' ? s.target : s.kind === 'array' ? s.element : s; };
      if (op === '-' && lp && rp) {
        const size = BigInt(sizeOf(elemOf(l.type)) || 1);
        return valueOf(this.builtin('long'), BigInt.asIntN(64, a - b) / size);
      }
      if ((op === '+' || op === '-') && lp !== rp) {
        const ptr = lp ? l : r;
        const pt = lp ? lt : rt;
        const off = lp ? b : a;
        const target = elemOf(ptr.type);
        const size = BigInt(sizeOf(target) || 1);
        const base = lp ? a : b;
        const result = op === '+' ? base + off * size : base - off * size;
        return valueOf(pt.kind === 'array' ? pointerTo(target) : ptr.type, result & MASK64);
      }
      this.fail(`'${op}' cannot be applied to a pointer here ('${this.source.slice(pos.start, pos.end)}')`, pos);
    }
    const lf = lt.kind === 'base' && lt.encoding === 'float';
    const rf = rt.kind === 'base' && rt.encoding === 'float';
    if (lf || rf) {
      const a = await toNumber(l, env);
      const b = await toNumber(r, env);
      if (['==', '!=', '<', '>', '<=', '>='].includes(op)) return valueOf(int, compare(op, a, b) ? 1n : 0n);
      const f: Record<string, number> = { '+': a + b, '-': a - b, '*': a * b, '/': a / b };
      if (f[op] === undefined) this.fail(`'${op}' needs integer operands`, pos);
      return floatValue(this.builtin('double'), f[op]);
    }
    if (!isInteger(l.type)) this.fail(`'${this.snippet(le.pos)}' is a ${typeName(l.type)}, which '${op}' cannot use`, le.pos);
    if (!isInteger(r.type)) this.fail(`'${this.snippet(re.pos)}' is a ${typeName(r.type)}, which '${op}' cannot use`, re.pos);
    const t = op === '<<' || op === '>>' ? promote(l.type, this.host.program) : common(l.type, r.type, this.host.program);
    const size = sizeOf(t) ?? 4;
    const signed = isSignedType(t);
    const norm = (n: bigint): bigint => (signed ? BigInt.asIntN(size * 8, n) : BigInt.asUintN(size * 8, n));
    const a = norm(await this.scalarOf(l));
    const b = op === '<<' || op === '>>' ? await this.scalarOf(r) : norm(await this.scalarOf(r));
    switch (op) {
      case '==': case '!=': case '<': case '>': case '<=': case '>=':
        return cmp(a, b);
      case '+': return valueOf(t, a + b);
      case '-': return valueOf(t, a - b);
      case '*': return valueOf(t, a * b);
      case '/':
      case '%':
        if (b === 0n) this.fail('Division by zero', re.pos);
        return valueOf(t, op === '/' ? a / b : a % b);
      case '<<': return valueOf(t, a << b);
      case '>>': return valueOf(t, a >> b);
      case '&': return valueOf(t, a & b);
      case '|': return valueOf(t, a | b);
      case '^': return valueOf(t, a ^ b);
      default:
        return this.fail(`operator '${op}' is not supported`, pos);
    }
  }

  private async assign(e: Extract<Expr, { kind: 'assign' }>): Promise<Value> {
    const write = this.host.write;
    if (!write) this.fail('Expressions here cannot change the guest (assignment is allowed in the Debug Console and through Set Value).', e.pos);
    const target = await this.evaluate(e.target);
    let value = await this.evaluate(e.value);
    if (e.op !== '=') value = await this.arith(e.op.slice(0, -1) as BinaryOp, target, value, e.pos, e.target, e.value);
    const converted = await this.convertForStore(value, target, e);
    await write(target, converted);
    return { ...target, bytes: target.place.kind === 'memory' ? undefined : converted };
  }

  /** The bytes `value` becomes when stored into `target`'s type (C's assignment conversion). */
  async convertForStore(value: Value, target: Value, e?: Expr): Promise<Buffer> {
    const t = strip(target.type);
    const size = target.bitSize !== undefined ? 8 : sizeOf(target.type);
    if (t.kind === 'struct' || t.kind === 'union' || t.kind === 'array') {
      const b = await contents(value, this.host.env);
      if (sizeOf(value.type) !== sizeOf(target.type)) this.fail(`cannot assign a ${typeName(value.type)} to a ${typeName(target.type)}`, e?.pos);
      return b;
    }
    if (t.kind === 'base' && t.encoding === 'float') {
      const n = await toNumber(value, this.host.env);
      const b = Buffer.alloc(t.size);
      if (t.size === 4) b.writeFloatLE(n);
      else b.writeDoubleLE(n);
      return b;
    }
    return bigLe(await this.scalarOf(value, e?.pos), size ?? 8);
  }
}

function floatValue(type: CType, n: number): Value {
  const b = Buffer.alloc(sizeOf(type) ?? 8);
  if (b.length === 4) b.writeFloatLE(n);
  else b.writeDoubleLE(n);
  return { type, place: { kind: 'none' }, bytes: b };
}

function compare<T extends bigint | number>(op: BinaryOp, a: T, b: T): boolean {
  switch (op) {
    case '==': return a === b;
    case '!=': return a !== b;
    case '<': return a < b;
    case '>': return a > b;
    case '<=': return a <= b;
    default: return a >= b;
  }
}

/** Integer promotion: anything narrower than int becomes int. */
function promote(t: CType, program: Program): CType {
  const size = sizeOf(t) ?? 4;
  if (size < 4) return program.builtin.get('int') as CType;
  const s = strip(t);
  if (s.kind === 'enum') return program.builtin.get(size > 4 ? 'long' : s.signed ? 'int' : 'unsigned int') as CType;
  if (s.kind === 'base' && s.encoding === 'bool') return program.builtin.get('int') as CType;
  return t;
}

/** The usual arithmetic conversions, for LP64. */
function common(a: CType, b: CType, program: Program): CType {
  const pa = promote(a, program);
  const pb = promote(b, program);
  const sa = sizeOf(pa) ?? 4;
  const sb = sizeOf(pb) ?? 4;
  if (sa !== sb) return sa > sb ? pa : pb;
  if (!isSignedType(pa)) return pa;
  if (!isSignedType(pb)) return pb;
  return pa;
}
