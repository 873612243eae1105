/**
 * accel "auto" decides on evidence: the tiny probe rules KVM out, a trial boot of the real
 * kernel rules it in, and a launch that falls back says so. Explicit "kvm" that does not
 * boot ends with the watchdog's message instead of a silent wait.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getArch } from '../../src/arch';
import { multibootImage } from '../../src/arch/x86_64';
import { findExecutable } from '../../src/qemu/config';
import { kvmBootTrial } from '../../src/qemu/boottrial';
import { decideAccel, probe } from '../../src/qemu/kvmprobe';
import { resolveLaunchConfig } from '../../src/qemu/config';
import { requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { TestSession } from '../support/session';

/**
 * A QEMU whose "KVM" runs the tiny probe (passed through under TCG) but never boots a kernel:
 * a launch with -append gets a multiboot image that spins at 1 MiB instead, with no console
 * output and the PC far below the kernel. That is what nested KVM looks like on hosts where
 * it crawls in the decompressor, made real on any host.
 */
function stallingKvmQemu(dir: string, realQemu: string): string {
  const spin = multibootImage([0xeb, 0xfe]); // jmp $
  fs.writeFileSync(path.join(dir, 'spin.bin'), spin);
  const script = path.join(dir, 'qemu-kvm-stalls');
  fs.writeFileSync(
    script,
    `#!/bin/bash
kvm=0; linux=0; out=()
while [ $# -gt 0 ]; do
  case "$1" in
    -accel) if [ "$2" = kvm ]; then kvm=1; fi; out+=(-accel tcg); shift 2; continue;;
    -append) linux=1;;
    -cpu) if [ "$2" = host ]; then shift 2; continue; fi;;
  esac
  out+=("$1"); shift
done
if [ $kvm = 1 ] && [ $linux = 1 ]; then
  set -- "\${out[@]}"; out=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -kernel) out+=(-kernel ${dir}/spin.bin); shift 2; continue;;
      -initrd|-append) shift 2; continue;;
    esac
    out+=("$1"); shift
  done
fi
exec ${realQemu} "\${out[@]}"
`,
    { mode: 0o755 },
  );
  return script;
}

