/**
 * C types from DWARF type DIEs. Each type DIE becomes one CType object, cached by its
 * .debug_info offset, so self-referential structs (list_head) resolve without recursion:
 * a struct's members and a pointer's target are read on first use.
 */
import { DW_AT, DW_ATE, DW_TAG } from './constants';
import type { CompileUnit } from './cu';
import type { Dwarf } from './dwarf';
import type { DebugInfoOffset } from './offsets';
import { DwarfError } from './reader';
import { attrFlag, attrNumber, attrRef, type Die } from './unit';

export type Qualifier = 'const' | 'volatile' | 'restrict' | '_Atomic';

export type BaseEncoding = 'signed' | 'unsigned' | 'signed_char' | 'unsigned_char' | 'bool' | 'float' | 'address' | 'utf' | 'other';

export interface Member {
  /** Undefined for an anonymous struct or union member (its members read as the parent's). */
  name: string | undefined;
  type: CType;
  /** Byte offset of the member's storage from the start of the containing object. */
  offset: number;
  /** For a bit-field: the bit offset from `offset*8` (little-endian numbering) and the width. */
  bitOffset?: number;
  bitSize?: number;
}

export interface Enumerator {
  name: string;
  value: bigint;
}

export type CType =
  | { kind: 'void'; id: number }
  | { kind: 'base'; id: number; name: string; size: number; encoding: BaseEncoding }
  | { kind: 'pointer'; id: number; size: number; readonly target: CType }
  | { kind: 'struct' | 'union'; id: number; name: string | undefined; size: number; declaration: boolean; readonly members: Member[] }
  | { kind: 'array'; id: number; element: CType; /** Undefined for a flexible array (`[]`). */ count: number | undefined }
  | { kind: 'enum'; id: number; name: string | undefined; size: number; signed: boolean; enumerators: Enumerator[]; declaration: boolean }
  | { kind: 'typedef'; id: number; name: string; readonly target: CType }
  | { kind: 'qualified'; id: number; qualifier: Qualifier; readonly target: CType }
  | { kind: 'function'; id: number; readonly returns: CType; readonly params: CType[]; variadic: boolean; prototyped: boolean };

let synthetic = -1;
/** Types made by expressions (casts to `int *`, `char [4]`) get negative ids, apart from DIE offsets. */
export function syntheticId(): number {
  return synthetic--;
}

export const VOID: CType = { kind: 'void', id: syntheticId() };

export function pointerTo(target: CType, size = 8): CType {
  return { kind: 'pointer', id: syntheticId(), size, target };
}

export function arrayOf(element: CType, count: number | undefined): CType {
  return { kind: 'array', id: syntheticId(), element, count };
}

/** Strip typedefs and qualifiers: the type a value really has. */
export function strip(t: CType): CType {
  let cur = t;
  for (let i = 0; i < 64 && (cur.kind === 'typedef' || cur.kind === 'qualified'); i++) cur = cur.target;
  return cur;
}

/** Nesting beyond this is a DW_AT_type cycle in corrupt DWARF (an array of a typedef of itself), not C. */
const MAX_TYPE_DEPTH = 64;

export function sizeOf(t: CType, depth = 0): number | undefined {
  const s = strip(t);
  if (depth > MAX_TYPE_DEPTH) return undefined;
  switch (s.kind) {
    case 'void':
      return 1;
    case 'function':
      return 1;
    case 'array': {
      // A flexible array member takes no space in its struct (gdb's sizeof says 0 too).
      if (s.count === undefined) return 0;
      const e = sizeOf(s.element, depth + 1);
      return e === undefined ? undefined : e * s.count;
    }
    case 'typedef':
    case 'qualified':
      // strip() gave up: the typedef/qualifier chain loops.
      return undefined;
    default:
      return s.size;
  }
}

/**
 * The C spelling of a type, as gdb's ptype/whatis print it: `struct task_struct *`,
 * `char [16]`, `int (*)(void *)`, `const char *`.
 */
export function typeName(t: CType): string {
  return declarator(t, '', 0).trim();
}

function declarator(t: CType, inner: string, depth: number): string {
  if (depth > MAX_TYPE_DEPTH) return join('<type cycle>', inner);
  const d = depth + 1;
  switch (t.kind) {
    case 'void':
      return join('void', inner);
    case 'base':
      return join(t.name, inner);
    case 'struct':
    case 'union':
      return join(`${t.kind} ${t.name ?? '{...}'}`, inner);
    case 'enum':
      return join(`enum ${t.name ?? '{...}'}`, inner);
    case 'typedef':
      return join(t.name, inner);
    case 'qualified': {
      // `const char *` puts the qualifier before a named type; `char * const` after a star.
      if (t.target.kind === 'pointer') return pointerDeclarator(t.target, `* ${t.qualifier}${inner ? ' ' + inner : ''}`, d);
      return `${t.qualifier} ${declarator(t.target, inner, d)}`;
    }
    case 'pointer':
      return pointerDeclarator(t, `*${inner}`, d);
    case 'array':
      return declarator(t.element, `${inner}[${t.count ?? ''}]`, d);
    case 'function': {
      const params = t.params.map((p) => declarator(p, '', d).trim());
      if (t.variadic) params.push('...');
      const list = params.length ? params.join(', ') : t.prototyped ? 'void' : '';
      return declarator(t.returns, `${inner}(${list})`, d);
    }
  }
}

