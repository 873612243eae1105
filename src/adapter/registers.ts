/** Register values as DAP variables, and the Registers view's custom requests. */
import { DebugProtocol } from '@vscode/debugprotocol';
import type { Debugger } from '../engine/debugger';
import type { FrameSelector } from '../engine/inspect';
import { registerGroups, setRegister, type RegisterRow } from '../engine/registerview';
import { RegisterValue, leToBigInt } from '../engine/target';

export function formatRegister(r: RegisterValue): string {
  const bits = r.info.bitsize;
  const v = leToBigInt(r.bytes);
  return '0x' + v.toString(16).padStart(Math.ceil(bits / 4), '0');
}

export function registerVariables(values: RegisterValue[]): DebugProtocol.Variable[] {
  return values.map((r) => ({
    name: r.info.name,
    value: formatRegister(r),
    type: r.info.type,
    variablesReference: 0,
    presentationHint: { kind: 'property', attributes: ['readOnly'] },
  }));
}

export type RegisterFormat = 'hex' | 'decimal';

/** `qemuKernel.registers`: the Registers view's contents for one frame (or a vCPU's innermost). */
export interface RegistersArguments {
  frameId?: number;
  threadId?: number;
  format?: RegisterFormat;
}

export interface RegisterFieldView {
  name: string;
  bits: string;
  value: string;
  description: string;
  toggleable: boolean;
  /** The whole register's value with this bit flipped, ready for setRegister. */
  toggled?: string;
}

export interface RegisterView {
  name: string;
  value: string;
  /** Full-width hex, whatever the format, for copying and editing. */
  raw?: string;
  readOnly?: string;
  note?: string;
  fields?: RegisterFieldView[];
}

export interface RegistersBody {
  groups: Array<{ name: string; registers: RegisterView[] }>;
}

/** `qemuKernel.setRegister`: assign a C expression's value to a register of the innermost frame. */
export interface SetRegisterArguments extends RegistersArguments {
  name: string;
  value: string;
}

const hexOf = (v: bigint, bits: number): string => '0x' + v.toString(16).padStart(Math.ceil(bits / 4), '0');

/** An x87 80-bit extended value as a number: sign, 15-bit exponent, 64-bit mantissa with explicit integer bit. */
export function extendedToNumber(v: bigint): number {
  const sign = (v >> 79n) & 1n ? -1 : 1;
  const exp = Number((v >> 64n) & 0x7fffn);
  const mant = v & 0xffffffffffffffffn;
  if (exp === 0x7fff) return (mant << 1n) & 0xffffffffffffffffn ? NaN : sign * Infinity;
  if (exp === 0 && mant === 0n) return sign * 0;
  return sign * (Number(mant) / 2 ** 63) * 2 ** ((exp === 0 ? 1 : exp) - 16383);
}

function show(row: RegisterRow, format: RegisterFormat): string {
  if (row.value === undefined) return '<not saved>';
  if (row.bitsize === 80) return `${extendedToNumber(row.value)} (raw ${hexOf(row.value, 80)})`;
  if (format === 'decimal' && row.bitsize <= 64) return row.value.toString();
  return hexOf(row.value, row.bitsize);
}

export async function registersView(dbg: Debugger, sel: FrameSelector, format: RegisterFormat): Promise<RegistersBody> {
  const groups = await registerGroups(dbg, sel);
  return {
    groups: groups.map((g) => ({
      name: g.name,
      registers: g.registers.map((r) => ({
        name: r.name,
        value: show(r, format),
        raw: r.value !== undefined ? hexOf(r.value, r.bitsize) : undefined,
        readOnly: r.readOnly,
        note: r.note,
        fields: r.fields?.map((f) => ({
          name: f.name,
          bits: f.bits,
          value: format === 'hex' && !f.toggleable && /^\d+(?= |$)/.test(f.text) ? f.text.replace(/^\d+/, (d) => '0x' + BigInt(d).toString(16)) : f.text,
          description: f.description,
          toggleable: f.toggleable,
          toggled: f.toggleable && r.value !== undefined ? hexOf(r.value ^ (1n << BigInt(f.lo)), r.bitsize) : undefined,
        })),
      })),
    })),
  };
}

export async function setRegisterValue(dbg: Debugger, sel: FrameSelector, args: SetRegisterArguments): Promise<{ value: string }> {
  const info = dbg.target.register(args.name);
  const v = await setRegister(dbg, sel, args.name, args.value);
  return { value: info && args.format === 'decimal' && info.bitsize <= 64 ? v.toString() : hexOf(v, info?.bitsize ?? 64) };
}
