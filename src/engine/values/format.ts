/**
 * Values as a C programmer reads them, close to gdb's `print`: signed and unsigned
 * integers, chars with their literal, pointers with the symbol they point at, strings
 * bounded, structs as `{a = 1, b = 0x0}` previews, and `<optimized out>` where DWARF says the
 * value is gone. Children (struct members, array elements, a pointer's target) are listed
 * lazily, one level at a time.
 */
import { sizeOf, strip, typeName, type CType } from '../../symbols/dwarf/types';
import { contents, derefValue, elementValue, isSignedType, memberValue, toInteger, toNumber, ValueError, type Value, type ValueEnv } from './value';

export interface FormatEnv extends ValueEnv {
  /** `kernel_init` or `init_task+16` for an address a symbol covers. */
  symbolize(addr: bigint): string | undefined;
  /** A declared-only struct replaced by its definition. */
  complete(t: CType): CType;
  hex?: boolean;
}

export interface Child {
  name: string;
  value: Value;
  /** How to reach it in C from the parent's expression (for evaluateName). */
  access: { kind: 'member'; name: string; arrow?: boolean } | { kind: 'index'; index: number } | { kind: 'deref' };
}

const STRING_LIMIT = 200;
const PREVIEW_LIMIT = 160;
const ARRAY_PREVIEW = 16;

export function missingText(v: Value): string {
  return `<${v.missing ?? 'optimized out'}>`;
}

function charLiteral(c: number): string {
  const esc: Record<number, string> = { 0: '\\000', 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (esc[c] !== undefined) return esc[c];
  if (c >= 0x20 && c < 0x7f) return String.fromCharCode(c);
  return '\\' + (c & 0xff).toString(8).padStart(3, '0');
}

function quoteString(bytes: Buffer, truncated: boolean): string {
  let s = '"';
  for (const b of bytes) s += b === 34 ? '\\"' : b === 39 ? "'" : charLiteral(b);
  return s + '"' + (truncated ? '...' : '');
}

function isCharType(t: CType): boolean {
  const s = strip(t);
  return s.kind === 'base' && s.size === 1 && (s.encoding === 'signed_char' || s.encoding === 'unsigned_char');
}

function formatInteger(n: bigint, env: FormatEnv, size: number): string {
  if (!env.hex) return n.toString();
  return '0x' + BigInt.asUintN(size * 8, n).toString(16);
}

/** A NUL-terminated string at addr, at most `limit` bytes; reads in small steps so a short string costs one block. */
export async function readCString(env: ValueEnv, addr: bigint, limit = STRING_LIMIT): Promise<{ bytes: Buffer; truncated: boolean }> {
  const parts: Buffer[] = [];
  let got = 0;
  while (got < limit) {
    // Stay inside the current 64-byte line: a string can end just before an unmapped page.
    const here = addr + BigInt(got);
    const step = Math.min(limit - got, 64 - Number(here % 64n));
    const chunk = await env.read(here, step);
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      parts.push(chunk.subarray(0, nul));
      return { bytes: Buffer.concat(parts), truncated: false };
    }
    parts.push(chunk);
    got += step;
  }
  return { bytes: Buffer.concat(parts), truncated: true };
}

/** One line for a value: the Variables pane's value column, a hover, the REPL. */
export async function formatValue(v: Value, env: FormatEnv, budget = PREVIEW_LIMIT, maxDepth = 1): Promise<string> {
  if (v.missing) return missingText(v);
  try {
    return await formatInner(v, env, budget, 0, maxDepth);
  } catch (e) {
    return `<error: ${(e as Error).message}>`;
  }
}

