/**
 * Breakpoint bookkeeping: which addresses the user wants and which are inserted in the stub.
 * Several user breakpoints can share an address; the stub sees it once.
 */
import { RspClient } from '../rsp/client';
import { RspError } from '../rsp/errors';
import * as P from '../rsp/packets';
import type { StopReply } from '../rsp/stop';
import type { KernelTarget } from './target';

export interface Inserted {
  type: 'sw' | 'hw';
  ids: Set<number>;
}

export class BreakpointTable {
  private readonly inserted = new Map<bigint, Inserted>();
  /** Whether a single step executes the instruction under an inserted breakpoint (learned). */
  private stepsOver: boolean | undefined;

  constructor(private readonly rsp: RspClient, private readonly kind: number) {}

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
    let type: 'sw' | 'hw' = 'sw';
    try {
      await P.insertBreakpoint(this.rsp, 'sw', addr, this.kind);
    } catch (e) {
      if (!(e instanceof RspError)) throw e;
      type = 'hw';
      await P.insertBreakpoint(this.rsp, 'hw', addr, this.kind);
    }
    this.inserted.set(addr, { type, ids: new Set([id]) });
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
      return !existing;
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
