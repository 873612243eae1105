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
}

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
`;

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
# CONFIG_RANDOMIZE_BASE is not set
`,
    packages: [...BUILD_PACKAGES, 'qemu-system-x86'],
  },
};

/** The `CONFIG_X=y` lines of a fragment: what the final .config must contain. */
export function requiredOptions(fragment: string): string[] {
  return fragment
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^CONFIG_\w+=y$/.test(l));
}
