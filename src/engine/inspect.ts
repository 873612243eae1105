/**
 * Reading and changing the stopped guest's state in C terms: a frame's variables, C
 * expressions, registers as values, and writes back through `M` and `P`. Everything read
 * here is cached for one stop and forgotten when the guest runs.
 */
import type { KernelTarget } from './target';
import { isLiveFrame, isReturnAddress, type Unwinder, type UnwoundFrame } from './unwind';
import { Evaluator, EvalError, type EvalHost } from './expr/evaluate';
import type { KernelHelpers } from './expr/helpers';
import type { Expr } from './expr/ast';
import { ExprSyntaxError, formatSyntaxError, parseExpression } from './expr/parse';
import type { SourceInfo, FrameScope } from './sourceinfo';
import { FrameContext } from './values/frame';
import type { FormatEnv } from './values/format';
import { Program } from './values/program';
import { bigLe, byteSpan, contents, leBig, ValueError, type Value } from './values/value';
import { pointerTo, syntheticId, type CType } from '../symbols/dwarf/types';
import type { Image } from '../symbols/imageset';
import type { SymbolLookup } from '../symbols/symtab';
import { SourceSet } from './sources';
import { errors } from '../util/errors';

export interface FrameSelector {
  tid: number;
  /** Physical frame index, 0 = innermost. */
  physical: number;
  /** Which inlined call of that physical frame, 0 = innermost. */
  inlineDepth: number;
}

export interface EvaluateOptions {
  /** Allow assignments (the Debug Console, Set Value); hovers and watches must not change the guest. */
  allowWrites?: boolean;
}

/** What the inspector needs of the engine: the stopped target, its stacks and its breakpoints. */
export interface InspectHost {
  readonly target: KernelTarget;
  readonly unwinder: Unwinder;
  readonly isRunning: boolean;
  stack(tid: number): Promise<UnwoundFrame[]>;
  functionBreakpointsAt(pc: bigint): Set<string>;
  /** Registers or memory were written: what this stop had read is stale. */
  forgetStop(): void;
  /** The running kernel, for $current, per_cpu() and friends. */
  readonly kernel?: { helpers(tid: number): KernelHelpers | undefined };
}

export class Inspector {
  readonly program: Program | undefined;
  private frames = new Map<string, Promise<FrameContext>>();
  private envs = new Map<number, FormatEnv>();
  /** Each loaded module's program, made when one of its frames or names is first needed. */
  private readonly modulePrograms = new Map<Image, Program>();

  constructor(
    private readonly dbg: InspectHost,
    private readonly source: SourceInfo | undefined,
    private readonly symbols: SymbolLookup | undefined,
  ) {
    const dwarf = source?.dwarf;
    this.program = dwarf ? new Program(dwarf, symbols, source?.index, dbg.target.arch.charSigned, false, source?.rel) : undefined;
    if (this.program) this.program.peers = () => this.loadedPrograms().filter((p) => p !== this.program);
  }

  /** The programs of vmlinux and every loaded module; unloaded modules' are dropped here. */
  private loadedPrograms(): Program[] {
    const out = this.program ? [this.program] : [];
    if (!(this.source instanceof SourceSet)) return out;
    const loaded = new Set(this.source.images.loadedModules());
    for (const img of [...this.modulePrograms.keys()]) if (!loaded.has(img)) this.modulePrograms.delete(img);
    for (const img of loaded) {
      const p = this.moduleProgram(img);
      if (p) out.push(p);
    }
    return out;
  }

  private moduleProgram(img: Image): Program | undefined {
    let p = this.modulePrograms.get(img);
    if (!p && img.dwarf) {
      // vmlinux's relocation leaves module addresses alone, and names vmlinux's pcs in the module's frames' callers.
      p = new Program(img.dwarf, this.symbols, undefined, this.dbg.target.arch.charSigned, true, this.source?.rel);
      const self = p;
      p.peers = () => this.loadedPrograms().filter((q) => q !== self);
      this.modulePrograms.set(img, p);
    }
    return p;
  }

  /** The program whose DWARF describes the code at pc. */
  programAt(pc: bigint): Program | undefined {
    if (!(this.source instanceof SourceSet)) return this.program;
    const img = this.source.images.moduleAt(pc);
    return (img && this.moduleProgram(img)) ?? this.program;
  }

  /** Forget this stop's frames and memory views (the guest is about to run). */
  reset(): void {
    this.frames.clear();
    this.envs.clear();
  }

