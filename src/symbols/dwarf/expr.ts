/**
 * DWARF 2–5 expressions (DWARF 5 section 2.5–2.6): a stack machine that computes where a
 * variable lives or what a value is. It does no I/O: memory, registers, the frame base and
 * entry values come from the caller through ExprContext, so the same evaluator serves
 * variables, frame bases, CFA expressions and member offsets, and tests need no target.
 *
 * What can't be known (a register the unwinder didn't recover, an entry value with no call
 * site to recover it from) is not an error: such a stack slot carries the reason instead of
 * a number, every operation on it passes the reason on, and the location comes out
 * `unavailable` with that reason. Corrupt or unsupported DWARF throws a DwarfError naming the
 * opcode and its offset in the expression.
 *
 * Typed-stack ops (DWARF 5 const_type, regval_type, deref_type, convert, reinterpret) are
 * supported in a reduced form: a value's type is only a byte size and a signedness. The type
 * operand is a unit-relative DIE offset that only the caller can resolve, through the
 * optional `baseType` hook; without it, sizes come from the op where it has one and values
 * are otherwise treated as the generic (address-sized) type. Floating-point types are
 * treated as their bit patterns. That covers what GCC emits for the kernel: conversions to
 * an unsigned type around DW_OP_div/mod so they divide unsigned.
 */
import { decodeExpression, DW_OP, EXPR_SECTION, opName, type DecodedOp } from './opcodes';

export { decodeExpression, describeExpression, type DecodedOp, type DescribeOptions } from './opcodes';
import { DwarfError } from './reader';

export interface ExprContext {
  addressSize: 4 | 8;
  /** Read target memory (little-endian target). Rejects/throws when unreadable. */
  readMemory(addr: bigint, size: number): Promise<Buffer>;
  /** A register's value in the current frame by DWARF number; undefined when unknown (e.g. not saved in a caller frame). */
  register(dwarfReg: number): bigint | undefined;
  /** The value of the function's DW_AT_frame_base (the caller evaluates it, usually DW_OP_call_frame_cfa). */
  frameBase?(): Promise<bigint | undefined>;
  /** The frame's canonical frame address (DW_OP_call_frame_cfa). */
  cfa?(): Promise<bigint | undefined>;
  /** Entry of .debug_addr for DW_OP_addrx / DW_OP_constx / DW_OP_GNU_addr_index / GNU_const_index. */
  addrx?(index: number): bigint;
  /** An address operand (DW_OP_addr, DW_OP_addrx) where the running image has it (KASLR); constants are left alone. */
  relocate?(link: bigint): bigint;
  /**
   * Resolve DW_OP_entry_value / DW_OP_GNU_entry_value: the value the sub-expression (usually
   * DW_OP_regN) had on entry to the current function. Returns undefined when it can't be known.
   */
  entryValue?(subExpr: Buffer): Promise<bigint | undefined>;
  /** DW_OP_push_object_address */
  objectAddress?: bigint;
  /** DW_OP_call2/call4/call_ref: evaluate the DW_AT_location of the DIE at this .debug_info offset (optional). */
  callDie?(infoOffset: number): Promise<Buffer | undefined>;
  /** The unit's offset size: the width of DW_OP_call_ref and implicit_pointer DIE references. Default 4. */
  offsetSize?: 4 | 8;
  /** The unit's .debug_info offset, added to the unit-relative operands of DW_OP_call2/call4. Default 0. */
  cuOffset?: number;
  /** The base type DIE at this unit-relative offset, for the typed-stack ops. */
  baseType?(unitOffset: number): BaseTypeInfo | undefined;
}

export interface BaseTypeInfo {
  byteSize: number;
  signed: boolean;
}

export type ExprLocation =
  | { kind: 'memory'; address: bigint }
  | { kind: 'register'; reg: number }
  | { kind: 'value'; value: bigint }
  | { kind: 'implicit'; bytes: Buffer }
  | { kind: 'implicitPointer'; die: number; offset: bigint }
  | { kind: 'pieces'; pieces: ExprPiece[] }
  | { kind: 'optimized' }
  | { kind: 'unavailable'; reason: string };

export interface ExprPiece {
  location: ExprLocation;
  bitSize: number;
  /** DW_OP_bit_piece offset within the location */
  bitOffset: number;
}

/** A value the expression needs can't be known here; evaluateValue throws it, evaluateLocation returns it as a location. */
export class UnavailableError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'UnavailableError';
  }
}

