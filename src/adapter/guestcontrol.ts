/**
 * The adapter's custom requests that act on the QEMU a launch session owns: restarting the
 * guest and reporting QEMU's command line. An attach session owns no QEMU and is refused.
 */
import { shellQuote } from '../qemu/argv';
import { QemuInstance } from '../qemu/instance';
import { errors } from '../util/errors';
import type { Backend } from './backend';
import type { CommandLineResponseBody, RestartGuestResponseBody } from './events';

function ownQemu(b: Backend | undefined, what: string, needRunning = true): QemuInstance {
  if (!b) throw errors.unsupported(`Cannot ${what}: the session has not started yet.`);
  if (!b.instance) {
    throw errors.unsupported(
      `Cannot ${what}: this session attached to a gdbstub and owns no QEMU. Use the monitor of the QEMU you started (e.g. 'system_reset'), or launch the kernel with a "launch" configuration.`,
    );
  }
  if (needRunning && (!b.instance.isRunning || b.debugger.isExited)) throw errors.qemuExited(`cannot ${what}: the guest is gone`);
  return b.instance;
}

/**
 * Reset the guest through QMP. Breakpoints stay: QEMU keeps gdbstub breakpoints and
 * watchpoints across a system reset. A guest stopped in the debugger is continued, since a
 * reboot that waits on a stale stop would look like a hang.
 */
export async function restartGuest(b: Backend | undefined): Promise<RestartGuestResponseBody> {
  const qemu = ownQemu(b, 'restart the guest');
  const dbg = (b as Backend).debugger;
  const wasStopped = !dbg.isRunning;
  await dbg.rebooting();
  await qemu.resetGuest();
  if (!wasStopped) return { continued: false };
  // The registers and memory read at the old stop describe a machine that no longer exists.
  dbg.forgetStop();
  await dbg.continue();
  return { continued: true };
}

export function commandLine(b: Backend | undefined): CommandLineResponseBody {
  const qemu = ownQemu(b, 'show the QEMU command line', false);
  return { argv: [...qemu.argv], commandLine: shellQuote(qemu.argv), pid: qemu.pid };
}
