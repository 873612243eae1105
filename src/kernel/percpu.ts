/**
 * Per-CPU data as the kernel addresses it: a per-CPU variable's address plus
 * `__per_cpu_offset[cpu]` (zero on a kernel built without SMP). On x86_64 before 6.15 the
 * variables are linked at small offsets from zero and the offset table holds the full base;
 * elsewhere they are linked in the image and KASLR shifts them like any data, which the
 * access's symbol lookup already does.
 */
import { readUint, type KernelAccess } from './layout';

export class PerCpu {
  private constructor(
    private readonly access: KernelAccess,
    /** `__per_cpu_offset[]` for every possible CPU id (one zero on a UP kernel). */
    readonly offsets: readonly bigint[],
    /** Linux CPU ids online now. */
    readonly online: readonly number[],
  ) {}

  static async read(access: KernelAccess): Promise<PerCpu> {
    const ps = access.pointerSize;
    const table = access.symbol('__per_cpu_offset');
    const nrSym = access.symbol('nr_cpu_ids');
    const nr = nrSym === undefined ? 1 : Number(readUint(await access.read(nrSym, 4), 0, 4));
    if (table === undefined || nr < 1 || nr > 8192) return new PerCpu(access, [0n], [0]);
    const buf = await access.read(table, nr * ps);
    const offsets = Array.from({ length: nr }, (_, i) => readUint(buf, i * ps, ps));
    return new PerCpu(access, offsets, await onlineCpus(access, nr));
  }

  /** The address of per-CPU variable `varAddr` (its symbol's address) for Linux CPU `cpu`. */
  address(varAddr: bigint, cpu: number): bigint {
    const off = this.offsets[cpu];
    if (off === undefined) throw new RangeError(`CPU ${cpu} does not exist: this kernel has CPUs 0 to ${this.offsets.length - 1}`);
    return (varAddr + off) & ((1n << BigInt(this.access.pointerSize * 8)) - 1n);
  }

  /**
   * The Linux CPU whose per-CPU base is `base` (x86 GS base, arm64 TPIDR_EL1), so a vCPU
   * maps to its CPU by what the kernel set up on it, not by QEMU's thread order.
   */
  cpuOfBase(base: bigint): number | undefined {
    const i = this.offsets.indexOf(base);
    return i >= 0 ? i : undefined;
  }
}

/** The set bits of `__cpu_online_mask`: the CPUs the kernel runs on now. */
async function onlineCpus(access: KernelAccess, nr: number): Promise<number[]> {
  const mask = access.symbol('__cpu_online_mask');
  if (mask === undefined) return [0];
  const bytes = await access.read(mask, Math.ceil(nr / 64) * 8);
  const out: number[] = [];
  for (let cpu = 0; cpu < nr; cpu++) if (bytes[cpu >> 3] & (1 << (cpu & 7))) out.push(cpu);
  return out;
}
