/**
 * Kernel memory from a vCPU stopped in user mode under PTI (x86) or KPTI (arm64): its page
 * tables then map almost none of the kernel, and QEMU's gdbstub reads through them. Such a
 * read is walked again through the kernel's own page tables and read physically:
 * - x86_64: PTI keeps the kernel's PGD 4 KiB below the user one CR3 holds (bit 12);
 * - arm64: in EL0 TTBR1 holds tramp_pg_dir, which sits in the kernel image a fixed distance
 *   before swapper_pg_dir (the trampoline's exit subtracts it), so swapper_pg_dir's physical
 *   address is TTBR1's plus that distance;
 * - riscv64 has no PTI, but QEMU reads as the hart's privilege allows, and a U-mode hart may
 *   not touch supervisor pages: the same tables are walked here, privilege aside.
 */
import { translate, type MmuRegisters, type Translation } from '../kernel/pagetables';
import type { KernelTarget } from './target';

const isKernel = (addr: bigint): boolean => addr >> 63n === 1n;
const PAGE = 4096n;

export class KernelView {
  constructor(
    private readonly target: KernelTarget,
    /** A vmlinux symbol's link-time address (the distance between two is all it needs). */
    private readonly linkSymbol: (name: string) => bigint | undefined,
  ) {}

  private regs(tid: number): MmuRegisters {
    const t = this.target;
    return { arch: t.arch.name, get: async (n) => (t.register(n) ? t.readRegister(tid, n).catch(() => undefined) : undefined) };
  }

  private readPhys = async (addr: bigint, n: number): Promise<Buffer | undefined> => {
    const b = await this.target.readMemoryPartial(addr, n, undefined, true).catch(() => undefined);
    return b && b.length === n ? b : undefined;
  };

  /** The roots to try for a kernel address: the vCPU's own, then the kernel's when PTI hides it. */
  private async kernelRoots(tid: number): Promise<Array<bigint | undefined>> {
    const r = this.regs(tid);
    if (r.arch === 'x86_64') {
      const cr3 = await r.get('cr3');
      return cr3 === undefined ? [undefined] : [undefined, cr3 & ~0x1fffn];
    }
    if (r.arch === 'aarch64') {
      const ttbr1 = await r.get('TTBR1_EL1');
      const swapper = this.linkSymbol('swapper_pg_dir');
      const tramp = this.linkSymbol('tramp_pg_dir');
      if (ttbr1 === undefined || swapper === undefined || tramp === undefined) return [undefined];
      return [undefined, (ttbr1 & ((1n << 48n) - 2n)) + (swapper - tramp)];
    }
    if (r.arch === 'riscv64') {
      const satp = await r.get('satp');
      return satp === undefined ? [undefined] : [undefined, satp];
    }
    return [undefined];
  }

  /** Each level of the walk for `va` as vCPU `tid` sees it, and, for a kernel address it can't see, as the kernel does. */
  async translate(tid: number, va: bigint): Promise<Translation & { root: 'vcpu' | 'kernel' }> {
    const roots = isKernel(va) ? await this.kernelRoots(tid) : [undefined];
    let first: Translation | undefined;
    for (const root of roots) {
      const t = await translate(this.readPhys, this.regs(tid), va, root);
      if (t.physical !== undefined) return { ...t, root: root === undefined ? 'vcpu' : 'kernel' };
      first ??= t;
    }
    return { ...(first as Translation), root: 'vcpu' };
  }

  /**
   * Kernel memory the vCPU's own tables don't map, read through the kernel's, page by page;
   * undefined when it is not a kernel address or the kernel doesn't map it either.
   */
  async read(tid: number, addr: bigint, length: number): Promise<Buffer | undefined> {
    if (!isKernel(addr) || length <= 0) return undefined;
    const roots = (await this.kernelRoots(tid)).filter((r): r is bigint => r !== undefined);
    if (!roots.length) return undefined;
    const parts: Buffer[] = [];
    for (let at = addr; at < addr + BigInt(length); ) {
      const n = Number(((at | (PAGE - 1n)) + 1n - at) < addr + BigInt(length) - at ? (at | (PAGE - 1n)) + 1n - at : addr + BigInt(length) - at);
      let bytes: Buffer | undefined;
      for (const root of roots) {
        const t = await translate(this.readPhys, this.regs(tid), at, root);
        if (t.physical !== undefined) bytes = await this.readPhys(t.physical, n);
        if (bytes) break;
      }
      if (!bytes) return undefined;
      parts.push(bytes);
      at += BigInt(n);
    }
    return Buffer.concat(parts);
  }
}
