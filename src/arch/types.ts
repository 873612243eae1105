import type { RegisterViewSpec } from './regview';

/** What the engine needs to know about one guest architecture. One file per arch implements it. */

export interface ArchInfo {
  name: string;
  /** e_machine in the vmlinux ELF header. */
  elfMachine: number;
  qemuBinary: string;
  /** The Debian package that ships qemuBinary. */
  qemuPackage: string;
  machineArgs: string[];
  /** Serial console device the kernel should log to. */
  console: string;
  pcRegister: string;
  spRegister: string;
  fpRegister: string;
  /** DWARF register number → target.xml register name (index = DWARF number). */
  dwarfRegisters: readonly string[];
  /** DWARF column CFI uses for the return address. */
  returnAddressColumn: number;
  /** DWARF numbers of the stack pointer and frame pointer. */
  dwarfSp: number;
  dwarfFp: number;
  /** Registers a callee preserves: unwinding keeps them when CFI has no rule for them. */
  calleeSaved: readonly number[];
  /**
   * Where a call leaves the return address: on the stack (x86: `call` pushes it), or in a
   * link register. Stepping uses this to recognise a call it just stepped into.
   */
  returnAddress: { kind: 'stack'; size: number } | { kind: 'register'; dwarf: number };
  /** Whether plain `char` is signed in the arch's C ABI (x86: yes; arm64 and riscv64: no). */
  charSigned: boolean;
  /** `kind` for Z0/Z1 packets. */
  breakpointKind: number;
  /** Where the kernel image usually sits in a build tree, relative to its root. */
  bootImage: string;
  /** Register groups and bit layouts for the Registers view. */
  registerView: RegisterViewSpec;
  /**
   * The disassembler's decoder, and the instruction sizes: the longest instruction (how far
   * to read ahead) and the alignment (a fixed-size ISA, max = alignment, can be decoded
   * backwards; x86 cannot).
   */
  disassembler: { decoder: 'x86_64' | 'arm64' | 'riscv64'; maxInstructionBytes: number; alignment: number };
  /** Bytes of the multiboot/firmware probe used to test KVM, or undefined when the arch has none. */
  kvmProbe?: { args: string[]; image: Buffer; successExitCode: number };
}
