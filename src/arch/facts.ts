/**
 * The one table of what names an arch: its name, the other names users and tools give it,
 * its ELF machine, its QEMU binary and package, and the default. Light on purpose (no
 * register tables, no decoders): the config checker, the symbols-only `qkd where` and the
 * editor's schema checks read it without loading the arch descriptions. A new arch is a row
 * here plus its description file (./<name>.ts) and its gdbstub fixture.
 */

// e_machine values from the ELF ABI (symbols/elf.ts has the same), written here so the
// editor's bundle, which reads this table, does not pull in the ELF reader.
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const EM_RISCV = 243;

export interface ArchFacts {
  name: string;
  /** Debian's, the kernel's and uname's names for it. */
  aliases: readonly string[];
  elfMachine: number;
  qemuBinary: string;
  /** The Debian package that ships qemuBinary. */
  qemuPackage: string;
  /** One line for the editor's enum descriptions. */
  summary: string;
}

export const ARCH_FACTS: readonly ArchFacts[] = [
  { name: 'x86_64', aliases: ['amd64', 'x86'], elfMachine: EM_X86_64, qemuBinary: 'qemu-system-x86_64', qemuPackage: 'qemu-system-x86', summary: 'x86_64 (qemu-system-x86_64 -M pc, console ttyS0)' },
  { name: 'aarch64', aliases: ['arm64'], elfMachine: EM_AARCH64, qemuBinary: 'qemu-system-aarch64', qemuPackage: 'qemu-system-arm', summary: 'arm64 (qemu-system-aarch64 -M virt -cpu cortex-a57, console ttyAMA0)' },
  { name: 'riscv64', aliases: ['riscv'], elfMachine: EM_RISCV, qemuBinary: 'qemu-system-riscv64', qemuPackage: 'qemu-system-misc', summary: 'riscv64 (qemu-system-riscv64 -M virt with OpenSBI, console ttyS0)' },
];

export const DEFAULT_ARCH = 'x86_64';

export const archNames = (): string[] => ARCH_FACTS.map((a) => a.name);

/** The facts for a name or alias, or undefined for one we don't know. */
export function archFacts(name: string): ArchFacts | undefined {
  return ARCH_FACTS.find((a) => a.name === name || a.aliases.includes(name));
}

export function factsForElfMachine(machine: number): ArchFacts | undefined {
  return ARCH_FACTS.find((a) => a.elfMachine === machine);
}

/** Whether `qkd where` and the config check can take a vmlinux of this ELF machine. */
export function supportedMachine(machine: number): boolean {
  return factsForElfMachine(machine) !== undefined;
}

/** The description's own fields that come from this table, so they are written once. */
export function factsFor(name: string): Pick<ArchFacts, 'name' | 'elfMachine' | 'qemuBinary' | 'qemuPackage'> {
  const f = ARCH_FACTS.find((a) => a.name === name);
  if (!f) throw new Error(`arch '${name}' has no row in ARCH_FACTS`);
  return { name: f.name, elfMachine: f.elfMachine, qemuBinary: f.qemuBinary, qemuPackage: f.qemuPackage };
}
