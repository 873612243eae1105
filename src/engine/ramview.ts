/**
 * Virtual memory as a stopped vCPU sees it, read from guest RAM directly (qemu/guestram.ts)
 * instead of through the gdbstub: the address is walked through that vCPU's own page tables
 * (kernel/pagetables.ts), over the same RAM, and each page's translation is kept until the
 * guest runs again. Only where the walk is certain to be the MMU's: x86 in long mode with
 * paging on, arm64 at EL0/EL1 with its MMU on, riscv in S/U mode with Sv39/48/57. Anything
 * else (an unmapped page, MMIO, the reset vector, M-mode firmware) is left to the gdbstub,
 * so a read gives the same bytes or the same error either way.
 */
import { translate, type MmuRegisters } from '../kernel/pagetables';

/** Guest-physical RAM the engine may read without the gdbstub. */
export interface GuestRam {
  /** undefined unless all `length` bytes are RAM. */
  read(pa: bigint, length: number): Buffer | undefined;
}

const PAGE = 4096n;
const OFFSET = PAGE - 1n;
const MiB2 = 0x200000n;

export class RamView {
  /** Per vCPU: whether its MMU state is one the walk follows, and page → physical page (null: not RAM-mapped). */
  private readonly mmuOk = new Map<number, Promise<boolean>>();
  private readonly tlb = new Map<number, Map<bigint, bigint | null>>();
  /** Per vCPU: 2 MiB-aligned virtual chunk → physical, where a 2 MiB (or larger) page maps it. */
  private readonly large = new Map<number, Map<bigint, bigint>>();
  /** Page-table pages read during this stop: a walk's upper levels are shared by nearly every address. */
  private readonly tables = new Map<bigint, Buffer | null>();

  constructor(
    readonly ram: GuestRam,
    private readonly arch: string,
    /** A register of a vCPU by its target.xml name (cached by the target for the stop); undefined when absent. */
    private readonly reg: (tid: number, name: string) => Promise<bigint | undefined>,
  ) {}

  /** The guest ran or its registers changed: every translation is stale. */
  clear(): void {
    this.mmuOk.clear();
    this.tlb.clear();
    this.large.clear();
    this.tables.clear();
  }

  /** An entry of a page table, from its whole 4 KiB page read once per stop. */
  private readTable = async (pa: bigint, n: number): Promise<Buffer | undefined> => {
    const base = pa & ~OFFSET;
    const off = Number(pa - base);
    if (off + n > Number(PAGE)) return this.ram.read(pa, n);
    let page = this.tables.get(base);
    if (page === undefined) this.tables.set(base, (page = this.ram.read(base, Number(PAGE)) ?? null));
    return page?.subarray(off, off + n);
  };

  /** `length` bytes at `addr` as vCPU `tid` sees them, or undefined to ask the gdbstub. */
  async read(tid: number, addr: bigint, length: number): Promise<Buffer | undefined> {
    if (length <= 0 || !(await this.walkable(tid))) return undefined;
    let pages = this.tlb.get(tid);
    if (!pages) this.tlb.set(tid, (pages = new Map()));
    const end = addr + BigInt(length);
    // One page is the common case (a struct, a stack slot): no concatenation.
    if ((addr & ~OFFSET) === ((end - 1n) & ~OFFSET)) {
      const p = await this.page(tid, pages, addr & ~OFFSET);
      return p === null ? undefined : this.ram.read(p + (addr & OFFSET), length);
    }
    const out = Buffer.allocUnsafe(length);
    for (let at = addr; at < end; ) {
      const next = (at & ~OFFSET) + PAGE;
      const n = Number((next < end ? next : end) - at);
      const p = await this.page(tid, pages, at & ~OFFSET);
      const bytes = p === null ? undefined : this.ram.read(p + (at & OFFSET), n);
      if (!bytes) return undefined;
      bytes.copy(out, Number(at - addr));
      at += BigInt(n);
    }
    return out;
  }

  private async page(tid: number, pages: Map<bigint, bigint | null>, va: bigint): Promise<bigint | null> {
    const known = pages.get(va);
    if (known !== undefined) return known;
    let large = this.large.get(tid);
    if (!large) this.large.set(tid, (large = new Map()));
    const chunk = large.get(va >> 21n);
    if (chunk !== undefined) return chunk + (va & (MiB2 - 1n));
    const regs: MmuRegisters = { arch: this.arch, get: (n) => this.reg(tid, n) };
    const t = await translate(this.readTable, regs, va).catch(() => undefined);
    const pa = t?.physical !== undefined ? t.physical & ~OFFSET : null;
    if (pa !== null && t?.pageSize !== undefined && t.pageSize >= MiB2) large.set(va >> 21n, pa - (va & (MiB2 - 1n)));
    else pages.set(va, pa);
    return pa;
  }

  private walkable(tid: number): Promise<boolean> {
    let ok = this.mmuOk.get(tid);
    if (!ok) this.mmuOk.set(tid, (ok = this.checkMmu(tid).catch(() => false)));
    return ok;
  }

  private async checkMmu(tid: number): Promise<boolean> {
    const r = (n: string): Promise<bigint | undefined> => this.reg(tid, n);
    if (this.arch === 'x86_64') {
      const [cr0, efer] = [await r('cr0'), await r('efer')];
      // Paging on (CR0.PG) in long mode (EFER.LMA): 4- or 5-level tables, as the walker reads them.
      return cr0 !== undefined && efer !== undefined && ((cr0 >> 31n) & 1n) === 1n && ((efer >> 10n) & 1n) === 1n;
    }
    if (this.arch === 'aarch64') {
      // QEMU names SCTLR_EL1 "SCTLR".
      const [sctlr, cpsr] = [(await r('SCTLR')) ?? (await r('SCTLR_EL1')), await r('cpsr')];
      // EL1 or EL0 (CPSR.M[3:2]) with the stage-1 MMU on (SCTLR_EL1.M).
      return sctlr !== undefined && cpsr !== undefined && (sctlr & 1n) === 1n && ((cpsr >> 2n) & 3n) <= 1n;
    }
    if (this.arch === 'riscv64') {
      // M-mode firmware (priv 3) does not translate, whatever satp holds; Bare satp is refused by the walker.
      const priv = await r('priv');
      return priv !== undefined && priv < 3n;
    }
    return false;
  }
}
