/**
 * A trial boot of the kernel being launched, under KVM, with no debugger: the only evidence
 * that holds for a real boot is a real boot. It runs from a private console log so the
 * user's log only ever holds the session's own boot.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BootWatch, describeEvidence } from './bootwatch';
import type { ResolvedLaunch } from './config';
import { QemuInstance, makeRunDir } from './instance';
import type { TrialOutcome } from './kvmprobe';

/**
 * Real KVM reaches the kernel proper in well under a second (firmware, the -kernel loader,
 * the decompressor); a nested KVM that crawls is still decompressing after minutes.
 */
export const BOOT_TRIAL_MS = 4000;
const SAMPLE_MS = 150;

export async function kvmBootTrial(cfg: ResolvedLaunch, boundMs = BOOT_TRIAL_MS): Promise<TrialOutcome> {
  const dir = makeRunDir();
  const log = path.join(dir, 'trial-console.log');
  const t0 = Date.now();
  let inst: QemuInstance | undefined;
  try {
    inst = await QemuInstance.start({ ...cfg, consoleLog: log, rspLog: undefined }, 'kvm');
    const watch = new BootWatch(log, 0, inst.qmp, cfg.arch);
    await inst.qmp.execute('cont');
    const started = Date.now();
    while (Date.now() - started < boundMs && inst.isRunning) {
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
      await watch.samplePc();
      if (watch.progressed()) {
        return { booted: true, detail: describeEvidence(watch.evidence(), cfg.arch), ms: Date.now() - t0 };
      }
    }
    const e = watch.evidence();
    if (!inst.isRunning) return { booted: false, detail: `QEMU exited during the trial${inst.recentStderr ? `: ${inst.recentStderr}` : ''}`, ms: Date.now() - t0 };
    return { booted: false, detail: describeEvidence(e, cfg.arch), ms: Date.now() - t0 };
  } catch (e) {
    // QEMU refusing -accel kvm at start is as clear an answer as a guest that never boots.
    return { booted: false, detail: `QEMU could not start under KVM: ${e instanceof Error ? e.message : String(e)}`, ms: Date.now() - t0 };
  } finally {
    if (inst) {
      inst.killNow();
      await inst.exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
