/**
 * From "continue" to the first stop, a launch shows what the guest is doing (the console's
 * last line) instead of a silent spinner, and under KVM a boot that gets nowhere ends with
 * the evidence rather than a wait that never ends.
 */
import type { ArchInfo } from '../arch';
import { BootWatch, describeEvidence, quoteTail, type BootEvidence } from '../qemu/bootwatch';
import type { QemuInstance } from '../qemu/instance';
import { recordKvmStall, type AccelDecision } from '../qemu/kvmprobe';

/** Under real KVM the kernel prints within a second; 15 s of nothing is a host that can't run it. */
export const KVM_STALL_MS = 15_000;
/**
 * Under TCG a kernel reaches its own code within seconds (the sample guest in under one); a
 * minute with the PC still in firmware and nothing printed is an image that does not boot.
 */
export const TCG_STALL_MS = 60_000;

/** The bound for an accelerator; tests of the watchdog shorten it (QKD_KVM_STALL_MS, QKD_TCG_STALL_MS) rather than wait. */
export function stallBound(accel: 'kvm' | 'tcg'): number {
  const v = Number(process.env[accel === 'kvm' ? 'QKD_KVM_STALL_MS' : 'QKD_TCG_STALL_MS']);
  return Number.isFinite(v) && v > 0 ? v : accel === 'kvm' ? KVM_STALL_MS : TCG_STALL_MS;
}
const TICK_MS = 500;
const MAX_LINE = 100;

export interface BootProgressHooks {
  progress(message: string): void;
  /** The guest made no progress: the message says why and what to change. */
  stalled(message: string): void;
}

export class BootProgress {
  private timer?: NodeJS.Timeout;
  private readonly watch: BootWatch;
  private readonly t0 = Date.now();
  private shown?: string;
  private busy = false;

  constructor(
    inst: QemuInstance,
    private readonly arch: ArchInfo,
    private readonly accel: AccelDecision,
    private readonly qemuPath: string,
    private readonly hooks: BootProgressHooks,
    private readonly stallMs = stallBound(accel.accel),
  ) {
    this.watch = new BootWatch(inst.consoleLog, inst.consoleLogStart, inst.qmp, arch);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.busy || !this.timer) return;
    this.busy = true;
    try {
      // A monitor round trip per tick, only until the kernel is seen running.
      if (!this.watch.progressed()) await this.watch.samplePc();
      if (!this.timer) return;
      const e = this.watch.evidence();
      const line = e.lastLine ? e.lastLine.slice(0, MAX_LINE) : undefined;
      const text = line ? `Booting the kernel: ${line}` : `Booting the kernel (${Math.round((Date.now() - this.t0) / 1000)} s, no console output yet)`;
      if (text !== this.shown) {
        this.shown = text;
        this.hooks.progress(text);
      }
      if (!e.reachedKernel && e.consoleBytes === 0 && Date.now() - this.t0 >= this.stallMs) {
        this.stop();
        this.hooks.stalled(this.stallMessage(e));
      }
    } finally {
      this.busy = false;
    }
  }

  private stallMessage(e: BootEvidence): string {
    const detail = describeEvidence(e, this.arch);
    const secs = Math.round(this.stallMs / 1000);
    if (this.accel.accel === 'kvm') {
      if (this.accel.evidence !== 'choice') recordKvmStall(this.qemuPath, this.arch, detail);
      return (
        `The guest made no progress in ${secs} s under KVM: ${detail}. ` +
        `This host's KVM does not seem to run Linux (nested virtualization often crawls in the decompressor). ` +
        `Set the launch config field 'accel' to "tcg" (software emulation) or "auto" (checks KVM with a trial boot and falls back to TCG); "kvm" insists on KVM. ${quoteTail(e)}`
      );
    }
    return (
      `The guest made no progress in ${secs} s under TCG: ${detail}. ` +
      `The kernel never started: check that the launch config field 'kernel' is a bootable image for 'arch' (${this.arch.name}: ${this.arch.bootImage}), ` +
      `and that 'append' does not send the console elsewhere. ${quoteTail(e)}`
    );
  }
}
