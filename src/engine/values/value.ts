/**
 * Typed values of the stopped guest. A value knows its C type and where it lives (memory,
 * a register of some frame, or nowhere: computed); memory contents are read on demand through
 * the stop's block cache, so expanding one member of a large struct reads only that member.
 */
import { ErrorCode, UserError } from '../../util/errors';
import { sizeOf, strip, typeName, type CType, type Member } from '../../symbols/dwarf/types';

export type Place =
  | { kind: 'memory'; address: bigint }
  /** A register of a frame; only the innermost frame's registers can be written. */
  | { kind: 'register'; reg: number; frame: number; /** target.xml name, for registers DWARF doesn't number (eflags, cr3). */ name?: string }
  | { kind: 'none' };

export interface Value {
  type: CType;
  place: Place;
  /** Known contents (registers, constants, computed values); memory values are read on demand. */
  bytes?: Buffer;
  /** A bit-field: bit offset from the start of `place`/`bytes` (LSB numbering) and width. */
  bitOffset?: number;
  bitSize?: number;
  /** Why the value is unknown, e.g. "optimized out"; set instead of contents. */
  missing?: string;
}

/** What reading values needs from the debugger. */
export interface ValueEnv {
  read(addr: bigint, size: number): Promise<Buffer>;
  pointerSize: number;
}

/** An expression or value error the user should see as is (no stack, no "Internal"). */
export class ValueError extends UserError {
  constructor(message: string) {
    super(ErrorCode.Expression, message);
    this.name = 'ValueError';
  }
}

const MASK64 = (1n << 64n) - 1n;

export function isSignedType(t: CType): boolean {
  const s = strip(t);
  if (s.kind === 'base') return s.encoding === 'signed' || s.encoding === 'signed_char';
  if (s.kind === 'enum') return s.signed;
  return false;
}

export function isScalar(t: CType): boolean {
  const s = strip(t);
  return s.kind === 'base' || s.kind === 'enum' || s.kind === 'pointer';
}

export function isPointer(t: CType): boolean {
  return strip(t).kind === 'pointer';
}

export function isInteger(t: CType): boolean {
  const s = strip(t);
  return (s.kind === 'base' && s.encoding !== 'float') || s.kind === 'enum';
}

/** The bytes of a value, read from memory when needed. Throws for a missing value. */
export async function contents(v: Value, env: ValueEnv): Promise<Buffer> {
  if (v.missing) throw new ValueError(`value has been ${v.missing}`);
  if (v.bytes) return v.bytes;
  if (v.place.kind !== 'memory') throw new ValueError('value has no contents');
  const size = byteSpan(v);
  if (size === undefined) throw new ValueError(`cannot read an object of incomplete type '${typeName(v.type)}'`);
  return env.read(v.place.address, size);
}

/** How many bytes hold the value (a bit-field spans the bytes its bits touch). */
export function byteSpan(v: Value): number | undefined {
  if (v.bitSize !== undefined) return Math.ceil(((v.bitOffset ?? 0) + v.bitSize) / 8);
  return sizeOf(v.type);
}

