/**
 * The indexes that need a pass over every unit: file → units (from line-table headers) and
 * function name → code copies, inlined or out-of-line (from a fast DIE scan). The background worker owns one of
 * these; building them in the adapter's own thread would stall the DAP connection for
 * seconds on a distribution vmlinux.
 */
import type { Dwarf } from '../dwarf/dwarf';
import { unitNames } from '../dwarf/scan';

/**
 * Kernel addresses are canonical (sign-extended), so 52 bits hold them exactly as a JS
 * number: the index stores doubles, not bigints, which keeps it a few MB on a distribution
 * vmlinux. An address that would not survive the round trip is refused loudly.
 */
export function packAddress(a: bigint): number {
  const n = BigInt.asIntN(52, a);
  if (BigInt.asUintN(64, n) !== a) throw new Error(`address 0x${a.toString(16)} is not canonical`);
  return Number(n);
}

export function unpackAddress(n: number): bigint {
  return BigInt.asUintN(64, BigInt(n));
}

export interface IndexStats {
  units: number;
  codeCopies: number;
  names: number;
  ms: number;
}

export class IndexBuilder {
  private copies: Map<string, number[]> | undefined;
  private variables: Map<string, number[]> | undefined;
  /** One declaration per name that some unit declares extern; a type for symbols DWARF never defines. */
  private declarations: Map<string, number> | undefined;
  private types: Map<string, number> | undefined;
  private building: Promise<IndexStats> | undefined;
  private readonly problems: string[] = [];

  private stopped = false;

  constructor(private readonly dwarf: Dwarf) {}

  /** Give up a scan in progress at its next yield (the session is ending). */
  stop(): void {
    this.stopped = true;
  }

  unitsNaming(baseName: string): number[] {
    return this.dwarf.unitsNaming(baseName);
  }

  /** Units whose DWARF could not be read; reported once, not silently dropped. */
  get errors(): readonly string[] {
    return this.problems;
  }

  /**
   * Scan every unit for the code copies of functions. Yields to the event loop between batches so queries
   * (file lookups) are answered while it runs.
   */
  buildFunctions(): Promise<IndexStats> {
    this.building ??= (async () => {
      const t0 = Date.now();
      const index = new Map<string, number[]>();
      const variables = new Map<string, number[]>();
      const declarations = new Map<string, number>();
      const types = new Map<string, number>();
      let units = 0;
      let calls = 0;
      const headers = this.dwarf.unitHeaders();
      for (let i = 0; i < headers.length; i++) {
        if (i % 16 === 15) await new Promise<void>((r) => setImmediate(r));
        if (this.stopped) throw new Error('the symbol index was closed before it was built');
        try {
          const cu = this.dwarf.unit(headers[i].offset);
          if (!cu.isCompileUnit) continue;
          units++;
          const found = unitNames(cu);
          for (const v of found.variables) {
            const list = variables.get(v.name);
            if (list) list.push(v.offset);
            else variables.set(v.name, [v.offset]);
          }
          for (const d of found.declarations) if (!declarations.has(d.name)) declarations.set(d.name, d.offset);
          // The first definition wins: a struct is laid out the same in every unit that defines it.
          for (const t of found.types) if (!types.has(t.key)) types.set(t.key, t.offset);
          for (const c of found.copies) {
            const list = index.get(c.name);
            const a = packAddress(c.entry);
            if (list) list.push(a);
            else index.set(c.name, [a]);
            calls++;
          }
        } catch (e) {
          this.problems.push(e instanceof Error ? e.message : String(e));
        }
        // The scan touches each unit once: keep the per-unit caches from growing for nothing.
        this.dwarf.forget(headers[i].offset);
      }
      this.copies = index;
      this.variables = variables;
      this.declarations = declarations;
      this.types = types;
      return { units, codeCopies: calls, names: index.size, ms: Date.now() - t0 };
    })();
    return this.building;
  }

  /** .debug_info offsets of the DIEs that define a global or file-static variable. */
  async variableDies(name: string): Promise<number[]> {
    if (!this.variables) await this.buildFunctions();
    const defs = this.variables?.get(name);
    if (defs) return defs;
    // No unit defines it: a declaration still gives the type the ELF symbol's address lacks.
    const decl = this.declarations?.get(name);
    return decl !== undefined ? [decl] : [];
  }

  /** A defining DIE for `struct NAME`, `union NAME`, `enum NAME`, or a typedef or base type name. */
  async typeDie(key: string): Promise<number | undefined> {
    if (!this.types) await this.buildFunctions();
    return this.types?.get(key);
  }

  async codeEntries(name: string): Promise<number[]> {
    if (!this.copies) await this.buildFunctions();
    return this.copies?.get(name) ?? [];
  }
}