export const ENTRY_VALUE_UNAVAILABLE = 'the value at function entry (DW_OP_entry_value) cannot be recovered here';
/** Expressions may loop with DW_OP_bra/skip; real ones run a few dozen ops. */
export const MAX_EXPR_OPS = 100_000;
const MAX_CALL_DEPTH = 16;
const MAX_TYPE_BYTES = 255;

type ValueType = BaseTypeInfo | undefined; // undefined: the generic type
type Num = { v: bigint; t: ValueType };
/** A stack entry: a number, or why it can't be known. */
type Slot = Num | { missing: string };

/**
 * Ops that make no location of their own: the only ones that may follow a register, stack or
 * implicit value location, and a piece after nothing but these is an empty piece.
 */
const NO_LOCATION = new Set<number>([DW_OP.piece, DW_OP.bit_piece, DW_OP.GNU_uninit, DW_OP.nop]);

class Machine {
  readonly stack: Slot[] = [];
  readonly pieces: ExprPiece[] = [];
  /** A location set by the last op (reg, stack_value, implicit_*) that a piece or the end takes. */
  pending: { loc: ExprLocation; op: number } | undefined;
  /** Location-making ops run since the last piece (or the start): none makes an empty piece. */
  opsSincePiece = 0;
  private executed = 0;
  private readonly addrBits: number;

  constructor(readonly ctx: ExprContext) {
    this.addrBits = ctx.addressSize * 8;
  }

  async run(expr: Buffer, depth: number): Promise<void> {
    if (depth > MAX_CALL_DEPTH) throw new DwarfError(EXPR_SECTION, 0, `DW_OP_call nested more than ${MAX_CALL_DEPTH} deep`);
    const ops = [...decodeExpression(expr, this.ctx.addressSize, this.ctx.offsetSize ?? 4)];
    const index = new Map<number, number>(ops.map((o, i) => [o.offset, i]));
    index.set(expr.length, ops.length);
    let i = 0;
    while (i < ops.length) {
      const o = ops[i++];
      if (++this.executed > MAX_EXPR_OPS) throw new DwarfError(EXPR_SECTION, o.offset, `more than ${MAX_EXPR_OPS} operations executed: the expression loops`);
      if (this.pending && !NO_LOCATION.has(o.op)) {
        throw new DwarfError(EXPR_SECTION, o.offset, `${opName(o.op)} follows ${opName(this.pending.op)}, which must end the expression or be followed by DW_OP_piece`);
      }
      if (!NO_LOCATION.has(o.op)) this.opsSincePiece++;
      const target = await this.step(o, depth);
      if (target !== undefined) {
        const t = index.get(target);
        if (t === undefined) throw new DwarfError(EXPR_SECTION, o.offset, `${opName(o.op)} jumps to offset ${target}, which is not the start of an operation`);
        i = t;
      }
    }
  }

  private need(o: DecodedOp, n: number): void {
    if (this.stack.length < n) {
      throw new DwarfError(EXPR_SECTION, o.offset, `stack underflow: ${opName(o.op)} needs ${n} value(s) on the stack, found ${this.stack.length}`);
    }
  }

  private pop(o: DecodedOp): Slot {
    this.need(o, 1);
    return this.stack.pop() as Slot;
  }

  private push(v: bigint, t: ValueType = undefined): void {
    this.stack.push({ v: this.norm(v, t), t });
  }

  private bits(t: ValueType): number {
    return t ? t.byteSize * 8 : this.addrBits;
  }

  private norm(v: bigint, t: ValueType): bigint {
    return BigInt.asUintN(this.bits(t), v);
  }

  private signed(s: Num): bigint {
    return BigInt.asIntN(this.bits(s.t), s.v);
  }

  /** A slot as the generic type: sign-extended from a signed narrower type, truncated from a wider one. */
  generic(s: Num): bigint {
    return BigInt.asUintN(this.addrBits, s.t?.signed ? this.signed(s) : s.v);
  }

  private type(o: DecodedOp, offset: bigint, size?: number): ValueType {
    if (offset === 0n && size === undefined) return undefined;
    const t = this.ctx.baseType?.(Number(offset));
    // Values are bigints of the type's width: a corrupt DW_AT_byte_size of 2^31 would make
    // every op allocate gigabits. An op's own sizes are at most 255 bytes; so is a real type.
    if (t && t.byteSize > MAX_TYPE_BYTES) throw new DwarfError(EXPR_SECTION, o.offset, `${opName(o.op)}: base type of ${t.byteSize} bytes is too large for the typed stack`);
    if (t && t.byteSize > 0) return size === undefined ? t : { byteSize: size, signed: t.signed };
    return size !== undefined && size > 0 ? { byteSize: size, signed: false } : undefined;
  }

