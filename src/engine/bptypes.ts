/**
 * What every kind of breakpoint shares: its result as the client sees it, and the narrow
 * view of the engine a breakpoint set works through. Kept apart from the classes that use
 * them so no breakpoint module imports the Debugger that owns it.
 */
import type { BreakpointOptions } from './bpconditions';
import type { BreakpointTable } from './breakpoints';
import type { SourceLocation } from './sourceinfo';

export interface BreakpointResult {
  id: number;
  verified: boolean;
  address?: bigint;
  message?: string;
  /** Where the breakpoint really is, when a source location is known. */
  location?: SourceLocation;
}

export interface FunctionBreakpointRequest extends BreakpointOptions {
  name: string;
}

export interface SourceBreakpointRequest extends BreakpointOptions {
  line: number;
}

/** One placed breakpoint: its id, every address it covers, and what the client was told. */
export interface PlacedBreakpoint {
  id: number;
  addresses: bigint[];
  result: BreakpointResult;
}

/** The engine as a breakpoint set sees it. */
export interface BreakpointHost {
  readonly bps: BreakpointTable;
  newId(): number;
  /** Attach a request's condition, hit count or log message (unverified with the reason when they don't parse). */
  withOptions(result: BreakpointResult, opts: BreakpointOptions): BreakpointResult;
  /** Run work that changes breakpoints with the guest stopped, in turn with other engine work. */
  stoppedTurn<T>(fn: () => Promise<T>): Promise<T>;
  readonly isExited: boolean;
  warn(message: string): void;
  /** A breakpoint's locations changed after the client was answered. */
  changed(result: BreakpointResult): void;
}

/** Insert at each address; the ones that went in, and the last failure's reason. */
export async function insertAll(host: BreakpointHost, addrs: bigint[], id: number): Promise<{ addresses: bigint[]; failure: string }> {
  const addresses: bigint[] = [];
  let failure = '';
  for (const a of addrs) {
    try {
      await host.bps.add(a, id);
      addresses.push(a);
    } catch (e) {
      failure = (e as Error).message;
    }
  }
  return { addresses, failure };
}

/** Lift placed breakpoints; `quiet` (detaching) goes on past a stub that refuses one. */
export async function removePlaced(host: BreakpointHost, placed: Iterable<PlacedBreakpoint>, quiet = false): Promise<void> {
  for (const p of placed) {
    for (const a of p.addresses) {
      if (quiet) await host.bps.remove(a, p.id).catch(() => undefined);
      else await host.bps.remove(a, p.id);
    }
  }
}

export function locationsNote(n: number): string | undefined {
  return n > 1 ? `${n} locations` : undefined;
}
