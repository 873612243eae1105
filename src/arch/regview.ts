/**
 * How an architecture presents its registers in the Registers view: the groups, and the
 * registers whose bits mean something on their own (flags, control and system registers).
 * The tables live in each arch's own file; this module only applies them.
 */
import type { RegisterInfo } from '../rsp/targetxml';

/** One named field of a register, bits lo..hi inclusive. */
export interface BitField {
  name: string;
  lo: number;
  hi: number;
  /** What the field means, for the tooltip. */
  description: string;
  /** How to show the field's value: a flag, a number, an address (value << lo), or named values. */
  show?: 'flag' | 'number' | 'address' | Record<number, string>;
}

/**
 * A register's fields may depend on other registers (CR3's low bits are a PCID only when
 * CR4.PCIDE is set), so a decoder gets a reader for the vCPU's other values.
 */
export type FieldLayout = (value: bigint, other: (name: string) => bigint | undefined) => BitField[];

export interface RegisterGroupRule {
  name: string;
  /** Registers in this group, by exact name or pattern, in display order. */
  members: ReadonlyArray<string | RegExp>;
}

export interface RegisterViewSpec {
  groups: readonly RegisterGroupRule[];
  layouts: Readonly<Record<string, FieldLayout>>;
}

export interface DecodedField {
  name: string;
  /** `9` or `12..51`. */
  bits: string;
  value: bigint;
  /** The value as a reader wants it: `1`, `0x1a0c000`, `3 (ring 3)`. */
  text: string;
  description: string;
  /** Single-bit fields can be flipped from the view. */
  toggleable: boolean;
  lo: number;
  hi: number;
}

export function decodeFields(layout: FieldLayout, value: bigint, other: (name: string) => bigint | undefined): DecodedField[] {
  return layout(value, other).map((f) => {
    const width = BigInt(f.hi - f.lo + 1);
    const v = (value >> BigInt(f.lo)) & ((1n << width) - 1n);
    let text: string;
    const show = f.show ?? (f.hi === f.lo ? 'flag' : 'number');
    if (show === 'flag' || show === 'number') text = v.toString();
    else if (show === 'address') text = '0x' + (v << BigInt(f.lo)).toString(16);
    else text = show[Number(v)] !== undefined ? `${v} (${show[Number(v)]})` : v.toString();
    return { name: f.name, bits: f.hi === f.lo ? String(f.lo) : `${f.lo}..${f.hi}`, value: v, text, description: f.description, toggleable: f.hi === f.lo, lo: f.lo, hi: f.hi };
  });
}

export interface RegisterGroupPlan {
  name: string;
  registers: RegisterInfo[];
}

/**
 * Group the registers target.xml describes by the arch's rules. Whatever no rule claims
 * lands in "Other" (or in its target.xml group), so a newer QEMU's extra registers still show.
 */
export function planGroups(spec: RegisterViewSpec, registers: readonly RegisterInfo[]): RegisterGroupPlan[] {
  const claimed = new Set<string>();
  const out: RegisterGroupPlan[] = [];
  for (const rule of spec.groups) {
    const regs: RegisterInfo[] = [];
    for (const m of rule.members) {
      for (const r of registers) {
        if (claimed.has(r.name)) continue;
        if (typeof m === 'string' ? r.name === m : m.test(r.name)) {
          regs.push(r);
          claimed.add(r.name);
        }
      }
    }
    if (regs.length) out.push({ name: rule.name, registers: regs });
  }
  const rest = new Map<string, RegisterInfo[]>();
  for (const r of registers) {
    if (claimed.has(r.name)) continue;
    const g = r.group ? r.group[0].toUpperCase() + r.group.slice(1) : 'Other';
    rest.set(g, [...(rest.get(g) ?? []), r]);
  }
  for (const [name, regs] of rest) out.push({ name, registers: regs });
  return out;
}
