/**
 * The registers a sleeping task left behind when it was switched out, where the unwinder can
 * start its stack from (what gdb cannot do without a helper: its threads are CPUs):
 * - x86_64: `thread.sp` points at the `struct inactive_task_frame` __switch_to_asm pushed
 *   (callee-saved registers, then the return address into __schedule's switch);
 * - arm64: `thread.cpu_context` holds x19-x28, fp, sp and pc (cpu_switch_to's return);
 * - riscv64: `thread.ra`, `thread.sp` and `thread.s[0..11]` (__switch_to's saves).
 * The registers are by DWARF number; what the switch did not save is left out, so the
 * unwinder treats it as unknown rather than as the running CPU's.
 */
import { readUint, StructLayout, type KernelAccess } from './layout';

/** Functions of units that define the switch frame types completely. */
const X86_NEAR = ['copy_thread', '__switch_to', 'ret_from_fork'];

export async function sleepingRegisters(access: KernelAccess, arch: string, task: bigint, taskLayout: StructLayout): Promise<Map<number, bigint>> {
  const regs = new Map<number, bigint>();
  const word = async (addr: bigint): Promise<bigint> => readUint(await access.read(addr, 8), 0, 8);
  if (arch === 'x86_64') {
    const frameT = await StructLayout.of(access, 'struct inactive_task_frame', X86_NEAR);
    const sp = await word(task + BigInt(taskLayout.offset('thread.sp')));
    const frame = await access.read(sp, frameT.size);
    const at = (m: string): bigint => readUint(frame, frameT.offset(m), 8);
    // DWARF numbers: rbx 3, rbp 6, rsp 7, r12-r15 12-15, return address 16.
    for (const [m, n] of [['r15', 15], ['r14', 14], ['r13', 13], ['r12', 12], ['bx', 3], ['bp', 6]] as const) if (frameT.has(m)) regs.set(n, at(m));
    regs.set(16, at('ret_addr'));
    regs.set(7, sp + BigInt(frameT.offset('ret_addr')) + 8n);
    return regs;
  }
  if (arch === 'aarch64') {
    const base = task + BigInt(taskLayout.offset('thread.cpu_context'));
    const ctx = await access.read(base, 13 * 8);
    for (let i = 0; i < 10; i++) regs.set(19 + i, readUint(ctx, i * 8, 8));
    regs.set(29, readUint(ctx, 80, 8));
    regs.set(31, readUint(ctx, 88, 8));
    // cpu_switch_to returns through x30 to the saved pc.
    regs.set(30, readUint(ctx, 96, 8));
    regs.set(32, readUint(ctx, 96, 8));
    return regs;
  }
  if (arch === 'riscv64') {
    const ra = taskLayout.offset('thread.ra');
    const sp = taskLayout.offset('thread.sp');
    const s = taskLayout.offset('thread.s');
    const ctx = await access.read(task + BigInt(Math.min(ra, sp, s)), Math.max(ra, sp, s + 96) - Math.min(ra, sp, s) + 8);
    const at = (off: number): bigint => readUint(ctx, off - Math.min(ra, sp, s), 8);
    regs.set(1, at(ra));
    regs.set(64, at(ra));
    regs.set(2, at(sp));
    // s0-s1 are x8-x9, s2-s11 are x18-x27.
    for (let i = 0; i < 12; i++) regs.set(i < 2 ? 8 + i : 16 + i, at(s + i * 8));
    return regs;
  }
  throw new Error(`no switch frame layout for ${arch}`);
}
