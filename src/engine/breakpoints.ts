/**
 * Breakpoint bookkeeping: which addresses the user wants and which are inserted in the stub.
 * Several user breakpoints can share an address; the stub sees it once.
 */
import type { Prelude, RspClient } from '../rsp/client';
import { RspError } from '../rsp/errors';
import * as P from '../rsp/packets';
import type { StopReply } from '../rsp/stop';
import type { KernelTarget } from './target';

export interface Inserted {
  type: 'sw' | 'hw';
  ids: Set<number>;
}

/** Temporary breakpoints armed for one run (see BreakpointTable.arm). */
export interface Armed {
  addresses: bigint[];
  /** Packets to send ahead of the resume; empty when every address was in the stub already. */
  prelude: Prelude[];
  /** Addresses the stub refused, known once the resume's stop has come. */
  refused: bigint[];
}

export class BreakpointTable {
  private readonly inserted = new Map<bigint, Inserted>();
  /**
   * Addresses no breakpoint wants any more but still in the stub: their removal goes out
   * ahead of the next resume, and a breakpoint wanted there again meanwhile costs nothing.
   * A step's temporary breakpoints become these, so the step's stop needs no extra packets.
   */
  private readonly stale = new Map<bigint, 'sw' | 'hw'>();
  /** Whether a single step executes the instruction under an inserted breakpoint (learned). */
  private stepsOver: boolean | undefined;

  /**
   * `inMemory`: whether the stub's software breakpoints are bytes in guest memory (KVM) or
   * kept outside it (TCG); undefined when unknown. Removals are put off only when they are
   * outside, where a leftover one can't show up in a memory read.
   */
  constructor(
    private readonly rsp: RspClient,
    private readonly kind: number,
    private readonly inMemory: () => boolean | undefined = () => undefined,
    /** How many hardware breakpoints the CPU has (x86: 4 debug registers); undefined: the stub decides. */
    private readonly hwSlots?: number,
  ) {
    rsp.addResumePrelude(() => this.takeStale());
  }

  private get canDefer(): boolean {
    return this.inMemory() === false || this.stepsOver === true;
  }

  /** Take a stale address back for `id`: it is still in the stub. */
  private revive(addr: bigint, id: number): boolean {
    const type = this.stale.get(addr);
    if (type === undefined) return false;
    this.stale.delete(addr);
    this.inserted.set(addr, { type, ids: new Set([id]) });
    return true;
  }

  private takeStale(): Prelude[] {
    const out = [...this.stale].map(([a, type]) => P.breakpointPrelude(false, type, a, this.kind, () => undefined));
    this.stale.clear();
    return out;
  }

  /** Send the removals put off so far now, e.g. before detaching. */
  async flushStale(): Promise<void> {
    const byType = new Map<'sw' | 'hw', bigint[]>();
    for (const [a, type] of this.stale) byType.set(type, [...(byType.get(type) ?? []), a]);
    this.stale.clear();
    for (const [type, list] of byType) await P.setBreakpoints(this.rsp, false, type, list, this.kind);
  }

  /**
   * Breakpoints for `id` at `addrs`, inserted by the next resume's prelude rather than a round
   * trip each. Addresses the stub refuses (a software breakpoint KVM can't write) are dropped
   * and listed in `refused`, and `onRefused` runs at once so the caller can stop the guest.
   */
  arm(addrs: readonly bigint[], id: number, onRefused: () => void): Armed {
    const armed: Armed = { addresses: [...new Set(addrs)], prelude: [], refused: [] };
    for (const a of armed.addresses) {
      const existing = this.inserted.get(a);
      if (existing) existing.ids.add(id);
      else if (!this.revive(a, id)) {
        const bp: Inserted = { type: 'sw', ids: new Set([id]) };
        this.inserted.set(a, bp);
        armed.prelude.push(
          P.breakpointPrelude(true, 'sw', a, this.kind, (err) => {
            if (!err) return;
            if (this.inserted.get(a) === bp) this.inserted.delete(a);
            armed.refused.push(a);
            onRefused();
          }),
        );
      }
    }
    return armed;
  }

  /** Drop `id` from `addrs`; addresses left with no breakpoint leave the stub (now, or ahead of the next resume). */
  async retire(addrs: readonly bigint[], id: number): Promise<void> {
    if (!this.canDefer) return this.removeAll(addrs, id);
    for (const a of new Set(addrs)) {
      const bp = this.inserted.get(a);
      if (!bp || !bp.ids.delete(id) || bp.ids.size > 0) continue;
      this.inserted.delete(a);
      this.stale.set(a, bp.type);
    }
  }

  idsAt(addr: bigint): number[] {
    return [...(this.inserted.get(addr)?.ids ?? [])];
  }

  has(addr: bigint): boolean {
    return this.inserted.has(addr);
  }

  addresses(): bigint[] {
    return [...this.inserted.keys()];
  }

