/**
 * Stack unwinding from the registers of a stopped vCPU: .debug_frame CFI where it covers
 * the PC, the frame-pointer chain where it doesn't (assembly entry code, a vmlinux without
 * CFI), and a clean stop at the bottom: a zero or non-code return address, a stack that
 * doesn't grow toward the caller, or a missing frame pointer.
 */
import type { ArchInfo } from '../arch';
import { evaluateValue, type ExprContext } from '../symbols/dwarf/expr';
import type { CfaRule, RegRule, UnwindRow } from '../symbols/dwarf/frame';

export interface UnwoundFrame {
  pc: bigint;
  /** Canonical frame address: the caller's SP before the call; identifies the frame. */
  cfa: bigint | undefined;
  /** Registers by DWARF number, as far as they are known in this frame. */
  regs: Map<number, bigint>;
  /** How this frame's caller was found. */
  method: 'cfi' | 'frame-pointer' | 'entry' | 'none';
  /** Shown as a separator above this frame (an exception stop's reporting path). */
  label?: string;
  /** Part of the code that reported a failure, not where it happened: shown dimmed. */
  reporting?: boolean;
  /** pc is the instruction the frame is at, not a return address, though the frame is not the innermost. */
  exact?: boolean;
  /** Registers from a trap's saved pt_regs, not the vCPU's own: an exception stop's faulting context. */
  trap?: boolean;
}

/** Whether frame i's pc is a return address (a caller's: its line is the call's, at pc - 1). */
export function isReturnAddress(frames: readonly UnwoundFrame[], i: number): boolean {
  return i > 0 && frames[i]?.exact !== true;
}

/** Whether frame i holds the vCPU's own registers (the ones a write changes). */
export function isLiveFrame(frames: readonly UnwoundFrame[], i: number): boolean {
  return i === 0 && frames[0]?.trap !== true;
}

export interface UnwindMemory {
  (addr: bigint, size: number): Promise<Buffer | undefined>;
}

const MASK64 = (1n << 64n) - 1n;

export class Unwinder {
  constructor(
    private readonly arch: ArchInfo,
    /** The CFI row at pc, from the image holding it (vmlinux's, or a loaded module's). */
    private readonly cfiRow: (pc: bigint) => UnwindRow | undefined,
    private readonly isCode: (pc: bigint) => boolean,
    private readonly memory: UnwindMemory,
    /**
     * Whether pc is where a function is entered, before its body ran: its first instruction,
     * or the ftrace NOPs before DWARF's start of it, which no CFI covers.
     */
    private readonly atEntry: (pc: bigint) => boolean = () => false,
  ) {}

  private async word(addr: bigint): Promise<bigint | undefined> {
    const size = this.arch.pointerSize;
    const b = await this.memory(addr & MASK64, size);
    if (!b || b.length !== size) return undefined;
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }

  /** The CFA of the frame at `regs` (for step/finish frame checks), without walking further. */
  async cfaOf(regs: Map<number, bigint>, isCaller = false): Promise<bigint | undefined> {
    const pc = regs.get(this.arch.dwarfPc);
    if (pc === undefined) return undefined;
    const row = this.rowAt(isCaller ? pc - 1n : pc);
    return row ? this.cfaFrom(row.cfa, regs) : undefined;
  }

  /** Look up and parse the CFI at pc ahead of a stop that will need it. */
  warm(pc: bigint): void {
    this.rowAt(pc);
  }

  /**
   * The CFI row at pc. An FDE this reader can't interpret is treated as no CFI there: the
   * walk goes on by frame pointer instead of failing (and a stop event with it).
   */
  private rowAt(pc: bigint): UnwindRow | undefined {
    try {
      return this.cfiRow(pc);
    } catch {
      return undefined;
    }
  }

  private async cfaFrom(rule: CfaRule, regs: Map<number, bigint>): Promise<bigint | undefined> {
    if (rule.kind === 'regOffset') {
      const base = regs.get(rule.reg);
      return base === undefined ? undefined : (base + BigInt(rule.offset)) & MASK64;
    }
    try {
      return (await evaluateValue(rule.expr, this.exprContext(regs))) & MASK64;
    } catch {
      return undefined;
    }
  }

