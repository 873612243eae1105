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
  /** `kind` for Z0/Z1 packets. */
  breakpointKind: number;
  /** Where the kernel image usually sits in a build tree, relative to its root. */
  bootImage: string;
  /** Bytes of the multiboot/firmware probe used to test KVM, or undefined when the arch has none. */
  kvmProbe?: { args: string[]; image: Buffer; successExitCode: number };
}
