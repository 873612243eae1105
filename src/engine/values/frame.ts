/**
 * The variables of one stack frame: DWARF locations evaluated against that frame's
 * registers (as the unwinder recovered them) and the stop's memory. A caller frame looks its
 * locations up at pc-1, inside the call, as gdb does.
 */
import type { ArchInfo } from '../../arch';
import { DW_AT, DW_TAG } from '../../symbols/dwarf/constants';
import type { CompileUnit } from '../../symbols/dwarf/cu';
import { evaluateLocation, evaluateValue, type ExprContext, type ExprLocation } from '../../symbols/dwarf/expr';
import { arrayOf, sizeOf, strip, type CType } from '../../symbols/dwarf/types';
import type { Die } from '../../symbols/dwarf/unit';
import { frameBaseExpr, frameVariables, locationAt, type VariableDie } from '../../symbols/dwarf/variables';
import type { FrameScope } from '../sourceinfo';
import { isReturnAddress, type UnwoundFrame } from '../unwind';
import type { FormatEnv } from './format';
import type { Program } from './program';
import { bigLe, type Value } from './value';

export interface NamedValue {
  name: string;
  value: Value;
}

export interface FrameDeps {
  program: Program;
  env: FormatEnv;
  arch: ArchInfo;
  /** Physical frames of the thread, innermost first. */
  frames: UnwoundFrame[];
  /** The CFA of a frame when the unwinder didn't record one (the outermost frame). */
  cfaOf(regs: Map<number, bigint>, isCaller: boolean): Promise<bigint | undefined>;
  /** The scope DWARF gives a physical frame's pc (for entry values, in the caller). */
  scopeOf(physical: number): FrameScope | undefined;
}

const MASK64 = (1n << 64n) - 1n;

export class FrameContext {
  private vars: { params: VariableDie[]; locals: VariableDie[] } | undefined;

  constructor(
    private readonly deps: FrameDeps,
    readonly physical: number,
    readonly scope: FrameScope | undefined,
    private readonly depth = 0,
  ) {}

  /** The image's program this frame's code belongs to. */
  get program(): Program {
    return this.deps.program;
  }

  get frame(): UnwoundFrame | undefined {
    return this.deps.frames[this.physical];
  }

  get unit(): CompileUnit | undefined {
    return this.scope?.cu;
  }

  /** Where locations are looked up: a caller's pc is a return address, so step back into the call. */
  get lookupPc(): bigint {
    const rel = this.deps.program.rel;
    if (this.scope?.pc !== undefined) return rel.toLink(this.scope.pc) ?? this.scope.pc;
    const pc = this.frame?.pc ?? 0n;
    const look = isReturnAddress(this.deps.frames, this.physical) ? pc - 1n : pc;
    return rel.toLink(look) ?? look;
  }

  private variables(): { params: VariableDie[]; locals: VariableDie[] } {
    if (!this.vars) {
      const s = this.scope;
      this.vars = s ? frameVariables(this.deps.program.dwarf, s.cu, s.die, this.lookupPc) : { params: [], locals: [] };
    }
    return this.vars;
  }

  async params(): Promise<NamedValue[]> {
    return Promise.all(this.variables().params.map(async (v) => ({ name: v.name, value: await this.valueOf(v) })));
  }

  async locals(): Promise<NamedValue[]> {
    return Promise.all(this.variables().locals.map(async (v) => ({ name: v.name, value: await this.valueOf(v) })));
  }

  /** A name as C resolves it here: the innermost local, a parameter, then the unit's and the program's globals. */
  async lookup(name: string): Promise<Value | undefined> {
    const { params, locals } = this.variables();
    const v = locals.find((x) => x.name === name) ?? params.find((x) => x.name === name);
    if (v) return this.valueOf(v);
    const g = await this.deps.program.findGlobal(name, this.unit);
    return g ? this.valueOf(g, g.program) : undefined;
  }

  /** A definition's own type wins: `char banner[148]` completes the header's `char banner[]`. */
  typeOf(v: VariableDie, program: Program = this.deps.program): CType {
    if (v.die.attrs.has(DW_AT.type)) return program.types.typeOf(v.cu, v.die);
    return program.types.typeOf(v.declCu, v.decl);
  }

