/**
 * Data breakpoints as gdbstub watchpoints (Z2 write, Z3 read, Z4 access). QEMU's TCG
 * watches any number of naturally sized locations; under KVM the x86 debug registers give
 * four, shared with hardware breakpoints. Whatever the stub refuses is reported on that
 * breakpoint, with the reason, instead of being silently dropped.
 */
import type { RspClient } from '../rsp/client';
import { RspError, RspUnsupported } from '../rsp/errors';
import * as P from '../rsp/packets';
import type { StopReply } from '../rsp/stop';
import { BreakpointBehaviour, type BreakpointOptions } from './bpconditions';

export type WatchAccess = 'write' | 'read' | 'readWrite';

export interface WatchRequest extends BreakpointOptions {
  address: bigint;
  size: number;
  access: WatchAccess;
  /** What the user watched, for messages: `jiffies_64`, `p->flags`. */
  label: string;
}

export interface WatchResult {
  id: number;
  verified: boolean;
  message?: string;
}

interface Watch {
  id: number;
  req: WatchRequest;
  type: P.BreakpointType;
  behaviour: BreakpointBehaviour;
}

const TYPE: Record<WatchAccess, P.BreakpointType> = { write: 'write', read: 'read', readWrite: 'access' };

/** Sizes the gdbstub watches as one location on every arch we support. */
export const WATCH_SIZES = [1, 2, 4, 8];

export function watchKey(w: { address: bigint; size: number; access: WatchAccess }): string {
  return `${w.access}:0x${w.address.toString(16)}/${w.size}`;
}

export class WatchTable {
  private watches: Watch[] = [];

  constructor(private readonly rsp: RspClient) {}

  get all(): readonly Watch[] {
    return this.watches;
  }

  /** Replace every watchpoint; unchanged ones stay inserted and keep their hit counts. */
  async set(requests: WatchRequest[], nextId: () => number): Promise<WatchResult[]> {
    const old = new Map(this.watches.map((w) => [watchKey(w.req), w]));
    const now: Watch[] = [];
    const results: WatchResult[] = [];
    for (const req of requests) {
      const key = watchKey(req);
      const prev = old.get(key);
      if (prev) {
        old.delete(key);
        const keep = prev.behaviour.same(req) ? prev : { ...prev, req, behaviour: new BreakpointBehaviour(req) };
        now.push(keep);
        results.push({ id: keep.id, verified: true, message: describeWatch(req) });
        continue;
      }
      const id = nextId();
      if (!WATCH_SIZES.includes(req.size) || req.address % BigInt(req.size) !== 0n) {
        results.push({ id, verified: false, message: `${req.label} is ${req.size} bytes at 0x${req.address.toString(16)}: a watchpoint covers 1, 2, 4 or 8 naturally aligned bytes. Watch one member or element instead.` });
        continue;
      }
      let behaviour: BreakpointBehaviour;
      try {
        behaviour = new BreakpointBehaviour(req);
      } catch (e) {
        results.push({ id, verified: false, message: (e as Error).message });
        continue;
      }
      try {
        await P.insertBreakpoint(this.rsp, TYPE[req.access], req.address, req.size);
        now.push({ id, req, type: TYPE[req.access], behaviour });
        results.push({ id, verified: true, message: describeWatch(req) });
      } catch (e) {
        const why =
          e instanceof RspUnsupported
            ? 'the gdbstub does not support this kind of watchpoint'
            : e instanceof RspError
              ? `the gdbstub refused it (${e.message}); under KVM x86 has 4 debug registers, shared with hardware breakpoints — remove another data breakpoint, or use TCG`
              : (e as Error).message;
        results.push({ id, verified: false, message: `Cannot watch ${req.label}: ${why}.` });
      }
    }
    for (const gone of old.values()) await P.removeBreakpoint(this.rsp, gone.type, gone.req.address, gone.req.size).catch(() => undefined);
    this.watches = now;
    return results;
  }

  /** The watchpoints a stop reply names (`watch:ADDR`, `rwatch:`, `awatch:`). */
  hitBy(stop: StopReply): Watch[] {
    if (stop.kind !== 'signal') return [];
    for (const key of ['watch', 'rwatch', 'awatch']) {
      const v = stop.pairs.get(key);
      if (v === undefined) continue;
      const addr = BigInt('0x' + (v || '0'));
      const hit = this.watches.filter((w) => addr >= w.req.address && addr < w.req.address + BigInt(w.req.size));
      // The stub reports the address the access touched, which may be inside a wider watch.
      return hit.length ? hit : this.watches.filter((w) => TYPE[w.req.access] === (key === 'watch' ? 'write' : key === 'rwatch' ? 'read' : 'access'));
    }
    return [];
  }

  async removeAll(): Promise<void> {
    for (const w of this.watches) await P.removeBreakpoint(this.rsp, w.type, w.req.address, w.req.size).catch(() => undefined);
    this.watches = [];
  }
}

function describeWatch(req: WatchRequest): string {
  const what = req.access === 'write' ? 'writes to' : req.access === 'read' ? 'reads of' : 'reads and writes of';
  return `Stops on ${what} ${req.label} (${req.size} bytes at 0x${req.address.toString(16)})`;
}
