/**
 * The ELF machine of each arch qkd supports, apart from the arch descriptions (register
 * layouts, branch decoding) in ./index: a tool that only reads symbols (`qkd where`) can
 * refuse a vmlinux for another machine without loading and compiling those.
 */
import { EM_AARCH64, EM_RISCV, EM_X86_64 } from '../symbols/elf';

export const ELF_MACHINES: Readonly<Record<string, number>> = { x86_64: EM_X86_64, aarch64: EM_AARCH64, riscv64: EM_RISCV };

export function supportedMachine(machine: number): boolean {
  return Object.values(ELF_MACHINES).includes(machine);
}