  /**
   * Insert `addr` for breakpoint `id`. Software breakpoints first; when the stub refuses
   * (KVM cannot write INT3 to an unmapped early-boot address) fall back to a hardware one.
   */
  async add(addr: bigint, id: number): Promise<void> {
    const existing = this.inserted.get(addr);
    if (existing) {
      existing.ids.add(id);
      return;
    }
    if (this.revive(addr, id)) return;
    let type: 'sw' | 'hw' = 'sw';
    try {
      await P.insertBreakpoint(this.rsp, 'sw', addr, this.kind);
    } catch (e) {
      if (!(e instanceof RspError)) throw e;
      type = 'hw';
      const inUse = [...this.inserted].filter(([, b]) => b.type === 'hw').map(([a]) => a);
      if (this.hwSlots !== undefined && inUse.length >= this.hwSlots)
        throw new Error(
          `a software breakpoint cannot be written at 0x${addr.toString(16)} (the stub said ${e.message.replace(/^.*: /, '')}: under KVM the code is not mapped, or not where it will run, yet), and all ${this.hwSlots} hardware breakpoints are in use (at ${inUse.map((a) => `0x${a.toString(16)}`).join(', ')}). Remove one, or set this breakpoint once the kernel runs there.`,
        );
      await P.insertBreakpoint(this.rsp, 'hw', addr, this.kind);
    }
    this.inserted.set(addr, { type, ids: new Set([id]) });
  }

  /** Whether the breakpoint at `addr` is a software (Z0) or hardware (Z1) one. */
  kindAt(addr: bigint): 'sw' | 'hw' | undefined {
    return this.inserted.get(addr)?.type;
  }

  /**
   * add() for several addresses with one round trip to the stub; the ones it refuses as
   * software breakpoints are retried one by one (hardware). Returns the addresses added, so a
   * failure part-way leaves nothing the caller doesn't know to remove.
   */
  async addAll(addrs: readonly bigint[], id: number): Promise<bigint[]> {
    const fresh = [...new Set(addrs)].filter((a) => {
      const existing = this.inserted.get(a);
      existing?.ids.add(id);
      return !existing && !this.revive(a, id);
    });
    const done = addrs.filter((a) => !fresh.includes(a));
    const results = fresh.length ? await P.setBreakpoints(this.rsp, true, 'sw', fresh, this.kind) : [];
    const refused: bigint[] = [];
    fresh.forEach((a, i) => {
      const err = results[i];
      if (err && !(err instanceof RspError)) throw err;
      if (err) refused.push(a);
      else {
        this.inserted.set(a, { type: 'sw', ids: new Set([id]) });
        done.push(a);
      }
    });
    try {
      for (const a of refused) {
        await this.add(a, id);
        done.push(a);
      }
    } catch (e) {
      await this.removeAll(done, id);
      throw e;
    }
    return done;
  }

  /** remove() for several addresses, the stub's part in one round trip. */
  async removeAll(addrs: readonly bigint[], id: number): Promise<void> {
    const byType = new Map<'sw' | 'hw', bigint[]>();
    for (const a of new Set(addrs)) {
      const bp = this.inserted.get(a);
      if (!bp) continue;
      bp.ids.delete(id);
      if (bp.ids.size > 0) continue;
      this.inserted.delete(a);
      byType.set(bp.type, [...(byType.get(bp.type) ?? []), a]);
    }
    for (const [type, list] of byType) {
      const failed = (await P.setBreakpoints(this.rsp, false, type, list, this.kind)).find((e) => e);
      if (failed) throw failed;
    }
  }

  async remove(addr: bigint, id: number): Promise<void> {
    const bp = this.inserted.get(addr);
    if (!bp) return;
    bp.ids.delete(id);
    if (bp.ids.size > 0) return;
    this.inserted.delete(addr);
    await P.removeBreakpoint(this.rsp, bp.type, addr, this.kind);
  }

  /**
   * Single-step from `pc`, past a breakpoint there. TCG steps over its own breakpoints (QEMU
   * 6.2 on: a single step overrides them), which saves taking the breakpoint out and putting
   * it back, each of which makes QEMU flush every translated block. Under KVM a software
   * breakpoint is an int3 in guest memory and fires instead. The first step from a
   * breakpoint tells which; after that the answer is known.
   */
  async stepFrom(pc: bigint, step: () => Promise<StopReply>, pcNow: () => Promise<bigint>): Promise<StopReply> {
    if (!this.inserted.has(pc)) return step();
    if (this.stepsOver !== false) {
      const stop = await step();
      if (stop.kind !== 'signal' || this.stepsOver === true) return stop;
      if ((await pcNow()) !== pc) {
        this.stepsOver = true;
        return stop;
      }
      // TCG now and then ends a step before the instruction runs (see RunControl.stepOff):
      // one unmoved step does not prove the breakpoint fired, a second one does.
      const again = await step();
      if (again.kind !== 'signal') return again;
      if ((await pcNow()) !== pc) {
        this.stepsOver = true;
        return again;
      }
      this.stepsOver = false;
    }
    const restore = await this.lift(pc);
    try {
      return await step();
    } finally {
      await restore();
    }
  }

  /** Take one address out of the stub for a moment (to step over it) without forgetting it. */
  async lift(addr: bigint): Promise<() => Promise<void>> {
    const bp = this.inserted.get(addr);
    if (!bp) return async () => undefined;
    await P.removeBreakpoint(this.rsp, bp.type, addr, this.kind);
    return async () => {
      if (this.inserted.get(addr) === bp) await P.insertBreakpoint(this.rsp, bp.type, addr, this.kind);
    };
  }
}

/** One instruction on `tid` from `pc`, past a breakpoint there (see BreakpointTable.stepFrom). */
export function stepPast(t: KernelTarget, bps: BreakpointTable, tid: number, pc: bigint): Promise<StopReply> {
  t.invalidate();
  return bps.stepFrom(pc, () => P.stepThread(t.rsp, tid, t.vcont), () => {
    t.invalidate();
    return t.pc(tid);
  });
}
