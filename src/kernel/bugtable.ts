/**
 * The kernel's BUG()/WARN() table (lib/bug.c find_bug): one `struct bug_entry` per BUG or
 * WARN site, in vmlinux's `__bug_table` and in each module's `bug_table`. It tells a BUG from
 * a WARN (the trap instruction is the same) and gives the file and line DEBUG_BUGVERBOSE keeps.
 * With GENERIC_BUG_RELATIVE_POINTERS (x86_64, arm64, riscv64) addresses are displacements
 * from the entry's own fields, so the entries read the same wherever KASLR put them.
 */
import { readCString, readUint, StructLayout, type KernelAccess } from './layout';

export const BUGFLAG_WARNING = 1 << 0;
export const BUGFLAG_ONCE = 1 << 1;
export const BUGFLAG_DONE = 1 << 2;

export interface BugEntry {
  /** Address of the trapping instruction. */
  addr: bigint;
  file?: string;
  line?: number;
  flags: number;
}

export interface BugTable {
  start: bigint;
  count: number;
}

const NEAR = ['report_bug', 'find_bug', 'module_bug_finalize', 'generic_bug_clear_once'];

export class BugTables {
  private constructor(
    private readonly access: KernelAccess,
    private readonly entry: StructLayout,
  ) {}

  static async create(access: KernelAccess): Promise<BugTables> {
    return new BugTables(access, await StructLayout.of(access, 'struct bug_entry', NEAR));
  }

  /** vmlinux's own table, between the linker's __start___bug_table and __stop___bug_table. */
  kernelTable(): BugTable | undefined {
    const start = this.access.symbol('__start___bug_table');
    const stop = this.access.symbol('__stop___bug_table');
    if (start === undefined || stop === undefined || this.entry.size === 0) return undefined;
    return { start, count: Number((stop - start) / BigInt(this.entry.size)) };
  }

  /** A module's table, from its `struct module` (`bug_table`, `num_bugs`). */
  async moduleTable(module: bigint, layout: StructLayout): Promise<BugTable | undefined> {
    if (!layout.has('bug_table') || !layout.has('num_bugs')) return undefined;
    const ps = this.access.pointerSize;
    const start = readUint(await this.access.read(module + BigInt(layout.offset('bug_table')), ps), 0, ps);
    const count = Number(readUint(await this.access.read(module + BigInt(layout.offset('num_bugs')), 4), 0, 4));
    return start === 0n ? undefined : { start, count };
  }

  /** The entry for the trap at `addr` in `table`, as find_bug() looks it up. */
  async find(table: BugTable, addr: bigint): Promise<BugEntry | undefined> {
    const size = this.entry.size;
    if (table.count <= 0 || table.count > 1_000_000) return undefined;
    const bytes = await this.access.read(table.start, size * table.count);
    const relative = this.entry.has('bug_addr_disp');
    const addrOff = this.entry.offset(relative ? 'bug_addr_disp' : 'bug_addr');
    for (let i = 0; i < table.count; i++) {
      const base = i * size;
      const at = table.start + BigInt(base);
      const where = relative ? wrap(at + BigInt(addrOff) + BigInt(bytes.readInt32LE(base + addrOff))) : readUint(bytes, base + addrOff, this.access.pointerSize);
      if (where !== addr) continue;
      return this.decode(bytes.subarray(base, base + size), at);
    }
    return undefined;
  }

  private async decode(b: Buffer, at: bigint): Promise<BugEntry> {
    const e = this.entry;
    const relative = e.has('bug_addr_disp');
    const addrOff = e.offset(relative ? 'bug_addr_disp' : 'bug_addr');
    const addr = relative ? wrap(at + BigInt(addrOff) + BigInt(b.readInt32LE(addrOff))) : readUint(b, addrOff, this.access.pointerSize);
    const flags = e.has('flags') ? b.readUInt16LE(e.offset('flags')) : 0;
    const out: BugEntry = { addr, flags };
    if (e.has('line')) out.line = b.readUInt16LE(e.offset('line'));
    let file: bigint | undefined;
    if (e.has('file_disp')) file = wrap(at + BigInt(e.offset('file_disp')) + BigInt(b.readInt32LE(e.offset('file_disp'))));
    else if (e.has('file')) file = readUint(b, e.offset('file'), this.access.pointerSize);
    if (file !== undefined && file !== 0n) out.file = await readCString(this.access, file).catch(() => undefined);
    return out;
  }
}

const wrap = (v: bigint): bigint => BigInt.asUintN(64, v);
