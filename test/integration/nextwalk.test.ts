/**
 * A walk of `next`s through kernel_clone from its breakpoint, on every arch, against gdb on
 * the same guest: each step must end on gdb's line at gdb's pc. The walk crosses a call
 * (copy_process, run over with breakpoints), inlined calls entered from another line (gdb
 * stops at their entry and shows the call site) and lines whose code loops (rep stos on
 * x86), which is where a step planned from the line's instructions could go wrong.
 */
import * as assert from 'node:assert/strict';
import { DebugProtocol } from '@vscode/debugprotocol';
import * as fs from 'node:fs';
import { getArch } from '../../src/arch';
import { GuestPaths } from '../../src/guest/build';
import { MonitorConnection } from '../../src/qemu/monitor';
import { requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbFor, gdbSession, haveGdb } from '../support/gdb';
import { TestSession } from '../support/session';
import { ARCHES } from './matrix.test';

const STEPS = 12;

/**
 * The first step is over the ftrace NOP kernel_clone's breakpoint stops on. Where the arch lets
 * the engine check the guest won't trap after it (x86's TF), that step moves the PC instead of
 * running the vCPU: no resume went to the stub, the PC was written, and QEMU's own view of the
 * vCPU (its monitor's `info registers`) has the PC the step reported.
 */
async function nopWasSkipped(s: TestSession, packets: string, pc: bigint): Promise<void> {
  assert.doesNotMatch(packets, /-> \$(vCont|[cs][#;])/, `no resume for the NOP:\n${packets}`);
  const le = Buffer.alloc(8);
  le.writeBigUInt64LE(pc);
  assert.match(packets, new RegExp(`-> \\$P10=${le.toString('hex')}#`), `the PC write:\n${packets}`);
  const argv = (await s.dc.customRequest('qemuKernel.commandLine')).body.argv as string[];
  const sock = argv.map((a) => /id=qkd-hmp,path=([^,]+)/.exec(a)?.[1]).find(Boolean);
  assert.ok(sock, `no monitor socket in ${argv.join(' ')}`);
  const conn = new MonitorConnection(sock);
  let text = '';
  conn.on('data', (d: string) => (text += d));
  await conn.connect();
  try {
    conn.write('info registers\r');
    const deadline = Date.now() + 10_000;
    while (!/RIP=[0-9a-f]{16}/.test(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(/RIP=([0-9a-f]{16})/.exec(text)?.[1], pc.toString(16).padStart(16, '0'), `QEMU's monitor:\n${text}`);
  } finally {
    conn.close();
  }
}

for (const archName of ARCHES) {
  describe(`${archName}: ${STEPS} nexts through kernel_clone (gdb as oracle)`, function () {
    this.timeout(600_000);
    let guest: GuestPaths;
    let gdbWalk: Array<{ line: number; pc: bigint }> = [];

    before(async function () {
      requireBuilt(this);
      requireOrSkip(this, haveGdb(archName), `${gdbFor(archName)} is not installed (apt-get install ${gdbFor(archName)})`);
      guest = sampleGuest(this, archName);
      const report = 'python f = gdb.selected_frame(); print("@@STEP %d %x" % (f.find_sal().line, f.pc()))';
      const out = await gdbSession(guest, ['break kernel_clone', 'continue', report, ...Array<string[]>(STEPS).fill(['next', report]).flat()], 300_000);
      gdbWalk = [...out.matchAll(/^@@STEP (\d+) ([0-9a-f]+)$/gm)].map((m) => ({ line: Number(m[1]), pc: BigInt(`0x${m[2]}`) }));
      assert.equal(gdbWalk.length, STEPS + 1, `gdb's walk:\n${out}`);
    });

    it("ends every step on gdb's line at gdb's pc", async function () {
      const s = new TestSession(this);
      try {
        await s.start();
        const args = s.launchArgs({ arch: archName, kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd });
        const { stop } = await s.launchToBreak(args, ['kernel_clone']);
        const tid = stop.body.threadId ?? 1;
        const where = async (): Promise<{ line: number; pc: bigint }> => {
          const f = (await s.dc.stackTraceRequest({ threadId: tid, levels: 1 })).body.stackFrames[0];
          return { line: f.line, pc: BigInt(f.instructionPointerReference ?? '0') };
        };
        const walk = [await where()];
        const order: string[] = [];
        const rspLog = String((args as { rspLog?: string }).rspLog);
        for (let i = 0; i < STEPS; i++) {
          const logged = fs.statSync(rspLog).size;
          const stopped = s.dc.waitForEvent('stopped').then((e) => (order.push('stopped'), e));
          await s.dc.nextRequest({ threadId: tid }).then(() => order.push('response'));
          assert.equal(((await stopped) as DebugProtocol.StoppedEvent).body.reason, 'step');
          walk.push(await where());
          if (i === 0 && getArch(archName).traceFlag) await nopWasSkipped(s, fs.readFileSync(rspLog, 'latin1').slice(logged), walk[1].pc);
        }
        // The response is held until the stop, but must come first: VS Code marks the thread
        // running when a step's response arrives, which after the stop would undo it.
        assert.deepEqual(order, Array<string[]>(STEPS).fill(['response', 'stopped']).flat());
        const show = (w: Array<{ line: number; pc: bigint }>): string => w.map((x) => `${x.line}@${x.pc.toString(16)}`).join(' ');
        assert.equal(show(walk), show(gdbWalk));
      } finally {
        await s.stop();
      }
    });
  });
}
