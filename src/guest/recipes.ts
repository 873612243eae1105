/**
 * Guest recipes: what each sample guest is built from. The config fragment is merged over
 * `make tinyconfig`; every option listed in `required` is checked after olddefconfig so a
 * silently dropped dependency fails the build instead of producing a kernel without it.
 */

export interface GuestRecipe {
  arch: string;
  /** ARCH= for the kernel's make. */
  kernelArch: string;
  /** The image make produces, relative to the tree. */
  image: string;
  makeTarget: string;
  crossCompile?: string;
  fragment: string;
  packages: string[];
  /**
   * Where the target's static busybox comes from. Absent: the host's own /bin/busybox from
   * busybox-static (the x86_64 guest). `deb`: Debian's busybox-static for another
   * architecture, fetched with apt. `source`: Debian's busybox source package, cross-built
   * (for architectures bookworm does not ship, such as riscv64).
   */
  busybox?: { kind: 'deb'; debArch: string } | { kind: 'source'; debArch: string };
}

// The failure reporters the debugger stops on: BUG()/WARN() with file:line, sysrq `c`, KFENCE
// (SLUB's sampling heap checker, cheap enough under TCG where KASAN's shadow checks on every
// access are not) and UBSAN, instrumenting only the files that opt in (the sample module's
// fault file) so the rest of the kernel's code is unchanged.
const COMMON_FRAGMENT = `
CONFIG_64BIT=y
CONFIG_PRINTK=y
CONFIG_PRINTK_TIME=y
CONFIG_TTY=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_DEVTMPFS=y
CONFIG_DEVTMPFS_MOUNT=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_FUTEX=y
CONFIG_DEBUG_KERNEL=y
CONFIG_DEBUG_INFO=y
CONFIG_DEBUG_INFO_DWARF5=y
CONFIG_FRAME_POINTER=y
CONFIG_KALLSYMS=y
CONFIG_KALLSYMS_ALL=y
CONFIG_GDB_SCRIPTS=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_SMP=y
CONFIG_PCI=y
CONFIG_VIRTIO_MENU=y
CONFIG_VIRTIO_PCI=y
CONFIG_BLOCK=y
CONFIG_BLK_DEV=y
CONFIG_VIRTIO_BLK=y
CONFIG_NET=y
CONFIG_INET=y
CONFIG_UNIX=y
CONFIG_NETDEVICES=y
CONFIG_NET_CORE=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_CONSOLE=y
CONFIG_NETWORK_FILESYSTEMS=y
CONFIG_NET_9P=y
CONFIG_NET_9P_VIRTIO=y
CONFIG_9P_FS=y
CONFIG_FTRACE=y
CONFIG_FUNCTION_TRACER=y
CONFIG_DEBUG_FS=y
CONFIG_BUG=y
CONFIG_DEBUG_BUGVERBOSE=y
CONFIG_MAGIC_SYSRQ=y
# CONFIG_SLOB is not set
CONFIG_SLUB=y
CONFIG_KFENCE=y
CONFIG_UBSAN=y
# CONFIG_UBSAN_SANITIZE_ALL is not set
`;

/**
 * busybox-static is needed on every host: cross guests take the same Debian busybox release
 * for their own arch (busybox.ts pins it to the host package's source version).
 */
const BUILD_PACKAGES = ['linux-source-6.1', 'busybox-static', 'build-essential', 'flex', 'bison', 'bc', 'libelf-dev', 'libssl-dev', 'xz-utils'];