function pointerDeclarator(p: Extract<CType, { kind: 'pointer' }>, inner: string, depth: number): string {
  const target = p.target;
  return declarator(target, target.kind === 'array' || target.kind === 'function' ? `(${inner})` : inner, depth);
}

function join(base: string, inner: string): string {
  return inner ? `${base} ${inner}` : base;
}

/** Reads type DIEs of one vmlinux. `complete` finds the full definition of a declared-only struct. */
export class TypeReader {
  private readonly cache = new Map<number, CType>();
  /** DIEs being read now: meeting one again means its DW_AT_type chain loops back to it. */
  private readonly reading = new Set<number>();
  /** Filled by the owner: name → a defining DIE in any unit (`struct task_struct`, `u64`). */
  completer: ((kind: 'struct' | 'union' | 'enum', name: string) => CType | undefined) | undefined;

  constructor(private readonly dwarf: Dwarf) {}

  /** The type a DIE's DW_AT_type names; void when it has none. */
  typeOf(cu: CompileUnit, die: Die): CType {
    const ref = attrRef(die, DW_AT.type);
    return ref === undefined ? VOID : this.at(cu, ref);
  }

  at(cu: CompileUnit, offset: DebugInfoOffset): CType {
    const hit = this.cache.get(offset);
    if (hit) return hit;
    const ucu = cu.contains(offset) ? cu : this.dwarf.unitContaining(offset);
    const die = ucu?.dieAt(offset);
    if (!ucu || !die) throw new DwarfError('.debug_info', offset, 'type DIE not found (DW_AT_type points at no DIE)', cu.sections.elf.path);
    return this.read(ucu, die);
  }

  read(cu: CompileUnit, die: Die): CType {
    const hit = this.cache.get(die.offset);
    if (hit) return hit;
    // Pointers, typedefs and members resolve lazily, so only an array or enum whose own
    // element/underlying type leads back to it gets here: a cycle no C type has.
    if (this.reading.has(die.offset)) throw new DwarfError('.debug_info', die.offset, 'DW_AT_type cycle: the type is defined in terms of itself', cu.sections.elf.path);
    this.reading.add(die.offset);
    try {
      return this.readUncached(cu, die);
    } finally {
      this.reading.delete(die.offset);
    }
  }

  private readUncached(cu: CompileUnit, die: Die): CType {
    const id = die.offset;
    const name = cu.string(die, DW_AT.name);
    const size = attrNumber(die, DW_AT.byte_size);
    const lazyTarget = (): (() => CType) => {
      let t: CType | undefined;
      return () => (t ??= this.typeOf(cu, die));
    };
    let t: CType;
    switch (die.tag) {
      case DW_TAG.base_type:
        t = { kind: 'base', id, name: name ?? '?', size: size ?? 0, encoding: encodingOf(attrNumber(die, DW_AT.encoding)) };
        break;
      case DW_TAG.unspecified_type:
        t = { kind: 'void', id };
        break;
      case DW_TAG.pointer_type:
      case DW_TAG.reference_type: {
        const target = lazyTarget();
        t = { kind: 'pointer', id, size: size ?? cu.header.addressSize, get target() { return target(); } };
        break;
      }
      case DW_TAG.const_type:
      case DW_TAG.volatile_type:
      case DW_TAG.restrict_type:
      case DW_TAG.atomic_type: {
        const q: Qualifier = die.tag === DW_TAG.const_type ? 'const' : die.tag === DW_TAG.volatile_type ? 'volatile' : die.tag === DW_TAG.restrict_type ? 'restrict' : '_Atomic';
        const target = lazyTarget();
        t = { kind: 'qualified', id, qualifier: q, get target() { return target(); } };
        break;
      }
      case DW_TAG.typedef: {
        const target = lazyTarget();
        t = { kind: 'typedef', id, name: name ?? '?', get target() { return target(); } };
        break;
      }
      case DW_TAG.structure_type:
      case DW_TAG.union_type:
      case DW_TAG.class_type: {
        const kind = die.tag === DW_TAG.union_type ? 'union' : 'struct';
        const declaration = attrFlag(die, DW_AT.declaration);
        let members: Member[] | undefined;
        const self = this;
        t = {
          kind,
          id,
          name,
          size: size ?? 0,
          declaration,
          get members(): Member[] {
            return (members ??= self.members(cu, die));
          },
        };
        break;
      }
      case DW_TAG.enumeration_type: {
        const enumerators: Enumerator[] = [];
        for (const c of die.children) {
          if (c.tag !== DW_TAG.enumerator) continue;
          const v = c.attrs.get(DW_AT.const_value);
          const value = v?.kind === 'udata' || v?.kind === 'sdata' ? v.value : 0n;
          enumerators.push({ name: cu.string(c, DW_AT.name) ?? '?', value });
        }
        const under = attrRef(die, DW_AT.type);
        let signed = enumerators.some((e) => e.value < 0n);
        if (under !== undefined) {
          const u = strip(this.at(cu, under));
          signed = u.kind === 'base' && (u.encoding === 'signed' || u.encoding === 'signed_char');
        }
        t = { kind: 'enum', id, name, size: size ?? 4, signed, enumerators, declaration: attrFlag(die, DW_AT.declaration) };
        break;
      }
      case DW_TAG.array_type: {
        // Multi-dimensional arrays are one DIE with a subrange per dimension: nest them.
        const dims = die.children.filter((c) => c.tag === DW_TAG.subrange_type).map((c) => subrangeCount(c));
        let element = this.typeOf(cu, die);
        for (let i = dims.length - 1; i >= 1; i--) element = { kind: 'array', id: syntheticId(), element, count: dims[i] };
        t = { kind: 'array', id, element, count: dims.length ? dims[0] : undefined };
        break;
      }
      case DW_TAG.subroutine_type: {
        let params: CType[] | undefined;
        const returns = lazyTarget();
        const self = this;
        t = {
          kind: 'function',
          id,
          get returns() { return returns(); },
          get params(): CType[] {
            return (params ??= die.children.filter((c) => c.tag === DW_TAG.formal_parameter).map((c) => self.typeOf(cu, c)));
          },
          variadic: die.children.some((c) => c.tag === DW_TAG.unspecified_parameters),
          prototyped: attrFlag(die, DW_AT.prototyped),
        };
        break;
      }
      default:
        t = { kind: 'base', id, name: `<DWARF tag 0x${die.tag.toString(16)}>`, size: size ?? 0, encoding: 'other' };
    }
    this.cache.set(die.offset, t);
    return t;
  }

