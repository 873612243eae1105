/** accel "auto": a real probe guest decides between KVM and TCG, quickly, and says why. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getArch } from '../../src/arch';
import { findExecutable } from '../../src/qemu/config';
import { decideAccel, probe } from '../../src/qemu/kvmprobe';
import { requireOrSkip } from '../support/env';

describe('accelerator choice', function () {
  this.timeout(30_000);
  const x86 = getArch('x86_64');
  let qemu: string;
  let cache: string;
  let savedCache: string | undefined;

  before(function () {
    const found = findExecutable('qemu-system-x86_64');
    requireOrSkip(this, found !== undefined, 'qemu-system-x86_64 is not installed');
    qemu = found as string;
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-accel-'));
    savedCache = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = cache;
  });
  after(() => {
    if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedCache;
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it('the probe image really runs and exits QEMU under TCG', async () => {
    assert.equal(await probe(qemu, x86, 'tcg'), true);
  });

  it('auto agrees with what the KVM probe finds, and says why', async () => {
    const kvmWorks = fs.existsSync('/dev/kvm') && (await probe(qemu, x86, 'kvm'));
    const d = await decideAccel('auto', qemu, x86);
    assert.equal(d.accel, kvmWorks ? 'kvm' : 'tcg');
    assert.match(d.reason, kvmWorks ? /KVM ran a probe guest/ : /falling back to TCG|missing or not accessible/);
  });

  it('remembers the answer for this host boot', async () => {
    const d = await decideAccel('auto', qemu, x86);
    assert.match(d.reason, /cached for this boot/);
    assert.ok(fs.existsSync(path.join(cache, 'qemu-kernel-debug', 'kvm-probe.json')));
  });

  it('never probes when the user chose', async () => {
    assert.deepEqual(await decideAccel('tcg', qemu, x86), { accel: 'tcg', reason: 'accel is "tcg"' });
    assert.deepEqual(await decideAccel('kvm', qemu, x86), { accel: 'kvm', reason: 'accel is "kvm"' });
  });
});