  env(tid: number): FormatEnv {
    let e = this.envs.get(tid);
    if (!e) {
      const mem = this.dbg.target.memory(tid);
      const program = this.program;
      e = {
        read: (addr, size) => mem.read(addr, size),
        pointerSize: this.dbg.target.arch.pointerSize,
        symbolize: (addr) => program?.symbolize(addr),
        complete: (t) => program?.types.complete(t) ?? t,
      };
      this.envs.set(tid, e);
    }
    return e;
  }

  frame(sel: FrameSelector): Promise<FrameContext> {
    const key = `${sel.tid}:${sel.physical}:${sel.inlineDepth}`;
    let f = this.frames.get(key);
    if (!f) {
      f = this.makeFrame(sel);
      this.frames.set(key, f);
      f.catch(() => this.frames.delete(key));
    }
    return f;
  }

  private async makeFrame(sel: FrameSelector): Promise<FrameContext> {
    if (!this.program) throw errors.unsupported('This vmlinux has no DWARF debug info, so variables cannot be shown. Build the kernel with CONFIG_DEBUG_INFO_DWARF5.');
    const frames = await this.dbg.stack(sel.tid);
    const here = frames[sel.physical];
    const program = (here && this.programAt(isReturnAddress(frames, sel.physical) ? here.pc - 1n : here.pc)) ?? this.program;
    const scopeOf = (physical: number, depth = 0): FrameScope | undefined => {
      const f = frames[physical];
      if (!f || !this.source) return undefined;
      return this.source.frameScope(f.pc, isReturnAddress(frames, physical), depth, physical === 0 ? this.dbg.functionBreakpointsAt(f.pc) : undefined);
    };
    return new FrameContext(
      {
        program,
        env: this.env(sel.tid),
        arch: this.dbg.target.arch,
        frames,
        cfaOf: (regs, isCaller) => this.dbg.unwinder.cfaOf(regs, isCaller),
        scopeOf: (p) => scopeOf(p),
      },
      sel.physical,
      scopeOf(sel.physical, sel.inlineDepth),
    );
  }