  private async read(addr: bigint, size: number): Promise<bigint> {
    const buf = await this.ctx.readMemory(addr, size);
    if (buf.length < size) throw new Error(`reading ${size} byte(s) at 0x${addr.toString(16)} returned only ${buf.length}`);
    return le(buf.subarray(0, size));
  }

  private binary(o: DecodedOp, f: (a: Num, b: Num, t: ValueType) => bigint | Slot): void {
    this.need(o, 2);
    const b = this.pop(o);
    const a = this.pop(o);
    if ('missing' in a) return void this.stack.push(a);
    if ('missing' in b) return void this.stack.push(b);
    const t = a.t ?? b.t;
    const r = f(a, b, t);
    if (typeof r === 'bigint') this.push(r, t);
    else this.stack.push(r);
  }

  private unary(o: DecodedOp, f: (a: Num) => bigint): void {
    const a = this.pop(o);
    if ('missing' in a) this.stack.push(a);
    else this.push(f(a), a.t);
  }

  /** Generic values compare signed (DWARF 5 section 2.5.1.4); typed ones by their signedness. */
  private compare(o: DecodedOp, f: (x: bigint, y: bigint) => boolean): void {
    this.binary(o, (a, b, t) => {
      const un = t !== undefined && !t.signed;
      return { v: (un ? f(a.v, b.v) : f(this.signed({ v: a.v, t }), this.signed({ v: b.v, t }))) ? 1n : 0n, t: undefined };
    });
  }

  private divide(o: DecodedOp, mod: boolean): void {
    this.binary(o, (a, b, t) => {
      if (b.v === 0n) throw new DwarfError(EXPR_SECTION, o.offset, `${opName(o.op)}: division by zero`);
      // gdb divides generic values signed but takes their modulus unsigned; GCC relies on both.
      const signed = t ? t.signed : !mod;
      if (!signed) return mod ? a.v % b.v : a.v / b.v;
      const x = this.signed({ v: a.v, t });
      const y = this.signed({ v: b.v, t });
      return mod ? x % y : x / y;
    });
  }

  private unknown(reason: string): void {
    this.stack.push({ missing: reason });
  }

  private regValue(reg: number): Slot {
    const v = this.ctx.register(reg);
    return v === undefined ? { missing: `DWARF register ${reg} is not known in this frame` } : { v: BigInt.asUintN(this.addrBits, v), t: undefined };
  }

  private setLocation(o: DecodedOp, loc: ExprLocation): void {
    this.pending = { loc, op: o.op };
  }

  private piece(bitSize: number, bitOffset: number): void {
    let location: ExprLocation;
    if (this.pending) location = this.pending.loc;
    else if (this.opsSincePiece === 0 || this.stack.length === 0) location = { kind: 'optimized' };
    else {
      const s = this.stack.pop() as Slot;
      location = 'missing' in s ? { kind: 'unavailable', reason: s.missing } : { kind: 'memory', address: this.generic(s) };
    }
    this.pending = undefined;
    this.opsSincePiece = 0;
    this.pieces.push({ location, bitSize, bitOffset });
  }