export const RECIPES: Record<string, GuestRecipe> = {
  x86_64: {
    arch: 'x86_64',
    kernelArch: 'x86',
    image: 'arch/x86/boot/bzImage',
    makeTarget: 'bzImage',
    fragment:
      COMMON_FRAGMENT +
      `CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_UNWINDER_FRAME_POINTER=y
CONFIG_X86_MPPARSE=y
CONFIG_RELOCATABLE=y
CONFIG_RANDOMIZE_BASE=y
CONFIG_RANDOMIZE_MEMORY=y
CONFIG_CPU_MITIGATIONS=y
CONFIG_PAGE_TABLE_ISOLATION=y
# CONFIG_RETPOLINE is not set
# CONFIG_CPU_UNRET_ENTRY is not set
# CONFIG_CPU_IBPB_ENTRY is not set
# CONFIG_CPU_IBRS_ENTRY is not set
# CONFIG_CPU_SRSO is not set
# CONFIG_SLS is not set
`,
    packages: [...BUILD_PACKAGES, 'qemu-system-x86'],
  },
  aarch64: {
    arch: 'aarch64',
    kernelArch: 'arm64',
    image: 'arch/arm64/boot/Image',
    makeTarget: 'Image',
    crossCompile: 'aarch64-linux-gnu-',
    // arm64 always keeps frame records (the arch selects FRAME_POINTER). QEMU's virt machine
    // has a PL011 UART (ttyAMA0) and a generic ECAM PCI host for the virtio-pci devices.
    // No pointer authentication or BTI: a57 has neither, and signed return addresses in
    // frame records would only make the unwinder strip bits for nothing.
    fragment:
      COMMON_FRAGMENT +
      `CONFIG_ARM_AMBA=y
CONFIG_SERIAL_AMBA_PL011=y
CONFIG_SERIAL_AMBA_PL011_CONSOLE=y
CONFIG_PCI_HOST_GENERIC=y
# CONFIG_ARM64_PTR_AUTH is not set
# CONFIG_ARM64_BTI is not set
CONFIG_RANDOMIZE_BASE=y
CONFIG_UNMAP_KERNEL_AT_EL0=y
`,
    packages: [...BUILD_PACKAGES, 'gcc-aarch64-linux-gnu', 'qemu-system-arm'],
    busybox: { kind: 'deb', debArch: 'arm64' },
  },
  riscv64: {
    arch: 'riscv64',
    kernelArch: 'riscv',
    image: 'arch/riscv/boot/Image',
    makeTarget: 'Image',
    crossCompile: 'riscv64-linux-gnu-',
    // 6.1 calls QEMU's virt board SOC_VIRT (ARCH_VIRT from 6.2); it selects the PLIC and the
    // syscon power-off. The console is virt's ns16550a, found through the device tree.
    // riscv 6.1 has no KASLR. The kernel runs in S-mode above OpenSBI, which QEMU loads by
    // default (-bios default) from qemu-system-data; qemu-system-misc depends on it already.
    // FPU: Debian's userspace is rv64gc with hard float, and tinyconfig turns the FPU off.
    // EFI stays on: 6.1 selects it for every kernel not marked NONPORTABLE, and it is harmless
    // when QEMU loads the Image directly.
    fragment:
      COMMON_FRAGMENT +
      `CONFIG_MMU=y
CONFIG_SOC_VIRT=y
CONFIG_RISCV_SBI=y
CONFIG_FPU=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_SERIAL_OF_PLATFORM=y
CONFIG_PCI_HOST_GENERIC=y
`,
    // libc6-dev-riscv64-cross: busybox is linked statically against it (only a Recommends of gcc).
    packages: [...BUILD_PACKAGES, 'gcc-riscv64-linux-gnu', 'libc6-dev-riscv64-cross', 'qemu-system-misc', 'qemu-system-data'],
    // bookworm has no riscv64 port, so there is no busybox-static:riscv64 to download.
    busybox: { kind: 'source', debArch: 'riscv64' },
  },
};

/** The `CONFIG_X=y` lines of a fragment: what the final .config must contain. */
export function requiredOptions(fragment: string): string[] {
  return fragment
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^CONFIG_\w+=y$/.test(l));
}

/**
 * The options a fragment turns off (`# CONFIG_X is not set`): the final .config must not have
 * them, so an option something else selects (riscv's PORTABLE selects EFI) fails the build
 * instead of quietly staying on (the x86 mitigations that would change code generation).
 */
export function disabledOptions(fragment: string): string[] {
  return fragment
    .split('\n')
    .map((l) => /^# (CONFIG_\w+) is not set$/.exec(l.trim())?.[1])
    .filter((o): o is string => o !== undefined);
}