  /** `program`: the image whose DWARF holds v (another image's global is read with its own types). */
  async valueOf(v: VariableDie, program?: Program): Promise<Value> {
    const type = this.typeOf(v, program);
    if (v.address !== undefined) return this.sized(await this.toValue(type, { kind: 'memory', address: v.address }));
    const loc = locationAt(v.cu, v.die, this.lookupPc);
    const size = sizeOf(type) ?? 0;
    switch (loc.kind) {
      case 'none':
        return { type, place: { kind: 'none' }, missing: loc.why };
      case 'const':
        return { type, place: { kind: 'none' }, bytes: bigLe(loc.value, Math.max(size, 1)) };
      case 'constBytes':
        return { type, place: { kind: 'none' }, bytes: loc.bytes };
    }
    try {
      return this.sized(await this.toValue(type, await evaluateLocation(loc.expr, this.exprContext())));
    } catch (e) {
      return { type, place: { kind: 'none' }, missing: `error: ${(e as Error).message}` };
    }
  }

  /**
   * `extern const char linux_banner[]` has no length in DWARF, even at its definition; the
   * ELF symbol's size gives it, as gdb does.
   */
  private sized(v: Value): Value {
    const s = strip(v.type);
    if (s.kind !== 'array' || s.count !== undefined || v.place.kind !== 'memory') return v;
    const sym = this.deps.program.symbols?.locateData(v.place.address);
    const elem = sizeOf(s.element);
    // A linker-script symbol has size 0: the array stays of unknown length, as in gdb.
    if (!sym || sym.offset !== 0n || !elem || !sym.symbol.size) return v;
    return { ...v, type: arrayOf(s.element, Math.floor(sym.symbol.size / elem)) };
  }

  /** Turn a DWARF location into a value of `type`. */
  async toValue(type: CType, loc: ExprLocation): Promise<Value> {
    const size = sizeOf(type) ?? 0;
    switch (loc.kind) {
      case 'memory':
        return { type, place: { kind: 'memory', address: loc.address & MASK64 } };
      case 'register': {
        const r = this.frame?.regs.get(loc.reg);
        if (r === undefined) return { type, place: { kind: 'none' }, missing: 'not saved' };
        if (size > 8) return { type, place: { kind: 'none' }, missing: `a ${size}-byte value in one register` };
        return { type, place: { kind: 'register', reg: loc.reg, frame: this.physical }, bytes: bigLe(r, size) };
      }
      case 'value':
        return { type, place: { kind: 'none' }, bytes: bigLe(loc.value, size || 8) };
      case 'implicit': {
        const bytes = Buffer.alloc(Math.max(size, loc.bytes.length));
        loc.bytes.copy(bytes);
        return { type, place: { kind: 'none' }, bytes: bytes.subarray(0, size || loc.bytes.length) };
      }
      case 'implicitPointer':
        return { type, place: { kind: 'none' }, missing: 'synthetic pointer' };
      case 'optimized':
        return { type, place: { kind: 'none' }, missing: 'optimized out' };
      case 'unavailable':
        // gdb says only "optimized out"; say why as well (an entry value the caller didn't record).
        return { type, place: { kind: 'none' }, missing: `optimized out: ${loc.reason}` };
      case 'pieces':
        return this.assemble(type, loc.pieces);
    }
  }