  /** Runs one op; returns the expression offset to continue at when it branches. */
  private async step(o: DecodedOp, depth: number): Promise<number | undefined> {
    const op = o.op;
    if (op >= DW_OP.lit0 && op <= DW_OP.lit31) return void this.push(BigInt(op - DW_OP.lit0));
    if (op >= DW_OP.reg0 && op <= DW_OP.reg31) return void this.setLocation(o, { kind: 'register', reg: op - DW_OP.reg0 });
    if (op >= DW_OP.breg0 && op <= DW_OP.breg31) return void this.offsetFrom(this.regValue(op - DW_OP.breg0), o.a);
    const s = this.stack;
    switch (op) {
      case DW_OP.addr:
        this.push(this.ctx.relocate ? this.ctx.relocate(o.a) : o.a);
        break;
      case DW_OP.const1u:
      case DW_OP.const1s:
      case DW_OP.const2u:
      case DW_OP.const2s:
      case DW_OP.const4u:
      case DW_OP.const4s:
      case DW_OP.const8u:
      case DW_OP.const8s:
      case DW_OP.constu:
      case DW_OP.consts:
        this.push(o.a);
        break;
      case DW_OP.addrx:
      case DW_OP.constx:
      case DW_OP.GNU_addr_index:
      case DW_OP.GNU_const_index: {
        if (!this.ctx.addrx) throw new DwarfError(EXPR_SECTION, o.offset, `${opName(op)} needs .debug_addr, which is not available here`);
        const v = this.ctx.addrx(Number(o.a));
        // An address moves with the image; a constant kept in .debug_addr does not.
        this.push((op === DW_OP.addrx || op === DW_OP.GNU_addr_index) && this.ctx.relocate ? this.ctx.relocate(v) : v);
        break;
      }
      case DW_OP.dup:
        this.need(o, 1);
        s.push(s[s.length - 1]);
        break;
      case DW_OP.drop:
        this.pop(o);
        break;
      case DW_OP.over:
        this.need(o, 2);
        s.push(s[s.length - 2]);
        break;
      case DW_OP.pick:
        this.need(o, Number(o.a) + 1);
        s.push(s[s.length - 1 - Number(o.a)]);
        break;
      case DW_OP.swap: {
        this.need(o, 2);
        const top = s[s.length - 1];
        s[s.length - 1] = s[s.length - 2];
        s[s.length - 2] = top;
        break;
      }
      case DW_OP.rot: {
        // The top entry moves under the next two.
        this.need(o, 3);
        const top = s.pop() as Slot;
        s.splice(s.length - 2, 0, top);
        break;
      }
      case DW_OP.deref:
      case DW_OP.deref_size:
      case DW_OP.deref_type:
      case DW_OP.GNU_deref_type: {
        const size = op === DW_OP.deref ? this.ctx.addressSize : Number(o.a);
        if (size < 1 || (op === DW_OP.deref_size && size > this.ctx.addressSize)) throw new DwarfError(EXPR_SECTION, o.offset, `${opName(op)} of ${size} byte(s) is not valid`);
        const t = op === DW_OP.deref_type || op === DW_OP.GNU_deref_type ? this.type(o, o.b, size) : undefined;
        const addr = this.pop(o);
        if ('missing' in addr) s.push(addr);
        else this.push(await this.read(this.generic(addr), size), t);
        break;
      }
      case DW_OP.xderef:
      case DW_OP.xderef_size:
      case DW_OP.xderef_type:
        throw new DwarfError(EXPR_SECTION, o.offset, `${opName(op)}: address spaces are not supported`);
      case DW_OP.abs:
        this.unary(o, (a) => (a.t && !a.t.signed ? a.v : abs(this.signed(a))));
        break;
      case DW_OP.neg:
        this.unary(o, (a) => -a.v);
        break;
      case DW_OP.not:
        this.unary(o, (a) => ~a.v);
        break;
      case DW_OP.plus_uconst:
        this.unary(o, (a) => a.v + o.a);
        break;
      case DW_OP.and:
        this.binary(o, (a, b) => a.v & b.v);
        break;
      case DW_OP.or:
        this.binary(o, (a, b) => a.v | b.v);
        break;
      case DW_OP.xor:
        this.binary(o, (a, b) => a.v ^ b.v);
        break;
      case DW_OP.plus:
        this.binary(o, (a, b) => a.v + b.v);
        break;
      case DW_OP.minus:
        this.binary(o, (a, b) => a.v - b.v);
        break;
      case DW_OP.mul:
        this.binary(o, (a, b) => a.v * b.v);
        break;
      case DW_OP.div:
        this.divide(o, false);
        break;
      case DW_OP.mod:
        this.divide(o, true);
        break;
      case DW_OP.shl:
        this.binary(o, (a, b, t) => (b.v >= BigInt(this.bits(t)) ? 0n : a.v << b.v));
        break;
      case DW_OP.shr:
        this.binary(o, (a, b, t) => (b.v >= BigInt(this.bits(t)) ? 0n : this.norm(a.v, t) >> b.v));
        break;
      case DW_OP.shra:
        this.binary(o, (a, b, t) => this.signed({ v: a.v, t }) >> (b.v >= BigInt(this.bits(t)) ? BigInt(this.bits(t) - 1) : b.v));
        break;
      case DW_OP.eq:
        this.compare(o, (x, y) => x === y);
        break;
      case DW_OP.ne:
        this.compare(o, (x, y) => x !== y);
        break;
      case DW_OP.lt:
        this.compare(o, (x, y) => x < y);
        break;
      case DW_OP.le:
        this.compare(o, (x, y) => x <= y);
        break;
      case DW_OP.gt:
        this.compare(o, (x, y) => x > y);
        break;
      case DW_OP.ge:
        this.compare(o, (x, y) => x >= y);
        break;
      case DW_OP.skip:
        return o.end + Number(o.a);
      case DW_OP.bra: {
        const c = this.pop(o);
        // Which way the expression goes depends on the unknown value, so none of it is known.
        if ('missing' in c) throw new UnavailableError(c.missing);
        return c.v !== 0n ? o.end + Number(o.a) : undefined;
      }
      case DW_OP.regx:
        this.setLocation(o, { kind: 'register', reg: Number(o.a) });
        break;
      case DW_OP.bregx:
        this.offsetFrom(this.regValue(Number(o.a)), o.b);
        break;
      case DW_OP.fbreg: {
        const fb = this.ctx.frameBase ? await this.ctx.frameBase() : undefined;
        this.offsetFrom(fb === undefined ? { missing: 'the frame base (DW_AT_frame_base) is not known in this frame' } : { v: fb, t: undefined }, o.a);
        break;
      }
      case DW_OP.call_frame_cfa: {
        const cfa = this.ctx.cfa ? await this.ctx.cfa() : undefined;
        if (cfa === undefined) this.unknown('the canonical frame address (DW_OP_call_frame_cfa) is not known in this frame');
        else this.push(cfa);
        break;
      }
      case DW_OP.push_object_address:
        if (this.ctx.objectAddress === undefined) this.unknown('there is no object address for DW_OP_push_object_address');
        else this.push(this.ctx.objectAddress);
        break;
      case DW_OP.piece:
        this.piece(Number(o.a) * 8, 0);
        break;
      case DW_OP.bit_piece:
        this.piece(Number(o.a), Number(o.b));
        break;
      case DW_OP.stack_value: {
        const v = this.pop(o);
        this.setLocation(o, 'missing' in v ? { kind: 'unavailable', reason: v.missing } : { kind: 'value', value: this.generic(v) });
        break;
      }
      case DW_OP.implicit_value:
        this.setLocation(o, { kind: 'implicit', bytes: Buffer.from(o.block ?? Buffer.alloc(0)) });
        break;
      case DW_OP.implicit_pointer:
      case DW_OP.GNU_implicit_pointer:
        this.setLocation(o, { kind: 'implicitPointer', die: Number(o.a), offset: o.b });
        break;
      case DW_OP.entry_value:
      case DW_OP.GNU_entry_value: {
        const v = this.ctx.entryValue ? await this.ctx.entryValue(o.block ?? Buffer.alloc(0)) : undefined;
        if (v === undefined) this.unknown(ENTRY_VALUE_UNAVAILABLE);
        else this.push(v);
        break;
      }
      case DW_OP.const_type:
      case DW_OP.GNU_const_type: {
        const bytes = o.block ?? Buffer.alloc(0);
        this.push(le(bytes), this.type(o, o.a, bytes.length));
        break;
      }
      case DW_OP.regval_type:
      case DW_OP.GNU_regval_type: {
        const r = this.regValue(Number(o.a));
        if ('missing' in r) s.push(r);
        else this.push(r.v, this.type(o, o.b));
        break;
      }
      case DW_OP.convert:
      case DW_OP.GNU_convert:
      case DW_OP.reinterpret:
      case DW_OP.GNU_reinterpret: {
        const v = this.pop(o);
        if ('missing' in v) s.push(v);
        else {
          // A conversion keeps the number (sign-extending a signed source); reinterpret keeps the bits.
          const keepBits = op === DW_OP.reinterpret || op === DW_OP.GNU_reinterpret;
          this.push(keepBits || !v.t?.signed ? v.v : this.signed(v), this.type(o, o.a));
        }
        break;
      }
      case DW_OP.call2:
      case DW_OP.call4:
      case DW_OP.call_ref: {
        const target = op === DW_OP.call_ref ? Number(o.a) : (this.ctx.cuOffset ?? 0) + Number(o.a);
        if (!this.ctx.callDie) throw new UnavailableError(`${opName(op)} (a call to the expression of DIE 0x${target.toString(16)}) is not supported here`);
        const sub = await this.ctx.callDie(target);
        // A DIE without DW_AT_location makes the call a no-op (DWARF 5 section 2.5.1.5).
        if (sub) await this.run(sub, depth + 1);
        break;
      }
      case DW_OP.form_tls_address:
      case DW_OP.GNU_push_tls_address:
        this.pop(o);
        this.unknown('thread-local storage is not supported in the kernel');
        break;
      case DW_OP.GNU_parameter_ref:
        this.unknown('the value of an optimized-out parameter (DW_OP_GNU_parameter_ref) cannot be recovered here');
        break;
      case DW_OP.GNU_variable_value:
        this.unknown('DW_OP_GNU_variable_value (the value of another variable) is not supported');
        break;
      case DW_OP.nop:
      case DW_OP.GNU_uninit:
        break;
      default:
        throw new DwarfError(EXPR_SECTION, o.offset, `unknown opcode 0x${op.toString(16)}`);
    }
    return undefined;
  }

