/** At the first kernel_clone stop, our registers agree with gdb's on the same guest. */
import * as assert from 'node:assert/strict';
import { requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbSession, haveGdb, parseInfoRegisters } from '../support/gdb';
import { TestSession } from '../support/session';

describe('gdb as the oracle at kernel_clone', function () {
  this.timeout(240_000);

  it('rip, rsp, rbp, rdi, segments and control registers agree with gdb', async function () {
    requireBuilt(this);
    requireOrSkip(this, haveGdb(), 'gdb is not installed');
    const g = sampleGuest(this);
    // Registers that are the same at this stop in every boot of this guest under TCG.
    const names = ['rip', 'rsp', 'rbp', 'rdi', 'cs', 'ss', 'eflags', 'cr0', 'cr3', 'cr4', 'efer', 'gs_base'];
    const gdbOut = await gdbSession(g, ['break kernel_clone', 'continue', `info registers ${names.join(' ')}`]);
    assert.match(gdbOut, /Breakpoint 1, .*kernel_clone/);
    const theirs = parseInfoRegisters(gdbOut);

    const s = new TestSession(this);
    try {
      await s.start();
      const { stop } = await s.launchToBreak(s.launchArgs({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd }), ['kernel_clone']);
      const ours = await s.registers((await s.topFrame(stop.body.threadId as number)).id);
      for (const n of names) {
        assert.ok(theirs.has(n), `gdb printed ${n}:\n${gdbOut}`);
        assert.equal(BigInt(ours.get(n) as string), theirs.get(n), `${n}: ours ${ours.get(n)}, gdb 0x${theirs.get(n)?.toString(16)}`);
      }
    } finally {
      await s.stop();
    }
  });
});