  /** A function's own type from its subprogram DIE: return type and parameter types. */
  functionType(cu: CompileUnit, die: Die): CType {
    const params = die.children.filter((c) => c.tag === DW_TAG.formal_parameter).map((c) => this.typeOf(cu, c));
    return {
      kind: 'function',
      id: syntheticId(),
      returns: this.typeOf(cu, die),
      params,
      variadic: die.children.some((c) => c.tag === DW_TAG.unspecified_parameters),
      prototyped: attrFlag(die, DW_AT.prototyped),
    };
  }

  private members(cu: CompileUnit, die: Die): Member[] {
    const out: Member[] = [];
    for (const c of die.children) {
      if (c.tag !== DW_TAG.member) continue;
      const type = this.typeOf(cu, c);
      const m: Member = { name: cu.string(c, DW_AT.name), type, offset: attrNumber(c, DW_AT.data_member_location) ?? 0 };
      const bitSize = attrNumber(c, DW_AT.bit_size);
      if (bitSize !== undefined) {
        const dataBit = attrNumber(c, DW_AT.data_bit_offset);
        if (dataBit !== undefined) {
          m.offset = Math.floor(dataBit / 8);
          m.bitOffset = dataBit % 8;
        } else {
          // DWARF 2/3 count DW_AT_bit_offset from the storage unit's most significant bit.
          const storage = attrNumber(c, DW_AT.byte_size) ?? sizeOf(type) ?? 4;
          const msb = attrNumber(c, DW_AT.bit_offset) ?? 0;
          m.bitOffset = storage * 8 - msb - bitSize;
        }
        m.bitSize = bitSize;
      }
      out.push(m);
    }
    return out;
  }

  /** A declared-only struct/union/enum replaced by its definition from another unit, when one is known. */
  complete(t: CType): CType {
    if ((t.kind === 'struct' || t.kind === 'union' || t.kind === 'enum') && t.declaration && t.name && this.completer) return this.completer(t.kind, t.name) ?? t;
    return t;
  }
}

function subrangeCount(d: Die): number | undefined {
  const count = attrNumber(d, DW_AT.count);
  if (count !== undefined) return count;
  const upper = d.attrs.get(DW_AT.upper_bound);
  if (!upper) return undefined;
  // GCC writes -1 (or an all-ones unsigned) as the upper bound of a zero-length array.
  if (upper.kind === 'sdata') return upper.value < 0n ? 0 : Number(upper.value) + 1 - (attrNumber(d, DW_AT.lower_bound) ?? 0);
  if (upper.kind === 'udata') return upper.value >= 0xffffffffn ? 0 : Number(upper.value) + 1 - (attrNumber(d, DW_AT.lower_bound) ?? 0);
  return undefined;
}

function encodingOf(e: number | undefined): BaseEncoding {
  switch (e) {
    case DW_ATE.signed:
      return 'signed';
    case DW_ATE.unsigned:
      return 'unsigned';
    case DW_ATE.signed_char:
      return 'signed_char';
    case DW_ATE.unsigned_char:
      return 'unsigned_char';
    case DW_ATE.boolean:
      return 'bool';
    case DW_ATE.float:
      return 'float';
    case DW_ATE.address:
      return 'address';
    case DW_ATE.UTF:
      return 'utf';
    default:
      return 'other';
  }
}