async function formatInner(v: Value, env: FormatEnv, budget: number, depth: number, maxDepth: number): Promise<string> {
  if (v.missing) return missingText(v);
  const t = env.complete(strip(v.type));
  switch (t.kind) {
    case 'void':
      return 'void';
    case 'base': {
      if (t.encoding === 'float') return String(await toNumber(v, env));
      const n = await toInteger(v, env);
      if (t.encoding === 'bool') return n === 0n ? 'false' : n === 1n ? 'true' : n.toString();
      if (isCharType(t)) return `${formatInteger(n, env, 1)} '${charLiteral(Number(BigInt.asUintN(8, n)))}'`;
      return formatInteger(n, env, t.size);
    }
    case 'enum': {
      const n = await toInteger(v, env);
      const hit = t.enumerators.find((e) => e.value === n);
      if (hit) return hit.name;
      // Flag enums: gdb shows (A | B | unknown: 0x8).
      if (n > 0n && t.enumerators.length && t.enumerators.every((e) => e.value >= 0n && (e.value & (e.value - 1n)) === 0n)) {
        const names: string[] = [];
        let rest = n;
        for (const e of t.enumerators) if (e.value && (rest & e.value) === e.value) {
          names.push(e.name);
          rest &= ~e.value;
        }
        if (names.length) return `(${names.join(' | ')}${rest ? ` | unknown: 0x${rest.toString(16)}` : ''})`;
      }
      return n.toString();
    }
    case 'pointer':
      return formatPointer(v, t.target, env);
    case 'function': {
      const addr = v.place.kind === 'memory' ? v.place.address : 0n;
      const sym = env.symbolize(addr);
      return `{${typeName(v.type)}} 0x${addr.toString(16)}${sym ? ` <${sym}>` : ''}`;
    }
    case 'array': {
      // An array of unknown length (`extern char _text[]`) reads as gdb prints it: where it
      // is, and for chars the string that starts there.
      if (t.count === undefined && v.place.kind === 'memory') {
        const at = v.place.address;
        const sym = env.symbolize(at);
        const head = `0x${at.toString(16)}${sym ? ` <${sym}>` : ''}`;
        if (!isCharType(t.element)) return head;
        const str = await readCString(env, at).catch(() => undefined);
        return str ? `${head} ${quoteString(str.bytes, str.truncated)}` : head;
      }
      if (isCharType(t.element)) {
        const count = t.count ?? 0;
        const b = await contents({ ...v, type: v.type }, env).catch((e: unknown) => {
          if (t.count === undefined) return Buffer.alloc(0);
          throw e;
        });
        const upto = Math.min(count, STRING_LIMIT);
        const nul = b.subarray(0, upto).indexOf(0);
        return quoteString(b.subarray(0, nul >= 0 ? nul : upto), nul < 0 && count > STRING_LIMIT);
      }
      if (t.count === undefined) return '0x' + (v.place.kind === 'memory' ? v.place.address.toString(16) : '0');
      if (depth > maxDepth + 1) return '{...}';
      const parts: string[] = [];
      let used = 2;
      const n = Math.min(t.count, ARRAY_PREVIEW);
      for (let i = 0; i < n; i++) {
        const s = await formatInner(elementValue(v, i), env, budget - used, depth + 1, maxDepth);
        used += s.length + 2;
        parts.push(s);
        if (used > budget) break;
      }
      const more = parts.length < t.count ? '...' : '';
      return `{${parts.join(', ')}${more}}`;
    }
    case 'struct':
    case 'union': {
      if (t.declaration) return `<incomplete type ${typeName(t)}>`;
      if (depth > maxDepth || budget < 8) return '{...}';
      const parts: string[] = [];
      let used = 2;
      for (const m of t.members) {
        const s = await formatInner(memberValue(v, m), env, budget - used, depth + 1, maxDepth);
        const part = m.name === undefined ? s : `${m.name} = ${s}`;
        parts.push(part);
        used += part.length + 2;
        if (used > budget) {
          parts.push('...');
          break;
        }
      }
      return `{${parts.join(', ')}}`;
    }
    case 'typedef':
    case 'qualified':
      return formatInner({ ...v, type: strip(t) }, env, budget, depth, maxDepth);
  }
}

async function formatPointer(v: Value, target: CType, env: FormatEnv): Promise<string> {
  const addr = BigInt.asUintN(env.pointerSize * 8, await toInteger(v, env));
  const hex = `0x${addr.toString(16)}`;
  if (addr === 0n) return hex;
  const t = strip(target);
  if (isCharType(t)) {
    try {
      const s = await readCString(env, addr);
      return `${hex} ${quoteString(s.bytes, s.truncated)}`;
    } catch (e) {
      return `${hex} <error: ${(e as Error).message}>`;
    }
  }
  const sym = env.symbolize(addr);
  return sym ? `${hex} <${sym}>` : hex;
}

/** Whether the Variables pane offers to expand this value. */
export function hasChildren(v: Value, env: FormatEnv): boolean {
  if (v.missing) return false;
  const t = env.complete(strip(v.type));
  if (t.kind === 'struct' || t.kind === 'union') return !t.declaration && t.members.length > 0;
  if (t.kind === 'array') return !isCharType(t.element) && (t.count ?? 0) > 0;
  if (t.kind === 'pointer') {
    const target = env.complete(strip(t.target));
    return !(target.kind === 'void' || target.kind === 'function' || isCharType(target) || (target.kind === 'struct' && target.declaration));
  }
  return false;
}

/** Number of elements, for DAP's indexed paging of large arrays. */
export function indexedCount(v: Value): number | undefined {
  const t = strip(v.type);
  return t.kind === 'array' && t.count !== undefined && t.count > 100 ? t.count : undefined;
}

/**
 * One level of children. A pointer to a struct lists the struct's members directly (what a
 * user expanding `args` wants); other pointers have one child, the pointed-to value.
 */
export async function childrenOf(v: Value, env: FormatEnv, start = 0, count?: number): Promise<Child[]> {
  const t = env.complete(strip(v.type));
  if (t.kind === 'struct' || t.kind === 'union') {
    return t.members.map((m, i) => ({ name: m.name ?? `<anonymous ${strip(m.type).kind}>#${i}`, value: memberValue(v, m), access: { kind: 'member', name: m.name ?? '' } }));
  }
  if (t.kind === 'array') {
    const total = t.count ?? 0;
    const end = Math.min(total, count === undefined ? total : start + count);
    const out: Child[] = [];
    for (let i = start; i < end; i++) out.push({ name: `[${i}]`, value: elementValue(v, i), access: { kind: 'index', index: i } });
    return out;
  }
  if (t.kind === 'pointer') {
    const target = await derefValue({ ...v, type: { ...t, target: env.complete(strip(t.target)) } as CType }, env).catch((e: unknown) => {
      if (e instanceof ValueError) return undefined;
      throw e;
    });
    if (!target) return [];
    const tt = strip(target.type);
    if (tt.kind === 'struct' || tt.kind === 'union') {
      // The pointed-to struct must be readable for its members to mean anything.
      const size = sizeOf(tt) ?? 0;
      if (target.place.kind === 'memory' && size > 0) await env.read(target.place.address, Math.min(size, 1)).catch(() => undefined);
      return (await childrenOf(target, env)).map((c) => (c.access.kind === 'member' ? { ...c, access: { ...c.access, arrow: true } } : c));
    }
    return [{ name: '*', value: target, access: { kind: 'deref' } }];
  }
  return [];
}

export { isSignedType };
