/**
 * Instruction breakpoints (the disassembly view's gutter): one address each, with the same
 * conditions, hit counts and stop handling as function and line breakpoints. A breakpoint
 * set again at the same address keeps its id, so its hit count survives the client
 * re-sending the whole list.
 */
import type { BreakpointOptions } from './bpconditions';
import type { BreakpointTable } from './breakpoints';
import type { BreakpointResult } from './bptypes';

export interface InstructionBreakpointRequest extends BreakpointOptions {
  /** The address, or why the client's reference is not one (shown on the breakpoint). */
  address: bigint | { error: string };
}

export interface InstructionBreakpointHost {
  bps: BreakpointTable;
  newId(): number;
  /** Attach the request's condition and hit count to the result (unverified when they don't parse). */
  withOptions(result: BreakpointResult, opts: BreakpointOptions): BreakpointResult;
}

export class InstructionBreakpoints {
  private byAddress = new Map<bigint, BreakpointResult>();

  constructor(private readonly host: InstructionBreakpointHost) {}

  /** Whether every id hit belongs to an instruction breakpoint (the stop is reported as one). */
  ownsAll(ids: readonly number[]): boolean {
    if (!ids.length) return false;
    const mine = new Set([...this.byAddress.values()].map((r) => r.id));
    return ids.every((id) => mine.has(id));
  }

  /** Replace the whole set, as setInstructionBreakpoints does. */
  async set(requests: InstructionBreakpointRequest[]): Promise<BreakpointResult[]> {
    const old = this.byAddress;
    this.byAddress = new Map();
    const results: BreakpointResult[] = [];
    for (const req of requests) {
      if (typeof req.address !== 'bigint') {
        results.push({ id: this.host.newId(), verified: false, message: req.address.error });
        continue;
      }
      const address = req.address;
      let result = this.byAddress.get(address) ?? old.get(address);
      old.delete(address);
      if (!result) {
        const id = this.host.newId();
        try {
          await this.host.bps.add(address, id);
          result = { id, verified: true, address };
        } catch (e) {
          results.push({ id, verified: false, message: `Could not insert a breakpoint at 0x${address.toString(16)}: ${(e as Error).message}` });
          continue;
        }
      }
      this.byAddress.set(address, result);
      results.push(this.host.withOptions(result, req));
    }
    for (const [address, gone] of old) await this.host.bps.remove(address, gone.id);
    return results;
  }

  /** Take every instruction breakpoint out of the stub (detach). */
  async removeAll(): Promise<void> {
    for (const [address, r] of this.byAddress) await this.host.bps.remove(address, r.id).catch(() => undefined);
    this.byAddress.clear();
  }
}
