/**
 * `current` on a stopped vCPU, and which Linux CPU that vCPU is, read the way the kernel
 * itself knows them rather than by QEMU's thread order:
 * - x86_64: the GS base is `__per_cpu_offset[cpu]` in the kernel (in user mode the kernel's
 *   base waits in KERNEL_GS_BASE until swapgs), and `current` is the per-CPU
 *   `current_task` (`pcpu_hot.current_task` from 6.2);
 * - arm64: TPIDR_EL1 (TPIDR_EL2 under VHE) holds the per-CPU offset, and SP_EL0 holds
 *   `current` while in the kernel;
 * - riscv64: `tp` holds `current` in the kernel, and `sscratch` holds it while the hart is in
 *   user mode; the CPU is that task's.
 * When the register says nothing (user mode on arm64), the CPU's runqueue says who runs.
 */
import { readUint, type KernelAccess } from './layout';
import type { PerCpu } from './percpu';
import type { TaskReader } from './tasks';

export interface VcpuRegisters {
  readonly arch: string;
  /** A register by its target.xml name; undefined when the target has none. */
  register(name: string): Promise<bigint | undefined>;
}

export interface VcpuKernelState {
  /** The Linux CPU this vCPU is. */
  cpu?: number;
  /** Its `current` task_struct, 0n when unknown. */
  current: bigint;
  /** Which register or variable told. */
  how: string;
}

const isKernelAddress = (v: bigint | undefined): v is bigint => v !== undefined && v >> 63n === 1n;

export async function vcpuKernelState(access: KernelAccess, percpu: PerCpu, tasks: TaskReader, regs: VcpuRegisters): Promise<VcpuKernelState> {
  const ptr = async (addr: bigint): Promise<bigint> => readUint(await access.read(addr, access.pointerSize), 0, access.pointerSize);
  if (regs.arch === 'x86_64') {
    const cpu = await cpuFromBases(percpu, regs, ['gs_base', 'k_gs_base']);
    if (cpu === undefined) return { current: 0n, how: 'no GS base is a per-CPU offset' };
    const hot = access.symbol('pcpu_hot');
    const legacy = access.symbol('current_task');
    if (legacy !== undefined) return { cpu, current: await ptr(percpu.address(legacy, cpu)), how: 'current_task' };
    if (hot !== undefined) return { cpu, current: await ptr(percpu.address(hot, cpu)), how: 'pcpu_hot.current_task' };
    return { cpu, current: await fromRunqueue(tasks, percpu, cpu), how: 'rq->curr' };
  }
  if (regs.arch === 'aarch64') {
    const cpu = await cpuFromBases(percpu, regs, ['TPIDR_EL1', 'TPIDR_EL2']);
    const sp0 = await regs.register('SP_EL0');
    if (isKernelAddress(sp0)) return { cpu, current: sp0, how: 'SP_EL0' };
    return { cpu, current: cpu === undefined ? 0n : await fromRunqueue(tasks, percpu, cpu), how: 'rq->curr (the vCPU is in user mode)' };
  }
  if (regs.arch === 'riscv64') {
    const tp = await regs.register('tp');
    const scratch = await regs.register('sscratch');
    const cur = isKernelAddress(tp) ? tp : isKernelAddress(scratch) ? scratch : undefined;
    if (cur === undefined) return { current: 0n, how: 'neither tp nor sscratch holds a task' };
    const t = await tasks.read(cur);
    return { cpu: t.cpu, current: cur, how: cur === tp ? 'tp' : 'sscratch (the hart is in user mode)' };
  }
  return { current: 0n, how: `no method for ${regs.arch}` };
}

async function cpuFromBases(percpu: PerCpu, regs: VcpuRegisters, names: string[]): Promise<number | undefined> {
  for (const n of names) {
    const v = await regs.register(n);
    const cpu = v === undefined ? undefined : percpu.cpuOfBase(v);
    if (cpu !== undefined) return cpu;
  }
  // A uniprocessor kernel has no per-CPU offsets to match: CPU 0 is the only one.
  return percpu.offsets.length === 1 ? 0 : undefined;
}

async function fromRunqueue(tasks: TaskReader, percpu: PerCpu, cpu: number): Promise<bigint> {
  return (await tasks.runqueueCurrents(percpu)).get(cpu) ?? 0n;
}