  /** Parse a C expression, asking the program which identifiers are typedef names. */
  async parse(text: string, frame?: FrameContext): Promise<Expr> {
    const names = new Set<string>();
    const program = frame?.program ?? this.program;
    if (program) {
      // Identifiers in parentheses could be casts: look them up before the (synchronous) parse.
      for (const m of text.matchAll(/\(\s*(?:const\s+|volatile\s+)*([A-Za-z_]\w*)\s*\**\s*\)/g)) {
        const name = m[1];
        if (frame && (await frame.lookup(name).catch(() => undefined))) continue;
        if (await program.isTypedef(name, frame?.unit)) names.add(name);
      }
      for (const m of text.matchAll(/sizeof\s*\(\s*([A-Za-z_]\w*)/g)) if (await program.isTypedef(m[1], frame?.unit)) names.add(m[1]);
    }
    try {
      return parseExpression(text, { isTypedef: (n) => names.has(n) });
    } catch (e) {
      if (e instanceof ExprSyntaxError) throw new EvalError(formatSyntaxError(e), e.pos);
      throw e;
    }
  }

  /** Evaluate `text` in a frame (or at global scope in frame 0 of the current vCPU). */
  async evaluate(text: string, sel: FrameSelector, opts: EvaluateOptions = {}): Promise<Value> {
    if (this.dbg.isRunning) throw errors.targetRunning('evaluate expressions');
    const frame = await this.frame(sel);
    const expr = await this.parse(text, frame);
    return new Evaluator(this.host(sel, frame, opts), text).evaluate(expr);
  }

  /** `target = text`: evaluate text, convert it to target's type as C assignment does, store it. */
  async assign(sel: FrameSelector, target: Value, text: string): Promise<Value> {
    const frame = await this.frame(sel);
    const evaluator = new Evaluator(this.host(sel, frame, {}), text);
    const value = await evaluator.evaluate(await this.parse(text, frame));
    const bytes = await evaluator.convertForStore(value, target);
    await this.write(sel, target, bytes);
    if (target.place.kind === 'memory') return { ...target, bytes: undefined };
    const size = byteSpan(target) ?? bytes.length;
    return { ...target, bytes: target.bitSize !== undefined ? mergeBits(target.bytes ?? Buffer.alloc(size), bytes, target.bitOffset ?? 0, target.bitSize) : bytes.subarray(0, size) };
  }

  private host(sel: FrameSelector, frame: FrameContext, opts: EvaluateOptions): EvalHost {
    const program = frame.program;
    return {
      program,
      frame,
      env: this.env(sel.tid),
      register: (name) => this.register(sel, frame, name),
      kernel: this.dbg.kernel?.helpers(sel.tid),
      write: opts.allowWrites ? (place, bytes) => this.write(sel, place, bytes) : undefined,
    };
  }

  /** `$rip`, `$pc`, `$sp`, `$eflags`: a register as a value of the selected frame. */
  async register(sel: FrameSelector, frame: FrameContext, name: string): Promise<Value | undefined> {
    const arch = this.dbg.target.arch;
    const alias: Record<string, string> = { ...arch.registerAliases, pc: arch.pcRegister, sp: arch.spRegister, fp: arch.fpRegister };
    const real = alias[name] ?? name;
    const info = this.dbg.target.register(real);
    if (!info) return undefined;
    const program = this.program as Program;
    const size = Math.ceil(info.bitsize / 8);
    const intType = (): CType => program.builtin.get(size >= 8 ? 'long' : size === 4 ? 'int' : size === 2 ? 'short' : 'char') ?? program.builtin.get('long') as CType;
    let type: CType;
    if (real === arch.pcRegister) type = pointerTo({ kind: 'function', id: syntheticId(), returns: { kind: 'void', id: syntheticId() }, params: [], variadic: false, prototyped: false });
    else if (real === arch.spRegister || real === arch.fpRegister) type = pointerTo(program.builtin.get('void') as CType);
    else type = size > 8 ? { kind: 'array', id: syntheticId(), element: program.builtin.get('unsigned char') as CType, count: size } : intType();
    const dwarf = arch.dwarfRegisters.indexOf(real);
    const fromFrame = dwarf >= 0 ? frame.frame?.regs.get(dwarf) : undefined;
    if (fromFrame !== undefined) return { type, place: { kind: 'register', reg: dwarf, frame: sel.physical, name: real }, bytes: bigLe(fromFrame, size) };
    if (!isLiveFrame(await this.dbg.stack(sel.tid), sel.physical)) return { type, place: { kind: 'none' }, missing: 'not saved' };
    // Just this register: reading them all costs a `p` packet per system register on arm64/riscv64.
    const v = await this.dbg.target.readRegister(sel.tid, real).catch(() => undefined);
    if (v === undefined) return undefined;
    return { type, place: { kind: 'register', reg: dwarf, frame: 0, name: real }, bytes: bigLe(v, size) };
  }

  /** Store bytes into a value's place: memory (M), or a register of the innermost frame (P). */
  async write(sel: FrameSelector, target: Value, bytes: Buffer): Promise<void> {
    if (this.dbg.isRunning) throw errors.targetRunning('change values');
    const place = target.place;
    if (target.missing) throw new ValueError(`cannot change a value that is ${target.missing}`);
    if (place.kind === 'memory') {
      let data = bytes;
      if (target.bitSize !== undefined) data = mergeBits(await contents(target, this.env(sel.tid)), bytes, target.bitOffset ?? 0, target.bitSize);
      await this.dbg.target.writeMemory(place.address, data.subarray(0, byteSpan(target) ?? data.length), sel.tid);
      this.dbg.forgetStop();
      this.frames.clear();
      return;
    }
    if (place.kind === 'register') {
      if (place.frame !== 0 || !isLiveFrame(await this.dbg.stack(sel.tid), sel.physical)) throw new ValueError('Only the innermost frame\'s registers can be changed: a caller\'s registers are saved copies the unwinder recovered.');
      const name = place.name ?? this.dbg.target.arch.dwarfRegisters[place.reg];
      if (!name) throw new ValueError(`DWARF register ${place.reg} has no name on this target`);
      const old = target.bytes ?? Buffer.alloc(8);
      // A variable narrower than its register keeps the register's other bytes.
      const full = await this.dbg.target.readRegister(sel.tid, name);
      const merged = bigLe(full, 8);
      (target.bitSize !== undefined ? mergeBits(old, bytes, target.bitOffset ?? 0, target.bitSize) : bytes).copy(merged, 0, 0, Math.min(8, bytes.length));
      await this.dbg.target.writeRegister(sel.tid, name, leBig(merged));
      this.dbg.forgetStop();
      this.frames.clear();
      return;
    }
    throw new ValueError('This value is not stored anywhere the debugger can write (it was computed, or DWARF describes it as a constant).');
  }
}

function mergeBits(old: Buffer, value: Buffer, bitOffset: number, bitSize: number): Buffer {
  const mask = ((1n << BigInt(bitSize)) - 1n) << BigInt(bitOffset);
  const merged = (leBig(old) & ~mask) | ((leBig(value) << BigInt(bitOffset)) & mask);
  return bigLe(merged, old.length);
}

export { EvalError };
