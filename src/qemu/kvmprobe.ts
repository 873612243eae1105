/**
 * Does KVM really run a kernel here? /dev/kvm can exist, and run a tiny multiboot image
 * that exits QEMU through isa-debug-exit, while Linux crawls in its decompressor (nested
 * virtualization gone wrong). So the tiny probe only rules KVM out; a trial boot of the real
 * kernel rules it in. The answer is cached per host boot.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArchInfo } from '../arch';
import { guardedArgv } from './ownership';

export interface AccelDecision {
  accel: 'kvm' | 'tcg';
  reason: string;
  /**
   * What the answer rests on: a Linux boot under KVM (`boot`), the boot watchdog of an
   * earlier session (`watchdog`), or only the tiny probe (`probe`, which a host whose nested
   * KVM crawls through a kernel's decompressor passes all the same).
   */
  evidence?: 'boot' | 'watchdog' | 'probe' | 'choice';
  /** Set when auto wanted KVM and fell back: the Debug Console and the CLI say so. */
  fellBack?: boolean;
}

export const KVM_PROBE_TIMEOUT_MS = 2000;

/** What a trial boot of the real kernel under KVM showed (see boottrial.ts). */
export interface TrialOutcome {
  booted: boolean;
  /** One sentence of evidence: console bytes, the PC and where it was. */
  detail: string;
  ms: number;
}

function cacheFile(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'qemu-kernel-debug', 'kvm-probe.json');
}

function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function cacheKey(qemuPath: string, arch: ArchInfo): string {
  return `${bootId()}:${qemuPath}:${arch.name}`;
}

/**
 * `auto`: KVM only where it really boots Linux. The tiny probe rules out a KVM that runs
 * nothing at all in 2 s; then the kernel being launched boots under KVM for a few seconds
 * (`trial`) and must reach its own code or print. The answer is cached for the host boot;
 * an entry that rests only on the tiny probe (what earlier versions cached) is not trusted.
 */
export async function decideAccel(requested: 'auto' | 'kvm' | 'tcg', qemuPath: string, arch: ArchInfo, trial?: () => Promise<TrialOutcome>): Promise<AccelDecision> {
  if (requested === 'tcg') return { accel: 'tcg', reason: 'accel is "tcg"', evidence: 'choice' };
  if (requested === 'kvm') return { accel: 'kvm', reason: 'accel is "kvm"', evidence: 'choice' };
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: '/dev/kvm is missing or not accessible; using TCG (software emulation)' };
  }
  if (!arch.kvmProbe) return { accel: 'tcg', reason: `no KVM probe for ${arch.name}; using TCG` };
  const key = cacheKey(qemuPath, arch);
  const cached = readCache()[key];
  // TCG always works, so any cached 'no' stands; a 'yes' from the tiny probe alone is checked again with a trial.
  if (cached && (cached.accel === 'tcg' || cached.evidence === 'boot' || !trial)) {
    return { ...cached, reason: `${cached.reason} (cached for this boot)` };
  }
  let decision: AccelDecision;
  if (!(await probe(qemuPath, arch))) {
    decision = {
      accel: 'tcg',
      reason: `/dev/kvm exists but a probe guest did not run under KVM within ${KVM_PROBE_TIMEOUT_MS} ms; falling back to TCG (software emulation)`,
      evidence: 'probe',
      fellBack: true,
    };
  } else if (!trial) {
    decision = { accel: 'kvm', reason: 'KVM ran a probe guest; using KVM', evidence: 'probe' };
  } else {
    const t = await trial();
    decision = t.booted
      ? { accel: 'kvm', reason: `the kernel booted under KVM in a ${t.ms} ms trial (${t.detail}); using KVM`, evidence: 'boot' }
      : {
          accel: 'tcg',
          reason: `KVM runs a tiny probe here but did not boot this kernel: after ${(t.ms / 1000).toFixed(1)} s under KVM, ${t.detail} (nested virtualization often does this); falling back to TCG (software emulation). Set "accel": "tcg" to skip this check, or "kvm" to insist`,
          evidence: 'boot',
          fellBack: true,
        };
  }
  writeCache({ ...readCache(), [key]: decision });
  return decision;
}

/** A session's boot watchdog found KVM making no progress: remember TCG for this host boot. */
export function recordKvmStall(qemuPath: string, arch: ArchInfo, detail: string): void {
  const reason = `an earlier session under KVM made no progress (${detail}); using TCG`;
  writeCache({ ...readCache(), [cacheKey(qemuPath, arch)]: { accel: 'tcg', reason, evidence: 'watchdog', fellBack: true } });
}

function readCache(): Record<string, AccelDecision> {
  try {
    return JSON.parse(fs.readFileSync(cacheFile(), 'utf8')) as Record<string, AccelDecision>;
  } catch {
    return {};
  }
}

function writeCache(data: Record<string, AccelDecision>): void {
  // Answers from earlier host boots, or for QEMU binaries that are gone, can never be used again.
  const boot = bootId();
  for (const key of Object.keys(data)) {
    const [id, ...rest] = key.split(':');
    const qemu = rest.slice(0, -1).join(':');
    if (id !== boot || (path.isAbsolute(qemu) && !fs.existsSync(qemu))) delete data[key];
  }
  try {
    fs.mkdirSync(path.dirname(cacheFile()), { recursive: true });
    fs.writeFileSync(cacheFile(), JSON.stringify(data, null, 2));
  } catch {
    // A cache we cannot write only costs a probe next time.
  }
}

/** Run the probe image under the given accelerator; true when it reached its exit port. */
export async function probe(qemuPath: string, arch: ArchInfo, accel: 'kvm' | 'tcg' = 'kvm'): Promise<boolean> {
  const p = arch.kvmProbe;
  if (!p) return false;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-probe-'));
  const image = path.join(dir, 'probe.bin');
  fs.writeFileSync(image, p.image);
  try {
    const child = spawn(
      'setpriv',
      // Guarded as every QEMU of ours is (ownership.ts): a probe must not outlive an adapter killed as it starts.
      guardedArgv([qemuPath, '-nodefaults', '-no-user-config', '-display', 'none', ...arch.machineArgs, '-accel', accel, '-m', '32M', '-kernel', image, ...p.args]),
      { stdio: 'ignore' },
    );
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(false);
      }, KVM_PROBE_TIMEOUT_MS);
      child.on('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code === p.successExitCode);
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
