/**
 * The Registers view's data: every register target.xml describes, grouped by the arch's
 * rules, with flags and control registers decoded into named fields. It follows a frame:
 * a caller frame shows what the unwinder recovered, and honestly says `not saved` for the
 * call-clobbered registers it cannot know.
 */
import { decodeFields, planGroups, type DecodedField, type FieldLayout } from '../arch/regview';
import type { Debugger } from './debugger';
import type { FrameSelector } from './inspect';
import { leToBigInt } from './target';
import { errors } from '../util/errors';
import { isLiveFrame } from './unwind';

export interface RegisterRow {
  name: string;
  bitsize: number;
  /** Undefined when this frame's value cannot be known (a caller's clobbered register). */
  value?: bigint;
  fields?: DecodedField[];
  /** Why the value can't be changed here, or undefined when it can. */
  readOnly?: string;
  /** Where the value came from, when it is not simply the vCPU's register. */
  note?: string;
}

export interface RegisterGroupRows {
  name: string;
  registers: RegisterRow[];
}

export async function registerGroups(dbg: Debugger, sel: FrameSelector): Promise<RegisterGroupRows[]> {
  if (dbg.isRunning) throw errors.targetRunning('read registers');
  const arch = dbg.target.arch;
  const live = new Map<string, bigint>();
  for (const r of await dbg.target.readRegisters(sel.tid)) if (r.bytes.length) live.set(r.info.name, leToBigInt(r.bytes));
  let recovered: Map<number, bigint> | undefined;
  if (!isLiveFrame(await dbg.stack(sel.tid), sel.physical)) recovered = (await dbg.inspector.frame(sel)).frame?.regs ?? new Map<number, bigint>();
  const valueOf = (name: string): { value?: bigint; note?: string } => {
    if (!recovered) return { value: live.get(name) };
    const dwarf = arch.dwarfRegisters.indexOf(name);
    if (dwarf < 0) return { value: live.get(name), note: 'the vCPU\'s value: not part of the call frame' };
    const v = recovered.get(dwarf);
    return v !== undefined ? { value: v, note: 'recovered by unwinding' } : { note: 'not saved: the callee may have overwritten it' };
  };
  const other = (name: string): bigint | undefined => live.get(name);
  const notInnermost = sel.physical > 0 ? 'Only the innermost frame\'s registers can be changed: a caller\'s registers are copies the unwinder recovered.' : undefined;
  return planGroups(arch.registerView, dbg.target.registers).map((g) => ({
    name: g.name,
    registers: g.registers.map((info) => {
      const { value, note } = valueOf(info.name);
      const layout = Object.prototype.hasOwnProperty.call(arch.registerView.layouts, info.name) ? (arch.registerView.layouts[info.name] as FieldLayout) : undefined;
      const wide = info.bitsize > 64 ? `${info.bitsize}-bit registers are shown, not edited, here; assign a C value in the Debug Console instead.` : undefined;
      return {
        name: info.name,
        bitsize: info.bitsize,
        value,
        fields: layout && value !== undefined ? decodeFields(layout, value, other) : undefined,
        readOnly: notInnermost ?? (value === undefined ? 'its value is unknown in this frame' : wide),
        note,
      };
    }),
  }));
}

/** `name = text` in the innermost frame, with C assignment semantics; returns the new value. */
export async function setRegister(dbg: Debugger, sel: FrameSelector, name: string, text: string): Promise<bigint> {
  const insp = dbg.inspector;
  const frame = await insp.frame(sel);
  const target = await insp.register(sel, frame, name);
  if (!target) throw errors.unsupported(`The target has no register named '${name}'.`);
  await insp.assign(sel, target, text);
  return dbg.target.readRegister(sel.tid, name);
}
