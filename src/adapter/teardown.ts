/**
 * One teardown for every way a session ends: disconnect, terminate, an in-process adapter
 * disposed without a disconnect, and QEMU ending on its own or being killed. Each path used
 * to release its own subset (terminate closed neither the index nor the ELF); now each calls
 * `run`, which releases everything once: QEMU (when we own it), the gdbstub connection, the
 * symbol index worker, the vmlinux file and QEMU's private socket directory.
 *
 * A launch hands its parts over as they come (`adoptInstance`, `adoptBackend`), so an end
 * that arrives while QEMU is still starting takes QEMU with it, and a backend finished after
 * the end is released on arrival.
 */
import * as fs from 'node:fs';
import type { QemuInstance } from '../qemu/instance';
import type { Backend } from './backend';

/**
 * What becomes of a QEMU we own: asked to quit through QMP (killed after a grace period),
 * killed at once (nothing async may be waited for), or left running (disconnect with
 * terminateDebuggee false, which detaches).
 */
export type QemuEnd = 'quit' | 'kill' | 'leave';

/** A detach waits for the stub; a stub that no longer answers must not hold the end up. */
export const DETACH_MS = 2000;

export class Teardown {
  private instance?: QemuInstance;
  private backend?: Backend;
  private how?: QemuEnd;
  private done?: Promise<void>;

  /** QEMU the moment it is up, before the launch completes. */
  adoptInstance(instance: QemuInstance): void {
    this.instance = instance;
    // The session ended while QEMU was starting: it has nobody left to debug it.
    if (this.done) instance.killNow();
  }

  /** The finished backend; false (and released here) when the session ended before it came. */
  adoptBackend(b: Backend): boolean {
    if (this.done) {
      b.instance?.killNow();
      void release(b, b.instance);
      return false;
    }
    this.backend = b;
    this.instance = b.instance ?? this.instance;
    return true;
  }

  /**
   * End everything, once. The first call decides what becomes of QEMU, except that a later
   * 'kill' (the adapter disposed) cuts a 'quit' short. A kill happens before this returns.
   */
  run(how: QemuEnd): Promise<void> {
    if (how === 'kill' && this.how === 'quit') this.instance?.killNow();
    this.how ??= how;
    this.done ??= this.close(how);
    return this.done;
  }

  private async close(how: QemuEnd): Promise<void> {
    const inst = this.instance;
    const b = this.backend;
    if (inst && how === 'kill') inst.killNow();
    try {
      if (inst && how !== 'leave') await inst.stop();
      else if (b) await within(b.debugger.detach(), DETACH_MS);
    } catch {
      // What follows must be released all the same.
    }
    await release(b, inst);
  }
}

/** The connection, the index worker, the ELF and, once QEMU is gone, its socket directory. */
async function release(b: Backend | undefined, inst: QemuInstance | undefined): Promise<void> {
  if (b) {
    b.debugger.target.close();
    await b.source?.index?.close().catch(() => undefined);
    try {
      b.elf?.close();
    } catch {
      // Closed already.
    }
  }
  if (inst && !inst.isRunning) fs.rmSync(inst.paths.runDir, { recursive: true, force: true });
}

function within(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    p.catch(() => undefined).finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
