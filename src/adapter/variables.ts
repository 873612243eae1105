/**
 * DAP scopes, variables, evaluate, setVariable/setExpression and data-breakpoint info over
 * the engine's Inspector. Containers (scopes, expandable values) get ids valid for one stop;
 * every child carries the C expression that reaches it (evaluateName), so "Add to Watch" and
 * "Break on Value Change" work from any level.
 */
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { Debugger } from '../engine/debugger';
import type { FrameSelector, Inspector } from '../engine/inspect';
import { childrenOf, formatValue, hasChildren, indexedCount, type Child, type FormatEnv } from '../engine/values/format';
import { byteSpan, contents, isScalar, ValueError, type Value } from '../engine/values/value';
import { WATCH_SIZES, type WatchAccess } from '../engine/watchpoints';
import { strip, typeName } from '../symbols/dwarf/types';
import { errors } from '../util/errors';
import type { StopHandles } from './handles';
import { registerVariables } from './registers';
import { isLiveFrame } from '../engine/unwind';

export type VarRef =
  | { kind: 'registers'; frame: FrameSelector }
  | { kind: 'args' | 'locals' | 'globals'; frame: FrameSelector }
  | { kind: 'value'; frame: FrameSelector; value: Value; evaluateName?: string };

export interface Formatting {
  hex?: boolean;
}

/** How a child is reached in C from its parent's expression. */
function childExpression(parent: string | undefined, c: Child): string | undefined {
  if (parent === undefined) return undefined;
  const p = /^[\w.$>\-[\]]+$/.test(parent) && !parent.startsWith('*') ? parent : `(${parent})`;
  switch (c.access.kind) {
    case 'member':
      return c.access.name ? `${p}${c.access.arrow ? '->' : '.'}${c.access.name}` : undefined;
    case 'index':
      return `${p}[${c.access.index}]`;
    case 'deref':
      return `*${p}`;
  }
}

export class VariablesView {
  constructor(
    private readonly dbg: Debugger,
    private readonly handles: StopHandles<VarRef>,
  ) {}

  private get insp(): Inspector {
    return this.dbg.inspector;
  }

  private env(sel: FrameSelector, fmt: Formatting = {}): FormatEnv {
    const base = this.insp.env(sel.tid);
    return fmt.hex ? { ...base, hex: true } : base;
  }

  async scopes(sel: FrameSelector): Promise<DebugProtocol.Scope[]> {
    const scopes: DebugProtocol.Scope[] = [];
    if (this.insp.program) {
      const frame = await this.insp.frame(sel);
      scopes.push({ name: 'Arguments', presentationHint: 'arguments', variablesReference: this.handles.create({ kind: 'args', frame: sel }), expensive: false });
      scopes.push({ name: 'Locals', presentationHint: 'locals', variablesReference: this.handles.create({ kind: 'locals', frame: sel }), expensive: false });
      const unit = frame.unit;
      if (unit) {
        // Statics and globals of this unit: many, so VS Code leaves the scope closed until asked.
        scopes.push({ name: `Globals (${path.basename(unit.name)})`, variablesReference: this.handles.create({ kind: 'globals', frame: sel }), expensive: true });
      }
    }
    scopes.push({ name: 'Registers', presentationHint: 'registers', variablesReference: this.handles.create({ kind: 'registers', frame: sel }), expensive: false });
    return scopes;
  }

  private item(name: string, v: Value, text: string, sel: FrameSelector, env: FormatEnv, evaluateName: string | undefined): DebugProtocol.Variable {
    const expandable = hasChildren(v, env);
    const out: DebugProtocol.Variable = {
      name,
      value: text,
      type: typeName(v.type),
      variablesReference: expandable ? this.handles.create({ kind: 'value', frame: sel, value: v, evaluateName }) : 0,
      evaluateName,
    };
    const count = indexedCount(v);
    if (count !== undefined) out.indexedVariables = count;
    const mem = memoryReference(v, text);
    if (mem) out.memoryReference = mem;
    if (v.place.kind === 'none' && !v.missing) out.presentationHint = { kind: 'data', attributes: ['readOnly'] };
    return out;
  }

