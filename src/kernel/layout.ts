/**
 * The kernel's structures as this kernel's DWARF lays them out. Offsets are never fixed in
 * code: `struct module` changed shape in 6.4 (`mem[]`) and its section attributes in 6.14,
 * and a config option moves every member after it. A member path such as
 * `sect_attrs` or `core_layout.base` is resolved through the type, anonymous members included.
 */
import { sizeOf, strip, type CType, type Member } from '../symbols/dwarf/types';

/** What the kernel layer needs from the debugger: memory, symbol addresses and types. */
export interface KernelAccess {
  readonly pointerSize: number;
  read(addr: bigint, size: number): Promise<Buffer>;
  /** Many reads at once, pipelined (the fast way to read one field of many objects); undefined where unreadable. */
  readMany(ranges: ReadonlyArray<readonly [bigint, number]>): Promise<Array<Buffer | undefined>>;
  /** The address of a global symbol of vmlinux (not a module's). */
  symbol(name: string): bigint | undefined;
  /**
   * `struct module`, `struct bin_attribute`: the complete type as the unit of one of the
   * functions `near` defines it (a quick lookup: no whole-program index), else undefined.
   */
  type(key: string, near: readonly string[]): Promise<CType | undefined>;
}

export class LayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayoutError';
  }
}

export interface Field {
  offset: number;
  type: CType;
}

/** A struct's members by path, from its DWARF type. */
export class StructLayout {
  constructor(
    readonly name: string,
    readonly type: CType,
  ) {}

  static async of(access: KernelAccess, key: string, near: readonly string[]): Promise<StructLayout> {
    const t = await access.type(key, near);
    const s = t && strip(t);
    if (!s || (s.kind !== 'struct' && s.kind !== 'union') || s.declaration) throw new LayoutError(`this kernel's DWARF has no definition of ${key}`);
    return new StructLayout(key, s);
  }

  get size(): number {
    return sizeOf(this.type) ?? 0;
  }

  has(path: string): boolean {
    return this.find(path) !== undefined;
  }

  /** The member at `a.b.c` (array members may be indexed: `mem[4].base`). */
  field(path: string): Field {
    const f = this.find(path);
    if (!f) throw new LayoutError(`${this.name} has no member ${path} in this kernel`);
    return f;
  }

  offset(path: string): number {
    return this.field(path).offset;
  }

  /** Paths found before: the readers ask for the same members at every stop. */
  private readonly found = new Map<string, Field | undefined>();

  private find(path: string): Field | undefined {
    if (this.found.has(path)) return this.found.get(path);
    const f = this.walk(path);
    this.found.set(path, f);
    return f;
  }

  private walk(path: string): Field | undefined {
    let cur: Field = { offset: 0, type: this.type };
    for (const part of path.split('.')) {
      const m = /^(\w+)(?:\[(\d+)\])?$/.exec(part);
      if (!m) return undefined;
      const s = strip(cur.type);
      if (s.kind !== 'struct' && s.kind !== 'union') return undefined;
      const member = findMember(s.members, m[1]);
      if (!member) return undefined;
      cur = { offset: cur.offset + member.offset, type: member.type };
      if (m[2] !== undefined) {
        const a = strip(cur.type);
        if (a.kind !== 'array') return undefined;
        const elem = sizeOf(a.element) ?? 0;
        cur = { offset: cur.offset + Number(m[2]) * elem, type: a.element };
      }
    }
    return cur;
  }
}

/** A named member, looking inside anonymous structs and unions as C does. */
function findMember(members: readonly Member[], name: string): Member | undefined {
  for (const m of members) {
    if (m.name === name) return m;
    if (m.name === undefined) {
      const s = strip(m.type);
      if (s.kind === 'struct' || s.kind === 'union') {
        const inner = findMember(s.members, name);
        if (inner) return { ...inner, offset: m.offset + inner.offset };
      }
    }
  }
  return undefined;
}

/** Little-endian unsigned integer of `size` bytes at `off`. */
export function readUint(buf: Buffer, off: number, size: number): bigint {
  if (size === 8) return buf.readBigUInt64LE(off);
  if (size === 4) return BigInt(buf.readUInt32LE(off));
  if (size === 2) return BigInt(buf.readUInt16LE(off));
  return BigInt(buf[off]);
}

/** A NUL-terminated string read from guest memory, never reading across a page it doesn't need. */
export async function readCString(access: KernelAccess, addr: bigint, max = 256): Promise<string> {
  if (addr === 0n) return '';
  const parts: Buffer[] = [];
  let at = addr;
  let left = max;
  while (left > 0) {
    const n = Math.min(left, 4096 - Number(at & 0xfffn));
    const b = await access.read(at, n);
    const end = b.indexOf(0);
    parts.push(end < 0 ? b : b.subarray(0, end));
    if (end >= 0) break;
    at += BigInt(n);
    left -= n;
  }
  return Buffer.concat(parts).toString('latin1');
}
