/**
 * Guest RAM read straight from QEMU's memfd (qemu/guestram.ts, engine/ramview.ts) against the
 * gdbstub's own reads at the same stop, on each arch's sample guest booted to its shell and
 * stopped by the gdbstub connection: vmlinux's variables and code, every pointer init_task
 * holds (the direct map, vmalloc'd stacks, per-CPU areas), the stopped vCPU's stack and PC,
 * and guest-physical pages. Each must give the gdbstub's bytes, or fail where it fails; and
 * the RAM path must really have served them.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { resolveLaunchConfig } from '../../src/config';
import { KernelTarget } from '../../src/engine/target';
import { READY_LINE } from '../../src/guest/initramfs';
import { waitForConsole } from '../../src/qemu/console';
import { QemuInstance } from '../../src/qemu/instance';
import * as P from '../../src/rsp/packets';
import { artifact, requireBuilt, sampleGuest } from '../support/env';

const ARCHES = ['x86_64', 'aarch64', 'riscv64'];

/** A sample of vmlinux's data and text symbols (link addresses: the guest boots with nokaslr). */
function symbols(vmlinux: string, every: number): bigint[] {
  const out: bigint[] = [];
  const lines = execFileSync('nm', [vmlinux], { encoding: 'utf8', maxBuffer: 256 << 20 }).split('\n');
  lines.forEach((l, i) => {
    const m = /^([0-9a-f]{16}) [DdBbRrTt] /.exec(l);
    if (m && i % every === 0) out.push(BigInt('0x' + m[1]));
  });
  return out;
}

async function userMode(t: KernelTarget, arch: string, tid: number): Promise<boolean> {
  if (arch === 'x86_64') return ((await t.readRegister(tid, 'cs')) & 3n) === 3n;
  if (arch === 'aarch64') return ((await t.readRegister(tid, 'cpsr')) & 0xcn) === 0n;
  return (await t.readRegister(tid, 'priv')) === 0n;
}

for (const arch of ARCHES) {
  describe(`${arch}: guest RAM read from QEMU's memory backend equals the gdbstub's reads`, function () {
    this.timeout(300_000);
    let qemu: QemuInstance | undefined;
    let target: KernelTarget | undefined;

    after(async () => {
      target?.close();
      await qemu?.stop();
    });

    it('gives the gdbstub\'s bytes (or its failure) for vmlinux, init_task\'s pointers, the stack, the PC and physical pages', async function () {
      requireBuilt(this);
      const g = sampleGuest(this, arch);
      const consoleLog = artifact(this, 'console.log');
      fs.rmSync(consoleLog, { force: true });
      const cfg = resolveLaunchConfig({ arch, kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, accel: 'tcg', kaslr: false, consoleLog });
      qemu = await QemuInstance.start(cfg, 'tcg');
      await qemu.qmp.execute('cont');
      await waitForConsole(consoleLog, READY_LINE, 240_000);
      // Connecting stops the guest (QEMU's gdbstub halts the VM for a new client).
      target = await KernelTarget.connect({ kind: 'unix', path: qemu.paths.gdbSocket }, cfg.arch);
      const t = target;
      const ram = qemu.openRam(await P.monitorCommand(t.rsp, 'info mtree -f'));
      assert.ok(ram, 'the launch gave QEMU a memfd RAM backend we can open');
      assert.ok(ram.ranges.length > 0);
      t.useRam(ram);
      const tid = (await t.threads())[0];
      // In kernel mode: riscv's gdbstub reads with the hart's privilege, so from U-mode it
      // refuses kernel pages that the RAM path (which walks the same tables) reads; run on a
      // little until a stop lands in the kernel.
      for (let i = 0; i < 50 && (await userMode(t, arch, tid)); i++) {
        const run = P.continueThreads(t.rsp, undefined, t.vcont);
        await new Promise((r) => setTimeout(r, 20));
        t.rsp.interrupt();
        await run;
        t.invalidate();
      }
      assert.equal(await userMode(t, arch, tid), false, 'no stop in kernel mode');
      const viaStub = (addr: bigint, n: number): Promise<Buffer | undefined> => P.readMemory(t.rsp, addr, n, t.maxReadChunk).catch(() => undefined);
      const viaRam = (addr: bigint, n: number): Promise<Buffer | undefined> => t.readMemory(addr, n, tid).catch(() => undefined);
      const places: bigint[] = symbols(g.vmlinux, 97);
      const init = execFileSync('nm', [g.vmlinux], { encoding: 'utf8', maxBuffer: 256 << 20 }).match(/^([0-9a-f]{16}) [Dd] init_task$/m);
      assert.ok(init);
      const initTask = (await viaStub(BigInt('0x' + init[1]), 4096)) as Buffer;
      for (let i = 0; i + 8 <= initTask.length; i += 8) {
        const v = initTask.readBigUInt64LE(i);
        if (v >> 63n === 1n) places.push(v & ~7n);
      }
      places.push(await t.readRegister(tid, cfg.arch.spRegister), await t.pc(tid));
      let same = 0;
      let failed = 0;
      const before = ram.reads;
      for (const addr of places) {
        // Reads through the target go via RAM when it can; the stub's are the oracle.
        t.invalidate();
        const theirs = await viaStub(addr, 256);
        const ours = await viaRam(addr, 256);
        if (theirs === undefined) {
          assert.equal(ours, undefined, `0x${addr.toString(16)}: the gdbstub can't read it, but the RAM path read something`);
          failed++;
        } else {
          assert.ok(ours, `0x${addr.toString(16)}: the RAM path lost a read the gdbstub makes`);
          assert.equal(ours.toString('hex'), theirs.toString('hex'), `0x${addr.toString(16)}`);
          same++;
        }
      }
      assert.ok(same >= 100, `${same} places compared`);
      assert.ok(ram.reads - before >= same, `the RAM path served ${ram.reads - before} of ${same} reads`);
      // Physical pages: the first RAM page of each range, and one in the middle.
      for (const r of ram.ranges) {
        for (const pa of [r.start, r.start + ((r.end - r.start) / 2n & ~0xfffn)]) {
          const theirs = await P.withPhysicalMemory(t.rsp, () => P.readMemory(t.rsp, pa, 4096, t.maxReadChunk));
          assert.equal((await t.readMemoryPartial(pa, 4096, undefined, true)).toString('hex'), theirs.toString('hex'), `physical 0x${pa.toString(16)}`);
        }
      }
      // eslint-disable-next-line no-console
      console.log(`      ${same} places equal, ${failed} unreadable both ways; ${ram.reads - before} reads from RAM`);
    });
  });
}
