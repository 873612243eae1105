/** The sample guest's userspace: static busybox and an init that brings up a shell on the console. */
import { CpioEntry, writeCpio } from './cpio';

/** Printed by init once the shell is about to start; tests and tools wait for it. */
export const READY_LINE = 'qkd-guest: ready';

/** The kernel command-line parameter init reads: `qkd.load=mod1,mod2` loads those modules before the ready line. */
export const LOAD_PARAM = 'qkd.load';

/** What every init starts with: the filesystems a shell and a debugger's user expect. */
export const INIT_SETUP = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
`;

/** What every init ends with: the ready line, then a shell that comes back. */
export const INIT_SHELL = `echo "${READY_LINE} (kernel $(uname -r))"
# Respawn the shell so that 'exit' does not panic the kernel (init must never end).
while true; do
  setsid cttyhack sh
done
`;

/**
 * The kernel keeps a dotted parameter such as qkd.load= out of init's arguments and
 * environment (it is taken for a module's), so init reads it from /proc/cmdline.
 * The daemons give a task list more than init and the shell; each sleeps until something
 * talks to it (nothing does), so none wakes up on its own and trips a breakpoint.
 */
export const INIT_SCRIPT = `${INIT_SETUP}for arg in $(cat /proc/cmdline); do
  case "$arg" in
    ${LOAD_PARAM}=*)
      for m in $(echo "\${arg#${LOAD_PARAM}=}" | tr , ' '); do
        modprobe "$m" || echo "qkd-guest: cannot load module $m"
      done ;;
  esac
done
mkdir -p /var/log /var/www
syslogd >/dev/null 2>&1
httpd -p 8080 -h /var/www >/dev/null 2>&1
sleep 1000000000 </dev/null >/dev/null 2>&1 &
${INIT_SHELL}`;

/** The initramfs: busybox, init, and `extra` entries (the modules stage adds /lib/modules). */
export function buildInitramfs(busybox: Buffer, extra: CpioEntry[] = []): Buffer {
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
    ...extra,
  ];
  return writeCpio(entries);
}