  async variables(args: DebugProtocol.VariablesArguments): Promise<DebugProtocol.Variable[]> {
    const ref = this.handles.get(args.variablesReference);
    if (!ref) return [];
    if (this.dbg.isRunning) throw errors.targetRunning('read variables');
    const sel = ref.frame;
    const env = this.env(sel, { hex: args.format?.hex });
    if (ref.kind === 'registers') {
      if (isLiveFrame(await this.dbg.stack(sel.tid), sel.physical)) return registerVariables(await this.dbg.target.readRegisters(sel.tid));
      // A caller frame's registers are what the unwinder recovered (callee-saved ones, sp, pc).
      const frame = await this.insp.frame(sel);
      const names = this.dbg.target.arch.dwarfRegisters;
      return [...(frame.frame?.regs ?? new Map<number, bigint>())]
        .filter(([n]) => names[n])
        .sort((a, b) => a[0] - b[0])
        .map(([n, v]) => ({ name: names[n], value: '0x' + v.toString(16).padStart(16, '0'), variablesReference: 0, presentationHint: { kind: 'property', attributes: ['readOnly'] } }));
    }
    let named: Array<{ name: string; value: Value; evaluateName?: string }>;
    if (ref.kind === 'value') {
      named = (await childrenOf(ref.value, env, args.start ?? 0, args.count || undefined)).map((c) => ({ name: c.name, value: c.value, evaluateName: childExpression(ref.evaluateName, c) }));
    } else {
      const frame = await this.insp.frame(sel);
      const list = ref.kind === 'args' ? await frame.params() : ref.kind === 'locals' ? await frame.locals() : await this.globals(sel);
      named = list.map((n) => ({ ...n, evaluateName: n.name }));
    }
    const texts = await Promise.all(named.map((n) => formatValue(n.value, env)));
    return named.map((n, i) => this.item(n.name, n.value, texts[i], sel, env, n.evaluateName));
  }

  private async globals(sel: FrameSelector): Promise<Array<{ name: string; value: Value }>> {
    const frame = await this.insp.frame(sel);
    const program = this.insp.program;
    if (!frame.unit || !program) return [];
    const vars = [...program.unitGlobals(frame.unit).values()];
    return Promise.all(vars.map(async (v) => ({ name: v.name, value: await frame.valueOf(v) })));
  }

  async evaluate(args: DebugProtocol.EvaluateArguments, sel: FrameSelector): Promise<DebugProtocol.EvaluateResponse['body']> {
    let text = args.expression.trim();
    let hex = args.format?.hex ?? false;
    // `expr,x` as in Visual Studio's and cpptools' watch windows.
    const spec = /,\s*([xXdD])\s*$/.exec(text);
    if (spec) {
      hex = spec[1].toLowerCase() === 'x';
      text = text.slice(0, spec.index).trim();
    }
    const value = await this.insp.evaluate(text, sel, { allowWrites: args.context === 'repl' });
    const env = this.env(sel, { hex });
    // An unreadable scalar is an error, as in gdb's print, not a value that says so.
    if (isScalar(value.type) && !value.missing) await contents(value, env);
    const result = args.context === 'clipboard' ? await formatValue(value, env, 1_000_000, 32) : await formatValue(value, env, args.context === 'hover' ? 200 : 400, args.context === 'repl' ? 3 : 1);
    const item = this.item(text, value, result, sel, env, text);
    return { result, type: item.type, variablesReference: item.variablesReference, indexedVariables: item.indexedVariables, memoryReference: item.memoryReference, presentationHint: item.presentationHint };
  }

  /** Set a child of a container (a variable, a member, a register) to the value of a C expression. */
  async setVariable(args: DebugProtocol.SetVariableArguments): Promise<DebugProtocol.SetVariableResponse['body']> {
    const ref = this.handles.get(args.variablesReference);
    if (!ref) throw errors.unsupported('That variable belongs to an earlier stop; refresh the Variables view.');
    const sel = ref.frame;
    let target: Value | undefined;
    if (ref.kind === 'registers') {
      target = await this.insp.register(sel, await this.insp.frame(sel), args.name);
    } else if (ref.kind === 'value') {
      target = (await childrenOf(ref.value, this.env(sel))).find((c) => c.name === args.name)?.value;
    } else {
      const frame = await this.insp.frame(sel);
      const list = ref.kind === 'args' ? await frame.params() : ref.kind === 'locals' ? await frame.locals() : await this.globals(sel);
      target = list.find((n) => n.name === args.name)?.value;
    }
    if (!target) throw new ValueError(`There is no variable '${args.name}' here any more; refresh the Variables view.`);
    const updated = await this.insp.assign(sel, target, args.value);
    const env = this.env(sel, { hex: args.format?.hex });
    const text = await formatValue(updated, env);
    const item = this.item(args.name, updated, text, sel, env, undefined);
    return { value: text, type: item.type, variablesReference: item.variablesReference, memoryReference: item.memoryReference };
  }

