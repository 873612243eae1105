import type { RegisterViewSpec } from './regview';

/** What the engine needs to know about one guest architecture. One file per arch implements it. */

/** What the disassembler's arch hook says about one instruction's control flow. */
export interface BranchInfo {
  /** A call: it links a return address (the next instruction) in the way the ABI returns through. */
  call: boolean;
  /** A direct branch or call's absolute target. */
  target?: bigint;
}

export interface ArchInfo {
  name: string;
  /** e_machine in the vmlinux ELF header. */
  elfMachine: number;
  /** `<architecture>` in the gdbstub's target.xml, to tell a guest of another arch early. */
  tdescArchitecture: string;
  /** Bytes in a pointer (and in a saved register slot on the stack). */
  pointerSize: 4 | 8;
  qemuBinary: string;
  /** The Debian package that ships qemuBinary. */
  qemuPackage: string;
  machineArgs: string[];
  /** Serial console device the kernel should log to. */
  console: string;
  pcRegister: string;
  /** The PC in QEMU's HMP `info registers` printout (its first group), for watching a boot without the gdbstub. */
  monitorPc: RegExp;
  spRegister: string;
  fpRegister: string;
  /** DWARF register number → target.xml register name (index = DWARF number; '' for numbers with no register). */
  dwarfRegisters: readonly string[];
  /** DWARF column CFI uses for the return address. */
  returnAddressColumn: number;
  /**
   * The slot of the DWARF-numbered register map that holds a frame's PC. On x86 it is the
   * return-address column (rip); on arm64 and riscv64 the return address is a register of its
   * own (x30, ra), so the PC needs its own number (AArch64 DWARF 32; riscv's psABI has none, and
   * 64, its alternate return column, which libgcc also uses for the PC, stands in).
   */
  dwarfPc: number;
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
  /**
   * The frame record the frame-pointer chain walks where CFI doesn't cover a PC: where the
   * caller's frame pointer and the return address are saved, as offsets from the frame pointer,
   * and the caller's stack pointer relative to it when the ABI fixes that (x86: fp+16; riscv:
   * fp itself, the CFA; arm64 keeps its record at the bottom of the frame, so it is unknown).
   */
  frameRecord: { savedFp: number; returnAddress: number; callerSp?: number };
  /** Other names `$name` accepts in expressions, to the target.xml name (riscv's `$s0` is QEMU's `fp`). */
  registerAliases?: Readonly<Record<string, string>>;
  /**
   * The flag that makes the CPU trap after each instruction (x86's TF in eflags), when the
   * arch has one the stepper can read. A NOP is then stepped by moving the PC alone, unless the
   * guest has set the flag (see KernelTarget.skipNop). Undefined: every NOP runs in the guest.
   */
  traceFlag?: { register: string; bit: number };
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
  disassembler: {
    decoder: 'x86_64' | 'arm64' | 'riscv64';
    maxInstructionBytes: number;
    alignment: number;
    /**
     * Calls and direct branch targets from the encoding, for ISAs where Capstone's groups and
     * operands don't say it the way stepping needs (riscv marks `jr a5` a call and prints
     * targets pc-relative). Undefined for an instruction that is neither. Without the hook,
     * Capstone's call group decides.
     */
    classify?: (code: Buffer, address: bigint) => BranchInfo | undefined;
  };
  /** Bytes of the multiboot/firmware probe used to test KVM, or undefined when the arch has none. */
  kvmProbe?: { args: string[]; image: Buffer; successExitCode: number };
}