  private async assemble(type: CType, pieces: Extract<ExprLocation, { kind: 'pieces' }>['pieces']): Promise<Value> {
    const size = sizeOf(type) ?? 0;
    const total = Math.max(size, Math.ceil(pieces.reduce((n, p) => n + p.bitSize, 0) / 8));
    const out = Buffer.alloc(total);
    let bit = 0;
    for (const p of pieces) {
      let bits: bigint;
      const l = p.location;
      if (l.kind === 'register') {
        const r = this.frame?.regs.get(l.reg);
        if (r === undefined) return { type, place: { kind: 'none' }, missing: 'not saved' };
        bits = r >> BigInt(p.bitOffset);
      } else if (l.kind === 'memory') {
        const bytes = await this.deps.env.read(l.address + BigInt(p.bitOffset >> 3), Math.ceil(((p.bitOffset & 7) + p.bitSize) / 8));
        let v = 0n;
        for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
        bits = v >> BigInt(p.bitOffset & 7);
      } else if (l.kind === 'value') bits = l.value >> BigInt(p.bitOffset);
      else if (l.kind === 'implicit') {
        let v = 0n;
        for (let i = l.bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(l.bytes[i]);
        bits = v >> BigInt(p.bitOffset);
      } else {
        // gdb marks such a value partly optimized out; a value we can't fully show is shown as missing.
        return { type, place: { kind: 'none' }, missing: l.kind === 'unavailable' ? l.reason : 'optimized out' };
      }
      bits &= (1n << BigInt(p.bitSize)) - 1n;
      for (let i = 0; i < p.bitSize; i++, bit++) if ((bits >> BigInt(i)) & 1n) out[bit >> 3] |= 1 << (bit & 7);
    }
    return { type, place: { kind: 'none' }, bytes: out.subarray(0, size || total) };
  }

  exprContext(): ExprContext {
    const frame = this.frame;
    const regs = frame?.regs ?? new Map<number, bigint>();
    const env = this.deps.env;
    const scope = this.scope;
    return {
      addressSize: this.deps.arch.pointerSize,
      readMemory: (addr, size) => env.read(addr, size),
      register: (n) => regs.get(n),
      cfa: () => this.cfa(),
      frameBase: async () => {
        const expr = scope && frameBaseExpr(scope.fn);
        if (!expr) return undefined;
        return evaluateValue(expr, { ...this.exprContext(), frameBase: undefined });
      },
      addrx: scope ? (i) => scope.cu.addrx(i) : undefined,
      relocate: (a) => this.deps.program.rel.toRuntime(a),
      entryValue: (sub) => this.entryValue(sub),
    };
  }

  private async cfa(): Promise<bigint | undefined> {
    const f = this.frame;
    if (!f) return undefined;
    return f.cfa ?? this.deps.cfaOf(f.regs, isReturnAddress(this.deps.frames, this.physical));
  }

  /**
   * DW_OP_entry_value: what a register held when this function was entered. The caller's
   * DW_TAG_call_site for this return address may record it (DW_AT_call_value), evaluated in
   * the caller's frame; gdb does the same. Without one, the value is honestly unknown.
   */
  private async entryValue(sub: Buffer): Promise<bigint | undefined> {
    if (this.depth > 4) return undefined;
    const callerIndex = this.physical + 1;
    const caller = this.deps.frames[callerIndex];
    const callerScope = this.deps.scopeOf(callerIndex);
    if (!caller || !callerScope) return undefined;
    const site = findCallSite(callerScope.cu, callerScope.fn, this.deps.program.rel.toLink(caller.pc) ?? caller.pc);
    if (!site) return undefined;
    for (const p of site.children) {
      if (p.tag !== DW_TAG.call_site_parameter && p.tag !== DW_TAG.GNU_call_site_parameter) continue;
      const loc = p.attrs.get(DW_AT.location);
      if (loc?.kind !== 'block' || !loc.value.equals(sub)) continue;
      const val = p.attrs.get(DW_AT.call_value) ?? p.attrs.get(DW_AT.GNU_call_site_value);
      if (val?.kind !== 'block') return undefined;
      const callerCtx = new FrameContext(this.deps, callerIndex, callerScope, this.depth + 1);
      return evaluateValue(val.value, callerCtx.exprContext());
    }
    return undefined;
  }
}

/** The call site DIE in `fn` (or its nested blocks) whose return address is `ret`. */
function findCallSite(cu: CompileUnit, fn: Die, ret: bigint): Die | undefined {
  const stack: Die[] = [fn];
  while (stack.length) {
    const d = stack.pop() as Die;
    for (const c of d.children) {
      if (c.tag === DW_TAG.call_site || c.tag === DW_TAG.GNU_call_site) {
        const at = cu.addr(c.attrs.get(DW_AT.call_return_pc)) ?? cu.addr(c.attrs.get(DW_AT.low_pc));
        if (at === ret) return c;
      } else if (c.hasChildren && (c.tag === DW_TAG.lexical_block || c.tag === DW_TAG.inlined_subroutine)) stack.push(c);
    }
  }
  return undefined;
}