  /** CFI expressions (DW_CFA_def_cfa_expression, DW_CFA_expression) read this frame's registers and memory. */
  private exprContext(regs: Map<number, bigint>): ExprContext {
    return {
      addressSize: this.arch.pointerSize,
      register: (n) => regs.get(n),
      readMemory: async (addr, size) => {
        const b = await this.memory(addr & MASK64, size);
        if (!b || b.length !== size) throw new Error(`Cannot access memory at address 0x${(addr & MASK64).toString(16)}`);
        return b;
      },
    };
  }

  /**
   * The innermost frame's CFA alone: no caller registers, and no memory read unless the CFI
   * rule is an expression. Undefined without CFI at pc (the frame-pointer walk has no CFA).
   */
  async cfa(top: Map<number, bigint>): Promise<bigint | undefined> {
    const pc = top.get(this.arch.dwarfPc);
    const row = pc === undefined ? undefined : this.rowAt(pc);
    return row ? this.cfaFrom(row.cfa, top) : undefined;
  }

  async unwind(top: Map<number, bigint>, maxFrames = 64): Promise<UnwoundFrame[]> {
    const frames: UnwoundFrame[] = [];
    let regs = top;
    for (let n = 0; n < maxFrames; n++) {
      const pc = regs.get(this.arch.dwarfPc);
      if (pc === undefined) break;
      const frame: UnwoundFrame = { pc, cfa: undefined, regs, method: 'none' };
      frames.push(frame);
      const caller = (await this.viaCfi(frame, n > 0)) ?? (n === 0 ? this.viaEntry(frame) : undefined) ?? (await this.viaFramePointer(frame));
      if (!caller) break;
      const next = caller.get(this.arch.returnAddressColumn);
      // A return address can sit just past its function (a call to a noreturn function).
      if (next === undefined || next === 0n || !this.isCode(next - 1n)) break;
      // The caller resumes at the return address; with a link register (arm64 x30, riscv ra)
      // that is a register of its own, not the PC's slot.
      caller.set(this.arch.dwarfPc, next);
      if (!this.climbs(regs, caller, n === 0)) break;
      regs = caller;
    }
    return frames;
  }

  private async viaCfi(frame: UnwoundFrame, isCaller: boolean): Promise<Map<number, bigint> | undefined> {
    const row = this.rowAt(isCaller ? frame.pc - 1n : frame.pc);
    if (!row) return undefined;
    const cfa = await this.cfaFrom(row.cfa, frame.regs);
    if (cfa === undefined) return undefined;
    frame.cfa = cfa;
    const caller = new Map<number, bigint>();
    for (const r of this.arch.calleeSaved) {
      const v = frame.regs.get(r);
      if (v !== undefined) caller.set(r, v);
    }
    for (const [reg, rule] of row.regs) {
      const v = rule.kind === 'sameValue' ? frame.regs.get(reg) : await this.apply(rule, cfa, frame.regs);
      if (v === undefined) caller.delete(reg);
      else caller.set(reg, v);
    }
    if (!row.regs.has(this.arch.returnAddressColumn)) {
      // x86's CIE always saves the return address. A link-register ABI leaves it unsaved in a
      // leaf or before the prologue's store: there the return address is still in the
      // register (only meaningful in the frame that was interrupted, which is where it happens).
      const lr = this.arch.returnAddress.kind === 'register' && !isCaller ? frame.regs.get(this.arch.returnAddressColumn) : undefined;
      if (lr === undefined) return undefined;
      caller.set(this.arch.returnAddressColumn, lr);
    }
    caller.set(this.arch.dwarfSp, cfa);
    frame.method = 'cfi';
    return caller;
  }

