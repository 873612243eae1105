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
  /** Armed at every place the kernel can be while its KASLR offset is unknown (see armCandidates). */
  candidates?: boolean;
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
  /**
   * Why a function or source file has no code yet, when a module that is not loaded has it
   * (`pending: module qkd_sample is not loaded`).
   */
  pendingReason?(what: { function: string } | { file: string }): string | undefined;
  /** Why no kernel address can be placed yet (the KASLR offset is not known), if so. */
  addressesUnknown?(): string | undefined;
  /**
   * While the offset is unknown: the shifts a breakpoint can be armed at all at once (TCG on
   * x86_64, where breakpoints are unlimited and the kernel has a few hundred places to be).
   */
  candidateShifts?(): readonly bigint[] | undefined;
}

/**
 * A kernel breakpoint while the KASLR offset is unknown: pending with the reason, or, where
 * the host offers candidate shifts, armed at each of them, so an early function (start_kernel)
 * still stops; the hit tells where the kernel is, and the engine then keeps the right address.
 */
export async function unknownPlacement(host: BreakpointHost, id: number, addrs: readonly bigint[], reason: string): Promise<PlacedBreakpoint> {
  const shifts = host.candidateShifts?.();
  if (!shifts?.length) return { id, addresses: [], result: { id, verified: false, message: reason } };
  const all = addrs.flatMap((a) => shifts.map((k) => a + k));
  const addresses = await host.bps.addAll(all, id).catch(() => []);
  const message = `pending: armed at each of the ${shifts.length} places this kernel can run at (KASLR, under TCG); placed for good at its first stop`;
  return { id, addresses, result: { id, verified: false, message }, candidates: addresses.length > 0 };
}

/** What a breakpoint says while nothing it names is loaded. */
export function pendingMessage(reason: string | undefined, fallback: string): string {
  return reason ? `${reason}; the breakpoint is placed when it loads` : fallback;
}

/**
 * Lift the addresses of placed breakpoints that fall in `gone` (a module unloaded, or its init
 * memory freed). A breakpoint left with none goes back to pending with `why`; each one that
 * changed is reported.
 */
export async function liftRanges(host: BreakpointHost, placed: Iterable<PlacedBreakpoint>, gone: (addr: bigint) => boolean, why: string): Promise<void> {
  for (const p of placed) {
    const lift = p.addresses.filter(gone);
    if (!lift.length) continue;
    for (const a of lift) await host.bps.remove(a, p.id).catch(() => undefined);
    p.addresses = p.addresses.filter((a) => !gone(a));
    p.result = p.addresses.length ? { ...p.result, address: p.addresses[0], message: locationsNote(p.addresses.length) } : { id: p.id, verified: false, message: why };
    host.changed(p.result);
  }
}

/**
 * Add a newly loaded image's locations to a placed breakpoint; one that was pending becomes
 * verified there. Reports the change; returns whether anything was added.
 */
export async function extendPlaced(host: BreakpointHost, p: PlacedBreakpoint, found: Array<{ address: bigint; location?: SourceLocation }>, at?: SourceLocation): Promise<boolean> {
  const fresh = found.filter((l) => !p.addresses.includes(l.address));
  if (!fresh.length) return false;
  const ins = await insertAll(host, fresh.map((l) => l.address), p.id);
  if (!ins.addresses.length) {
    if (!p.addresses.length) {
      p.result = { id: p.id, verified: false, message: `Could not insert the breakpoint: ${ins.failure}` };
      host.changed(p.result);
    }
    return false;
  }
  const wasPending = p.addresses.length === 0;
  p.addresses.push(...ins.addresses);
  const first = fresh.find((l) => l.address === p.addresses[0]);
  p.result = wasPending
    ? { id: p.id, verified: true, address: p.addresses[0], location: at ?? first?.location, message: locationsNote(p.addresses.length) }
    : { ...p.result, message: locationsNote(p.addresses.length) };
  host.changed(p.result);
  return true;
}

/** Insert at each address; the ones that went in, the ones that had to be hardware breakpoints, and the last failure's reason. */
export async function insertAll(host: BreakpointHost, addrs: bigint[], id: number): Promise<{ addresses: bigint[]; failure: string; hardware: bigint[] }> {
  const addresses: bigint[] = [];
  const hardware: bigint[] = [];
  let failure = '';
  for (const a of addrs) {
    try {
      await host.bps.add(a, id);
      addresses.push(a);
      if (host.bps.kindAt(a) === 'hw') hardware.push(a);
    } catch (e) {
      failure = (e as Error).message;
    }
  }
  return { addresses, failure, hardware };
}

/** The breakpoint's notes: how many locations, and which of them are hardware breakpoints and why. */
export function placementNote(count: number, hardware: readonly bigint[]): string | undefined {
  const hw = hardware.length
    ? `hardware breakpoint (Z1) at ${hardware.map((a) => `0x${a.toString(16)}`).join(', ')}: a software one (Z0) could not be written there (under KVM the code is not mapped, or not where it will run, yet)`
    : undefined;
  return [locationsNote(count), hw].filter(Boolean).join('; ') || undefined;
}

/**
 * Move placed breakpoints where `to` says their addresses now are (the kernel turned out to
 * run elsewhere: KASLR). Each one moved is reported; one that can't be inserted at its new
 * place says why rather than claiming an address it lacks.
 */
export async function rebasePlaced(host: BreakpointHost, placed: Iterable<PlacedBreakpoint>, to: (addr: bigint) => bigint): Promise<void> {
  for (const p of placed) {
    const moved = p.addresses.map(to);
    if (moved.every((a, i) => a === p.addresses[i])) continue;
    for (const a of p.addresses) await host.bps.remove(a, p.id).catch(() => undefined);
    const ins = await insertAll(host, moved, p.id);
    p.addresses = ins.addresses;
    p.result = ins.addresses.length
      ? { ...p.result, verified: true, address: ins.addresses[0], message: locationsNote(ins.addresses.length) }
      : { id: p.id, verified: false, message: `Could not insert the breakpoint where the relocated kernel has it: ${ins.failure}` };
    host.changed(p.result);
  }
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
