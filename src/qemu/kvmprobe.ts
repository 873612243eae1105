/**
 * Does KVM really run a guest here? /dev/kvm can exist while guests hang (nested
 * virtualization gone wrong), so the only honest test is to run one: a tiny multiboot image
 * that exits QEMU through isa-debug-exit. The answer is cached per host boot.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArchInfo } from '../arch';

export interface AccelDecision {
  accel: 'kvm' | 'tcg';
  reason: string;
}

export const KVM_PROBE_TIMEOUT_MS = 2000;

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

export async function decideAccel(requested: 'auto' | 'kvm' | 'tcg', qemuPath: string, arch: ArchInfo): Promise<AccelDecision> {
  if (requested === 'tcg') return { accel: 'tcg', reason: 'accel is "tcg"' };
  if (requested === 'kvm') return { accel: 'kvm', reason: 'accel is "kvm"' };
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: '/dev/kvm is missing or not accessible; using TCG (software emulation)' };
  }
  if (!arch.kvmProbe) return { accel: 'tcg', reason: `no KVM probe for ${arch.name}; using TCG` };
  const key = `${bootId()}:${qemuPath}:${arch.name}`;
  const cached = readCache()[key];
  if (cached) return { ...cached, reason: `${cached.reason} (cached for this boot)` };
  const works = await probe(qemuPath, arch);
  const decision: AccelDecision = works
    ? { accel: 'kvm', reason: 'KVM ran a probe guest; using KVM' }
    : { accel: 'tcg', reason: `/dev/kvm exists but a probe guest did not run under KVM within ${KVM_PROBE_TIMEOUT_MS} ms; falling back to TCG (software emulation)` };
  writeCache({ ...readCache(), [key]: decision });
  return decision;
}

function readCache(): Record<string, AccelDecision> {
  try {
    return JSON.parse(fs.readFileSync(cacheFile(), 'utf8')) as Record<string, AccelDecision>;
  } catch {
    return {};
  }
}

function writeCache(data: Record<string, AccelDecision>): void {
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
      ['--pdeathsig', 'SIGKILL', '--', qemuPath, '-nodefaults', '-no-user-config', '-display', 'none', ...arch.machineArgs, '-accel', accel, '-m', '32M', '-kernel', image, ...p.args],
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
