/** The sample guest's userspace: static busybox and an init that brings up a shell on the console. */
import { CpioEntry, writeCpio } from './cpio';

/** Printed by init once the shell is about to start; tests and tools wait for it. */
export const READY_LINE = 'qkd-guest: ready';

export const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo "${READY_LINE} (kernel $(uname -r))"
# Respawn the shell so that 'exit' does not panic the kernel (init must never end).
while true; do
  setsid cttyhack sh
done
`;

export function buildInitramfs(busybox: Buffer): Buffer {
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'bin' },
    { kind: 'dir', path: 'sbin' },
    { kind: 'dir', path: 'dev' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'dir', path: 'proc' },
    { kind: 'dir', path: 'sys' },
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
    { kind: 'dir', path: 'root', mode: 0o700 },
    { kind: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', data: Buffer.from(INIT_SCRIPT), mode: 0o755 },
  ];
  return writeCpio(entries);
}