describe('accelerator choice', function () {
  this.timeout(120_000);
  const x86 = getArch('x86_64');
  let qemu: string;
  let cache: string;
  let dir: string;
  let savedCache: string | undefined;

  before(function () {
    const found = findExecutable('qemu-system-x86_64');
    requireOrSkip(this, found !== undefined, 'qemu-system-x86_64 is not installed');
    qemu = found as string;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-accel-'));
    cache = path.join(dir, 'cache');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The accelerator's answers go to a cache of the test's own; the sample guest stays where it was built.
  beforeEach(function () {
    savedCache = process.env.XDG_CACHE_HOME;
    if (!/sample kernel|falls back|never starts|does not boot ends/.test(this.currentTest?.title ?? '')) process.env.XDG_CACHE_HOME = cache;
  });
  afterEach(() => {
    if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedCache;
  });

  it('the probe image really runs and exits QEMU under TCG', async () => {
    assert.equal(await probe(qemu, x86, 'tcg'), true);
  });

  it('auto without a trial agrees with the tiny probe, and says why', async () => {
    const kvmWorks = fs.existsSync('/dev/kvm') && (await probe(qemu, x86, 'kvm'));
    const d = await decideAccel('auto', qemu, x86);
    assert.equal(d.accel, kvmWorks ? 'kvm' : 'tcg');
    assert.match(d.reason, kvmWorks ? /KVM ran a probe guest/ : /falling back to TCG|missing or not accessible/);
  });

  it('never probes when the user chose', async () => {
    assert.deepEqual(await decideAccel('tcg', qemu, x86), { accel: 'tcg', reason: 'accel is "tcg"', evidence: 'choice' });
    assert.deepEqual(await decideAccel('kvm', qemu, x86), { accel: 'kvm', reason: 'accel is "kvm"', evidence: 'choice' });
  });

  it('auto on this host decides on evidence: the tiny probe rules KVM out, or a trial boot of the sample kernel decides; the answer is cached', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    const cfg = resolveLaunchConfig({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, consoleLog: path.join(dir, 'unused.log') });
    process.env.XDG_CACHE_HOME = cache;
    // The cache holds the tiny probe's answer from an earlier test: only a trial may overrule it.
    let trials = 0;
    const trial = (): ReturnType<typeof kvmBootTrial> => {
      trials++;
      return kvmBootTrial(cfg);
    };
    const d = await decideAccel('auto', qemu, x86, trial);
    if (!fs.existsSync('/dev/kvm')) {
      assert.equal(d.accel, 'tcg');
      assert.match(d.reason, /missing or not accessible/);
      return;
    }
    if (trials === 0) {
      // The tiny probe did not run in 2 s (now or in the earlier test, cached): no kernel would, and no trial is needed.
      assert.equal(d.accel, 'tcg');
      assert.equal(d.evidence, 'probe');
      assert.match(d.reason, /a probe guest did not run under KVM within 2000 ms; falling back to TCG/);
    } else {
      assert.equal(trials, 1);
      assert.equal(d.evidence, 'boot');
      if (d.accel === 'tcg') assert.match(d.reason, /did not boot this kernel: after \d+\.\d s under KVM, .*PC 0x[0-9a-f]+.*falling back to TCG/);
      else assert.match(d.reason, /booted under KVM/);
      assert.equal(fs.existsSync(cfg.consoleLog), false, 'the trial boot writes to a console log of its own');
    }
    const before = trials;
    const again = await decideAccel('auto', qemu, x86, trial);
    assert.equal(again.accel, d.accel);
    if (d.evidence === 'boot') {
      assert.equal(trials, before, 'a trial\'s answer is reused for this host boot');
      assert.match(again.reason, /cached for this boot/);
    }
  });

  it('auto falls back to TCG, says why, and still stops at kernel_clone, when KVM runs the probe but not Linux', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    requireOrSkip(this, fs.existsSync('/dev/kvm'), 'this host has no /dev/kvm: auto never tries KVM');
    const wrapper = stallingKvmQemu(dir, qemu);
    const s = new TestSession(this, { XDG_CACHE_HOME: cache });
    try {
      await s.start();
      const { stop } = await s.launchToBreak(s.launchArgs({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, qemuPath: wrapper, accel: 'auto' }), ['kernel_clone']);
      assert.equal(stop.body.reason, 'breakpoint');
      assert.equal((await s.topFrame(stop.body.threadId as number)).name, 'kernel_clone');
      const said = s.output.join('');
      assert.match(said, /Accelerator: KVM runs a tiny probe here but did not boot this kernel: after \d+\.\d s under KVM, no console output, PC 0x10002[0-9a-f] \(still in firmware or the kernel decompressor/);
      assert.match(said, /falling back to TCG/);
      assert.match(said, /QEMU: .*-accel tcg/);
    } finally {
      await s.stop();
    }
  });

  it('under TCG, a kernel image that never starts ends the launch with the evidence and names the kernel field', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    stallingKvmQemu(dir, qemu);
    const s = new TestSession(this, { QKD_TCG_STALL_MS: '3000' });
    try {
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      // A multiboot image that spins at 1 MiB: QEMU boots it, the kernel never runs.
      await s.dc.launchRequest(s.launchArgs({ kernel: path.join(dir, 'spin.bin'), vmlinux: g.vmlinux, accel: 'tcg' }));
      await initialized;
      await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] });
      const terminated = s.dc.waitForEvent('terminated', 30_000);
      await s.dc.configurationDoneRequest();
      await terminated;
      const said = s.output.join('');
      assert.match(said, /The guest made no progress in 3 s under TCG: no console output, PC 0x10002[0-9a-f]/);
      assert.match(said, /launch config field 'kernel' is a bootable image for 'arch'/);
    } finally {
      await s.stop();
    }
  });

  it('accel "kvm" that does not boot ends with the watchdog\'s message: the evidence, the console tail and the accel field', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    requireOrSkip(this, fs.existsSync('/dev/kvm'), 'this host has no /dev/kvm: QEMU would refuse -accel kvm at once');
    const wrapper = stallingKvmQemu(dir, qemu);
    const s = new TestSession(this, { XDG_CACHE_HOME: cache, QKD_KVM_STALL_MS: '3000' });
    try {
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      await s.dc.launchRequest(s.launchArgs({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, qemuPath: wrapper, accel: 'kvm' }));
      await initialized;
      await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] });
      const terminated = s.dc.waitForEvent('terminated', 30_000);
      const t0 = Date.now();
      await s.dc.configurationDoneRequest();
      await terminated;
      assert.ok(Date.now() - t0 < 20_000);
      const said = s.output.join('');
      assert.match(said, /The guest made no progress in 3 s under KVM: no console output, PC 0x10002[0-9a-f]/);
      assert.match(said, /launch config field 'accel' to "tcg"/);
      assert.match(said, /The guest wrote nothing to its console\./);
    } finally {
      await s.stop();
    }
  });
});