  async setExpression(args: DebugProtocol.SetExpressionArguments, sel: FrameSelector): Promise<DebugProtocol.SetExpressionResponse['body']> {
    const target = await this.insp.evaluate(args.expression, sel);
    const updated = await this.insp.assign(sel, target, args.value);
    const env = this.env(sel, { hex: args.format?.hex });
    const text = await formatValue(updated, env);
    const item = this.item(args.expression, updated, text, sel, env, args.expression);
    return { value: text, type: item.type, variablesReference: item.variablesReference, memoryReference: item.memoryReference };
  }

  /** Can this variable or expression be watched, and as what? */
  async dataBreakpointInfo(args: DebugProtocol.DataBreakpointInfoArguments, sel: FrameSelector | undefined): Promise<DebugProtocol.DataBreakpointInfoResponse['body']> {
    const ref = args.variablesReference !== undefined ? this.handles.get(args.variablesReference) : undefined;
    let value: Value | undefined;
    let label = args.name;
    try {
      if (ref?.kind === 'value') {
        const c = (await childrenOf(ref.value, this.env(ref.frame))).find((x) => x.name === args.name);
        value = c?.value;
        label = (c && childExpression(ref.evaluateName, c)) ?? args.name;
      } else if (ref && ref.kind !== 'registers') {
        const frame = await this.insp.frame(ref.frame);
        value = await frame.lookup(args.name);
      } else if (!ref) {
        const at = sel ?? { tid: this.dbg.currentThread, physical: 0, inlineDepth: 0 };
        value = await this.insp.evaluate(args.name, at);
      }
    } catch (e) {
      return { dataId: null, description: (e as Error).message };
    }
    if (!value) return { dataId: null, description: `'${args.name}' cannot be watched: it is not a variable in memory.` };
    if (value.place.kind !== 'memory' || value.bitSize !== undefined) {
      return { dataId: null, description: `'${label}' is not in memory (${value.missing ? value.missing : value.place.kind === 'register' ? 'it lives in a register' : 'it is a computed value'}), so the gdbstub cannot watch it.` };
    }
    const size = byteSpan(value) ?? 0;
    if (!WATCH_SIZES.includes(size)) {
      return { dataId: null, description: `'${label}' is ${size} bytes (${typeName(value.type)}); a data breakpoint covers 1, 2, 4 or 8 bytes. Watch one of its members.` };
    }
    const accessTypes: WatchAccess[] = ['write', 'read', 'readWrite'];
    return { dataId: `0x${value.place.address.toString(16)}/${size}/${label}`, description: `${label} (${size} bytes at 0x${value.place.address.toString(16)})`, accessTypes, canPersist: false };
  }
}

function memoryReference(v: Value, text: string): string | undefined {
  if (v.missing) return undefined;
  if (strip(v.type).kind === 'pointer') {
    const m = /^0x[0-9a-f]+/.exec(text);
    if (m && m[0] !== '0x0') return m[0];
  }
  return v.place.kind === 'memory' ? `0x${v.place.address.toString(16)}` : undefined;
}

/** `0xADDR/SIZE/label` from dataBreakpointInfo back into its parts. */
export function parseDataId(id: string): { address: bigint; size: number; label: string } {
  const m = /^(0x[0-9a-f]+)\/(\d+)\/(.*)$/s.exec(id);
  if (!m) throw errors.unsupported(`'${id}' is not a data breakpoint id from this adapter.`);
  return { address: BigInt(m[1]), size: Number(m[2]), label: m[3] };
}