  private offsetFrom(base: Slot, offset: bigint): void {
    if ('missing' in base) this.stack.push(base);
    else this.push(base.v + offset);
  }

  /** The location once the whole expression has run. */
  result(): ExprLocation {
    if (this.pieces.length > 0) {
      if (this.pending) throw new DwarfError(EXPR_SECTION, 0, `${opName(this.pending.op)} after the last DW_OP_piece is not itself a piece`);
      return { kind: 'pieces', pieces: this.pieces };
    }
    if (this.pending) return this.pending.loc;
    const top = this.stack[this.stack.length - 1];
    if (!top) {
      if (this.opsSincePiece === 0) return { kind: 'optimized' };
      throw new DwarfError(EXPR_SECTION, 0, 'the expression left nothing on the stack to be its location');
    }
    return 'missing' in top ? { kind: 'unavailable', reason: top.missing } : { kind: 'memory', address: this.generic(top) };
  }
}

function abs(v: bigint): bigint {
  return v < 0n ? -v : v;
}

/** Little-endian bytes as an unsigned integer. */
function le(b: Buffer): bigint {
  if (b.length <= 8) {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }
  // Wide typed values (up to 255 bytes): one hex parse, not a shift per byte on a growing bigint.
  return BigInt('0x' + Buffer.from(b).reverse().toString('hex'));
}

