/**
 * Line breakpoints: each line maps through the line tables to every address that starts it
 * (inlined copies included); a line without code moves to the next line that has some, and
 * the result says which line was used.
 */
import { extendPlaced, insertAll, liftRanges, pendingMessage, placementNote, removePlaced, unknownPlacement, type BreakpointHost, type BreakpointResult, type PlacedBreakpoint, type SourceBreakpointRequest } from './bptypes';
import type { SourceInfo } from './sourceinfo';

export class SourceBreakpoints {
  /** Per client path, keyed by the requested line. */
  private readonly byFile = new Map<string, Map<number, PlacedBreakpoint>>();

  constructor(
    private readonly host: BreakpointHost,
    private readonly source: SourceInfo | undefined,
  ) {}

  /** Replace one file's breakpoints. Call with the guest stopped. */
  async set(clientPath: string, requests: SourceBreakpointRequest[]): Promise<BreakpointResult[]> {
    const old = this.byFile.get(clientPath) ?? new Map<number, PlacedBreakpoint>();
    const now = new Map<number, PlacedBreakpoint>();
    const results: BreakpointResult[] = [];
    for (const req of requests) {
      const prev = old.get(req.line);
      if (prev) {
        old.delete(req.line);
        now.set(req.line, prev);
        results.push(this.host.withOptions(prev.result, req));
        continue;
      }
      const placed = await this.place(clientPath, req.line);
      now.set(req.line, placed);
      results.push(this.host.withOptions(placed.result, req));
    }
    await removePlaced(this.host, old.values());
    this.byFile.set(clientPath, now);
    return results;
  }

  /** A module loaded: lines of its sources that waited for it get their addresses. */
  async imageAdded(module: SourceInfo): Promise<void> {
    for (const [clientPath, lines] of this.byFile) {
      for (const [line, bp] of lines) {
        const r = await module.lineAddresses(clientPath, line);
        if (!r?.addresses.length) continue;
        await extendPlaced(this.host, bp, r.addresses.map((address) => ({ address })), { path: clientPath, line: r.line, column: 0 });
      }
    }
  }

  /** Every breakpoint of every file, pending ones (no address yet) included. */
  all(): PlacedBreakpoint[] {
    return [...this.byFile.values()].flatMap((f) => [...f.values()]);
  }

  lift(gone: (addr: bigint) => boolean, why: string): Promise<void> {
    return liftRanges(this.host, this.all(), gone, why);
  }

  async removeAll(quiet = false): Promise<void> {
    for (const file of this.byFile.values()) await removePlaced(this.host, file.values(), quiet);
  }

  private async place(clientPath: string, line: number): Promise<PlacedBreakpoint> {
    const id = this.host.newId();
    const resolved = await this.source?.lineLocations(clientPath, line);
    if (!this.source || !resolved) {
      return { id, addresses: [], result: { id, verified: false, message: 'This vmlinux has no DWARF line tables, so source lines cannot be mapped. Build the kernel with CONFIG_DEBUG_INFO_DWARF5 (or DWARF4).' } };
    }
    if (resolved.locations.length === 0) {
      const message = pendingMessage(
        this.host.pendingReason?.({ file: clientPath }),
        `No code for line ${line} or any later line of ${clientPath} in vmlinux or a loaded module. Is the file compiled into this kernel (check its CONFIG_ option), or does 'sourceMap' need an entry? It stays pending in case a module built from it loads.`,
      );
      return { id, addresses: [], result: { id, verified: false, message } };
    }
    const unknown = this.host.addressesUnknown?.();
    if (unknown) return unknownPlacement(this.host, id, resolved.locations.map((l) => l.address), unknown);
    const ins = await insertAll(this.host, resolved.locations.map((l) => l.address), id);
    const addresses = ins.addresses;
    const first = resolved.locations.find((l) => l.address === addresses[0]);
    const result: BreakpointResult = addresses.length
      ? {
          id,
          verified: true,
          address: addresses[0],
          location: { path: clientPath, line: resolved.line, column: first?.location?.line === resolved.line ? first.location.column : 0 },
          message: placementNote(addresses.length, ins.hardware),
        }
      : { id, verified: false, message: `Could not insert a breakpoint for line ${resolved.line}: ${ins.failure}` };
    return { id, addresses, result };
  }
}