  /**
   * A function just entered through a link register (arm64, riscv64): nothing is saved yet,
   * so the return address is the link register and the stack and frame pointers are the
   * caller's. The frame-pointer chain would skip the caller here (fp still points at the
   * caller's record), which is what happens on the ftrace NOPs a function breakpoint stops on.
   */
  private viaEntry(frame: UnwoundFrame): Map<number, bigint> | undefined {
    if (this.arch.returnAddress.kind !== 'register' || !this.atEntry(frame.pc)) return undefined;
    const lr = frame.regs.get(this.arch.returnAddressColumn);
    if (lr === undefined) return undefined;
    const caller = new Map<number, bigint>();
    for (const r of [...this.arch.calleeSaved, this.arch.dwarfSp, this.arch.dwarfFp]) {
      const v = frame.regs.get(r);
      if (v !== undefined) caller.set(r, v);
    }
    caller.set(this.arch.returnAddressColumn, lr);
    frame.cfa = frame.regs.get(this.arch.dwarfSp);
    frame.method = 'entry';
    return caller;
  }

  private async apply(rule: RegRule, cfa: bigint, regs: Map<number, bigint>): Promise<bigint | undefined> {
    switch (rule.kind) {
      case 'offset':
        return this.word(cfa + BigInt(rule.offset));
      case 'valOffset':
        return (cfa + BigInt(rule.offset)) & MASK64;
      case 'register':
        return regs.get(rule.reg);
      case 'expression':
      case 'valExpression': {
        // Both push the CFA first; `expression` yields where the value is saved, `valExpression` the value.
        try {
          const v = (await evaluateValue(rule.expr, this.exprContext(regs), [cfa])) & MASK64;
          return rule.kind === 'expression' ? this.word(v) : v;
        } catch {
          return undefined;
        }
      }
      default:
        return undefined;
    }
  }

  /**
   * Whether `caller` lies further up the stack than `regs`, so the walk can't loop: its stack
   * pointer is higher, or, where the frame-pointer chain couldn't say where the caller's stack
   * pointer was (arm64), its frame pointer is (0 ends the chain in the caller). A call through
   * a link register pushes nothing, so an innermost frame stopped before its prologue (or a
   * leaf that needs no stack) shares its caller's stack pointer.
   */
  private climbs(regs: Map<number, bigint>, caller: Map<number, bigint>, innermost: boolean): boolean {
    const sp = caller.get(this.arch.dwarfSp);
    const mySp = regs.get(this.arch.dwarfSp);
    if (sp !== undefined) return mySp === undefined || sp > mySp || (sp === mySp && innermost && this.arch.returnAddress.kind === 'register');
    const fp = caller.get(this.arch.dwarfFp);
    const myFp = regs.get(this.arch.dwarfFp);
    return fp !== undefined && myFp !== undefined && (fp === 0n || fp > myFp);
  }

  /**
   * The frame-pointer chain, by the arch's frame record: x86 [fp] = caller's fp, [fp+8] =
   * return address, caller's sp = fp+16; arm64 the same pair with the caller's sp unknown;
   * riscv the pair below fp, which is the caller's sp.
   */
  private async viaFramePointer(frame: UnwoundFrame): Promise<Map<number, bigint> | undefined> {
    const rec = this.arch.frameRecord;
    const fp = frame.regs.get(this.arch.dwarfFp);
    const sp = frame.regs.get(this.arch.dwarfSp);
    if (fp === undefined || fp === 0n || (fp & BigInt(this.arch.pointerSize - 1)) !== 0n) return undefined;
    if (sp !== undefined && (fp < sp || fp - sp > 0x10000n)) return undefined;
    const savedFp = await this.word(fp + BigInt(rec.savedFp));
    const ra = await this.word(fp + BigInt(rec.returnAddress));
    if (savedFp === undefined || ra === undefined) return undefined;
    const callerSp = rec.callerSp === undefined ? undefined : (fp + BigInt(rec.callerSp)) & MASK64;
    frame.cfa = callerSp;
    frame.method = 'frame-pointer';
    const caller = new Map<number, bigint>();
    caller.set(this.arch.dwarfFp, savedFp);
    if (callerSp !== undefined) caller.set(this.arch.dwarfSp, callerSp);
    caller.set(this.arch.returnAddressColumn, ra);
    return caller;
  }
}
