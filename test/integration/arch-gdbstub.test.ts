/**
 * arm64 and riscv64 against QEMU's real gdbstub with no kernel at all (the vCPU paused at
 * reset), gdb-multiarch as the oracle: every register gdb names, read through our target
 * description, has gdb's value; a stub of another arch is refused by name; and on riscv the
 * reset ROM runs under our breakpoints and single steps.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getArch, type ArchInfo } from '../../src/arch';
import { KernelTarget } from '../../src/engine/target';
import * as P from '../../src/rsp/packets';
import { requireOrSkip } from '../support/env';
import { parseInfoRegisters } from '../support/gdb';

interface Bare {
  dir: string;
  sock: string;
  qemu: ChildProcess;
}

/** QEMU for `arch` with no kernel, paused; -bios none keeps riscv in its reset ROM. */
async function bareQemu(arch: ArchInfo): Promise<Bare> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-bare-'));
  const sock = path.join(dir, 'gdb.sock');
  const extra = arch.name === 'riscv64' ? ['-bios', 'none'] : [];
  const qemu = spawn(arch.qemuBinary, ['-nodefaults', '-no-user-config', '-display', 'none', ...arch.machineArgs, ...extra, '-accel', 'tcg', '-S', '-gdb', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
  const deadline = Date.now() + 20_000;
  while (!fs.existsSync(sock)) {
    if (Date.now() > deadline) throw new Error(`${arch.qemuBinary} opened no gdbstub socket`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { dir, sock, qemu };
}

function stop(b: Bare | undefined): void {
  if (!b) return;
  b.qemu.kill('SIGKILL');
  fs.rmSync(b.dir, { recursive: true, force: true });
}

/** gdb-multiarch's `info all-registers` on its own paused QEMU. */
async function gdbRegisters(arch: ArchInfo): Promise<Map<string, bigint>> {
  const b = await bareQemu(arch);
  try {
    const r = spawnSync('gdb-multiarch', ['-q', '-nx', '-batch', '-ex', `set architecture ${arch.tdescArchitecture}`, '-ex', `target remote ${b.sock}`, '-ex', 'info all-registers'], { encoding: 'utf8', timeout: 60_000 });
    return parseInfoRegisters(r.stdout);
  } finally {
    stop(b);
  }
}

/** Registers that count time or instructions: they differ between two QEMUs. */
const TICKING = /^(mcycle|minstret|cycle|instret|time|mhpmcounter\d+|CNTVCT.*|CNTPCT.*|PMCCNTR_EL0)$/;

for (const name of ['aarch64', 'riscv64']) {
  describe(`${name}: QEMU's gdbstub at reset, no kernel (gdb-multiarch as oracle)`, function () {
    this.timeout(120_000);
    const arch = getArch(name);
    let bare: Bare | undefined;
    let target: KernelTarget | undefined;

    before(async function () {
      requireOrSkip(this, spawnSync(arch.qemuBinary, ['--version']).status === 0, `${arch.qemuBinary} is not installed (apt-get install ${arch.qemuPackage})`);
      bare = await bareQemu(arch);
      target = await KernelTarget.connect({ kind: 'unix', path: bare.sock }, arch);
    });
    after(() => {
      target?.close();
      stop(bare);
    });

    it('reads every register gdb-multiarch names with gdb\'s value, system registers included', async function () {
      requireOrSkip(this, spawnSync('gdb-multiarch', ['--version']).status === 0, 'gdb-multiarch is not installed');
      const t = target as KernelTarget;
      const gdb = await gdbRegisters(arch);
      const ours = new Map((await t.readRegisters(1)).map((r) => [r.info.name, r.bytes]));
      let compared = 0;
      for (const [reg, v] of gdb) {
        const bytes = ours.get(reg);
        if (!bytes || TICKING.test(reg)) continue;
        let mine = 0n;
        for (let i = bytes.length - 1; i >= 0; i--) mine = (mine << 8n) | BigInt(bytes[i]);
        assert.equal(mine, v, reg);
        compared++;
      }
      // gdb prints scalars; vector and FP unions it prints as structs, which are skipped.
      assert.ok(compared > (name === 'aarch64' ? 150 : 100), `${compared} registers compared`);
      for (const r of [arch.pcRegister, arch.spRegister, arch.fpRegister]) assert.ok(gdb.has(r) || r === 'x29', r);
    });

    it('refuses a gdbstub of another arch by name, before anything runs', async () => {
      const other = getArch(name === 'aarch64' ? 'riscv64' : 'aarch64');
      const b = await bareQemu(arch);
      try {
        await assert.rejects(KernelTarget.connect({ kind: 'unix', path: b.sock }, other), new RegExp(`the gdbstub's guest is '${arch.tdescArchitecture}', not ${other.name}`));
        await assert.rejects(KernelTarget.connect({ kind: 'unix', path: b.sock }, getArch('x86_64')), /not x86_64/);
      } finally {
        stop(b);
      }
    });

    if (name === 'riscv64') {
      it('runs the reset ROM to a breakpoint of the arch\'s kind, steps it to the jump to DRAM', async () => {
        const t = target as KernelTarget;
        // 0x1000: auipc t0,0; addi a2,t0,40; csrr a0,mhartid; ld a1,32(t0); ld t0,24(t0); jr t0
        await P.insertBreakpoint(t.rsp, 'sw', 0x100cn, arch.breakpointKind);
        const hit = await P.continueThreads(t.rsp, undefined, t.vcont);
        t.invalidate();
        assert.equal(hit.kind, 'signal');
        assert.equal(await t.pc(1), 0x100cn);
        assert.equal(await t.readRegister(1, 't0'), 0x1000n);
        await P.removeBreakpoint(t.rsp, 'sw', 0x100cn, arch.breakpointKind);
        // QEMU's TCG gdbstub ignores the kind: gdb's 2 for a compressed instruction works alike.
        await P.insertBreakpoint(t.rsp, 'sw', 0x1014n, 2);
        await P.continueThreads(t.rsp, undefined, t.vcont);
        t.invalidate();
        assert.equal(await t.pc(1), 0x1014n);
        await P.removeBreakpoint(t.rsp, 'sw', 0x1014n, 2);
        const dest = await t.readRegister(1, 't0');
        assert.equal(dest, 0x80000000n, 'the ROM loads the DRAM entry into t0');
        await P.stepThread(t.rsp, 1, t.vcont);
        t.invalidate();
        assert.equal(await t.pc(1), dest);
        assert.equal(await t.readRegister(1, 'priv'), 3n);
      });
    }
  });
}