async function execute(expr: Buffer, ctx: ExprContext, initialStack: bigint[] | undefined): Promise<ExprLocation> {
  const m = new Machine(ctx);
  for (const v of initialStack ?? []) m.stack.push({ v: BigInt.asUintN(ctx.addressSize * 8, v), t: undefined });
  await m.run(expr, 0);
  return m.result();
}

/** Where the object described by a location expression is. */
export async function evaluateLocation(expr: Buffer, ctx: ExprContext, initialStack?: bigint[]): Promise<ExprLocation> {
  try {
    return await execute(expr, ctx, initialStack);
  } catch (e) {
    if (e instanceof UnavailableError) return { kind: 'unavailable', reason: e.reason };
    throw e;
  }
}

/**
 * For expressions that compute a value (DW_AT_frame_base computed as a value, CFA
 * expressions, DW_AT_data_member_location as expression with the object address pushed,
 * call_value). A register location (DW_OP_regN) yields the register's value. What can't be
 * known throws UnavailableError; a result that is no single value (pieces, an implicit
 * pointer) throws a DwarfError.
 */
export async function evaluateValue(expr: Buffer, ctx: ExprContext, initialStack?: bigint[]): Promise<bigint> {
  const loc = await execute(expr, ctx, initialStack);
  switch (loc.kind) {
    case 'memory':
      return loc.address;
    case 'value':
      return loc.value;
    case 'register': {
      const v = ctx.register(loc.reg);
      if (v === undefined) throw new UnavailableError(`DWARF register ${loc.reg} is not known in this frame`);
      return v;
    }
    case 'implicit':
      return BigInt.asUintN(ctx.addressSize * 8, le(loc.bytes));
    case 'unavailable':
      throw new UnavailableError(loc.reason);
    case 'optimized':
      throw new UnavailableError('the expression is empty: the value was optimized out');
    default:
      throw new DwarfError(EXPR_SECTION, 0, `a ${loc.kind === 'pieces' ? 'composite (DW_OP_piece)' : 'synthetic pointer'} location is not a single value`);
  }
}