export function leBig(b: Buffer, offset = 0, length = b.length - offset): bigint {
  let v = 0n;
  for (let i = offset + length - 1; i >= offset; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

export function bigLe(value: bigint, size: number): Buffer {
  const out = Buffer.alloc(size);
  let v = BigInt.asUintN(size * 8, value);
  for (let i = 0; i < size; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** An integer, enum, bool, char or pointer value as a bigint (sign-extended when signed). */
export async function toInteger(v: Value, env: ValueEnv): Promise<bigint> {
  const s = strip(v.type);
  if (s.kind === 'array' && v.place.kind === 'memory') return v.place.address; // arrays decay to pointers
  if (s.kind === 'function' && v.place.kind === 'memory') return v.place.address;
  if (s.kind !== 'base' && s.kind !== 'enum' && s.kind !== 'pointer') throw new ValueError(`'${typeName(v.type)}' is not a scalar type`);
  if (s.kind === 'base' && s.encoding === 'float') return BigInt(Math.trunc(await toNumber(v, env)));
  const b = await contents(v, env);
  let raw = leBig(b);
  let bits = b.length * 8;
  if (v.bitSize !== undefined) {
    raw = (raw >> BigInt(v.bitOffset ?? 0)) & ((1n << BigInt(v.bitSize)) - 1n);
    bits = v.bitSize;
  }
  return isSignedType(v.type) ? BigInt.asIntN(bits, raw) : BigInt.asUintN(bits, raw);
}

/** A floating-point value (or an integer converted). */
export async function toNumber(v: Value, env: ValueEnv): Promise<number> {
  const s = strip(v.type);
  if (s.kind === 'base' && s.encoding === 'float') {
    const b = await contents(v, env);
    if (b.length === 4) return b.readFloatLE(0);
    if (b.length === 8) return b.readDoubleLE(0);
    throw new ValueError(`${b.length * 8}-bit floating point is not supported`);
  }
  return Number(await toInteger(v, env));
}

/** A value made of known bytes (a literal, a computed result). */
export function valueOf(type: CType, n: bigint): Value {
  const size = sizeOf(type) ?? 8;
  return { type, place: { kind: 'none' }, bytes: bigLe(n, size) };
}

export function memoryValue(type: CType, address: bigint): Value {
  return { type, place: { kind: 'memory', address: address & MASK64 } };
}

/** Find a member by name, looking through anonymous structs and unions as C does. */
export function findMember(t: CType, name: string): { member: Member; offset: number } | undefined {
  const s = strip(t);
  if (s.kind !== 'struct' && s.kind !== 'union') return undefined;
  for (const m of s.members) {
    if (m.name === name) return { member: m, offset: m.offset };
    if (m.name === undefined) {
      const inner = findMember(m.type, name);
      if (inner) return { member: inner.member, offset: m.offset + inner.offset };
    }
  }
  return undefined;
}

/** A member of a struct or union value, at `offset` bytes into it. */
export function memberValue(v: Value, m: Member, offset = m.offset): Value {
  const out: Value = { type: m.type, place: { kind: 'none' } };
  if (m.bitSize !== undefined) {
    out.bitSize = m.bitSize;
    out.bitOffset = m.bitOffset ?? 0;
  }
  if (v.missing) return { ...out, missing: v.missing };
  if (v.bytes) {
    const span = byteSpan(out) ?? 0;
    if (offset + span > v.bytes.length) return { ...out, missing: 'outside the known bytes of its parent' };
    out.bytes = v.bytes.subarray(offset, offset + span);
    return out;
  }
  if (v.place.kind === 'memory') out.place = { kind: 'memory', address: (v.place.address + BigInt(offset)) & MASK64 };
  return out;
}

/** Element `i` of an array value (no bounds check: C doesn't have one either, and flexible arrays need none). */
export function elementValue(v: Value, i: number): Value {
  const s = strip(v.type);
  if (s.kind !== 'array') throw new ValueError(`cannot subscript a value of type '${typeName(v.type)}'`);
  const size = sizeOf(s.element);
  if (size === undefined) throw new ValueError(`array element type '${typeName(s.element)}' has no size`);
  const out: Value = { type: s.element, place: { kind: 'none' } };
  if (v.missing) return { ...out, missing: v.missing };
  if (v.bytes) {
    if ((i + 1) * size > v.bytes.length || i < 0) throw new ValueError(`index ${i} is outside the known bytes of the array`);
    out.bytes = v.bytes.subarray(i * size, (i + 1) * size);
    return out;
  }
  if (v.place.kind !== 'memory') throw new ValueError('the array is not in memory');
  out.place = { kind: 'memory', address: (v.place.address + BigInt(i) * BigInt(size)) & MASK64 };
  return out;
}

/** `*p`: the object a pointer value points at. */
export async function derefValue(v: Value, env: ValueEnv): Promise<Value> {
  const s = strip(v.type);
  if (s.kind === 'array') return elementValue(v, 0);
  if (s.kind !== 'pointer') throw new ValueError(`cannot dereference a value of type '${typeName(v.type)}': it is not a pointer`);
  const target = s.target;
  if (strip(target).kind === 'void') throw new ValueError(`cannot dereference a 'void *': cast it to a pointer to the type it points at`);
  return memoryValue(target, await toInteger(v, env));
}
