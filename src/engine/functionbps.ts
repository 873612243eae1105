/**
 * Function breakpoints, gdb's `break NAME`: every copy of the function (each `static`
 * duplicate, compiler clones, and inlined calls from the background index).
 */
import type { SymbolLookup } from '../symbols/symtab';
import { extendPlaced, insertAll, liftRanges, locationsNote, pendingMessage, placementNote, removePlaced, unknownPlacement, type BreakpointHost, type BreakpointResult, type FunctionBreakpointRequest, type PlacedBreakpoint } from './bptypes';
import type { CodeLocation, SourceInfo } from './sourceinfo';

export class FunctionBreakpoints {
  private placed = new Map<string, PlacedBreakpoint>();

  constructor(
    private readonly host: BreakpointHost,
    private readonly symbols: SymbolLookup | undefined,
    private readonly source: SourceInfo | undefined,
  ) {}

  /** Replace the set; a name asked for again keeps its id (and hit count). Call with the guest stopped. */
  async set(requests: FunctionBreakpointRequest[]): Promise<BreakpointResult[]> {
    const old = this.placed;
    this.placed = new Map();
    const results: BreakpointResult[] = [];
    for (const req of requests) {
      const name = req.name.trim();
      const prev = old.get(name);
      if (prev) {
        old.delete(name);
        this.placed.set(name, prev);
        results.push(this.host.withOptions(prev.result, req));
        continue;
      }
      results.push(this.host.withOptions(await this.add(name), req));
    }
    await removePlaced(this.host, old.values());
    return results;
  }

  /** Names of the function breakpoints placed at pc (a stop there shows that function's frame). */
  namesAt(pc: bigint): Set<string> {
    const out = new Set<string>();
    for (const [name, bp] of this.placed) if (bp.addresses.includes(pc)) out.add(name);
    return out;
  }

  /** A module loaded: its copies of every function asked for join the breakpoints. */
  async imageAdded(module: SourceInfo): Promise<void> {
    for (const [name, bp] of this.placed) await extendPlaced(this.host, bp, module.functionEntries(name));
  }

  /** Every breakpoint of the set, pending ones (no address yet) included. */
  all(): PlacedBreakpoint[] {
    return [...this.placed.values()];
  }

  /** Addresses that are gone (a module unloaded, its init freed) leave; `why` for those left with none. */
  lift(gone: (addr: bigint) => boolean, why: string): Promise<void> {
    return liftRanges(this.host, this.placed.values(), gone, why);
  }

  removeAll(quiet = false): Promise<void> {
    return removePlaced(this.host, this.placed.values(), quiet);
  }

  private async add(name: string): Promise<BreakpointResult> {
    const id = this.host.newId();
    if (!this.symbols) return { id, verified: false, message: 'No vmlinux was given, so function names cannot be resolved. Set "vmlinux".' };
    const source = this.source;
    let locations: CodeLocation[];
    let completeLater = false;
    if (source) {
      locations = source.functionEntries(name);
      // Inlined copies come from the background index: wait for it only when there is
      // nothing else to offer (an inline-only function) or when it is already built.
      if (locations.length === 0 || source.index?.functionsReady) locations = await this.withInlined(name, locations);
      else completeLater = source.index !== undefined;
    } else {
      locations = this.symbols
        .lookup(name)
        .filter((s) => s.type === 'func')
        .map((s) => ({ address: s.value, location: undefined, function: name }));
    }
    if (locations.length === 0) {
      // Kept, with no address: a module that defines it may load later.
      const message = pendingMessage(this.host.pendingReason?.({ function: name }), `No function '${name}' in vmlinux${name === 'do_fork' ? " (since Linux 5.10 it is called 'kernel_clone')" : ''} or any loaded module; it stays pending in case a module that has it loads.`);
      const result: BreakpointResult = { id, verified: false, message };
      this.placed.set(name, { id, addresses: [], result });
      return result;
    }
    const unknown = this.host.addressesUnknown?.();
    if (unknown) {
      const p = await unknownPlacement(this.host, id, locations.map((l) => l.address), unknown);
      this.placed.set(name, p);
      return p.result;
    }
    const { addresses, failure, hardware } = await insertAll(this.host, locations.map((l) => l.address), id);
    const result: BreakpointResult =
      addresses.length === 0
        ? { id, verified: false, message: `Could not insert a breakpoint at '${name}': ${failure}` }
        : { id, verified: true, address: addresses[0], location: locations.find((l) => l.address === addresses[0])?.location, message: placementNote(addresses.length, hardware) };
    this.placed.set(name, { id, addresses, result });
    if (completeLater && addresses.length) void this.addInlinedCopies(name, id);
    return result;
  }

  private async withInlined(name: string, entries: CodeLocation[]): Promise<CodeLocation[]> {
    try {
      return (await this.source?.functionLocations(name)) ?? entries;
    } catch (e) {
      this.host.warn(`Inlined copies of '${name}' are not included: ${(e as Error).message}`);
      return entries;
    }
  }

  /**
   * Once the function index is built, add a breakpoint's inlined copies and tell the client
   * how many locations it now has.
   */
  private async addInlinedCopies(name: string, id: number): Promise<void> {
    let extra: CodeLocation[];
    try {
      extra = (await this.source?.inlinedLocations(name)) ?? [];
    } catch (e) {
      this.host.warn(`Inlined copies of '${name}' are not included: ${(e as Error).message}`);
      return;
    }
    if (!extra.length || this.host.isExited) return;
    await this.host
      .stoppedTurn(async () => {
        const bp = this.placed.get(name);
        if (!bp || bp.id !== id) return;
        const fresh = extra.filter((l) => !bp.addresses.includes(l.address));
        const ins = await insertAll(this.host, fresh.map((l) => l.address), id);
        if (!ins.addresses.length) return;
        bp.addresses.push(...ins.addresses);
        bp.result = { ...bp.result, message: locationsNote(bp.addresses.length) };
        this.host.changed(bp.result);
      })
      .catch((e: unknown) => this.host.warn(`Inlined copies of '${name}' could not be inserted: ${(e as Error).message}`));
  }
}
