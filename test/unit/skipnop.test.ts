/**
 * KernelTarget.skipNop: a NOP stepped by moving the PC. The peer answers with the bytes QEMU
 * sent for an x86_64 guest at its reset vector (rip 0xfff0, eflags 0x2); the PC write must
 * reach the stub after the current turn, ahead of any later packet, and a refused write must
 * leave the engine reading the guest's real PC again.
 */
import * as assert from 'node:assert/strict';
import { getArch } from '../../src/arch';
import { KernelTarget } from '../../src/engine/target';
import { frame, gReplyWith, rawReply } from './fixture';
import { withPeer, type Peer } from './peer';

const OK = '$OK#9a';
const RIP = 0xfff0n;

/** The recorded `g` reply, with eflags (4 bytes after rip, at byte 136) replaced. */
function gWithEflags(eflags: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(eflags);
  return gReplyWith(136, b);
}

interface Stub {
  peer: Peer;
  target: KernelTarget;
  warnings: string[];
}

async function stub(opts: { g?: string; refuseP?: boolean } = {}): Promise<Stub> {
  const peer = await withPeer((f, s) => {
    if (f === 'g') s.write(opts.g ?? rawReply('g'));
    else if (f === 'Hg1') s.write(OK);
    else if (f.startsWith('P')) s.write(opts.refuseP ? frame('E14') : OK);
    else if (f.startsWith('m')) s.write(frame('90'));
    else if (f !== '+' && f !== '-') s.write(rawReply(f));
  });
  const target = await KernelTarget.connect({ kind: 'unix', path: peer.path }, getArch('x86_64'), { timeoutMs: 500 });
  const warnings: string[] = [];
  target.warn = (m) => warnings.push(m);
  return { peer, target, warnings };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('engine/target: stepping a NOP by moving the PC', () => {
  it('moves the cached PC at once and writes it to the stub after this turn, before later packets', async () => {
    const { peer, target, warnings } = await stub();
    try {
      assert.equal(await target.pc(1), RIP);
      const sent = peer.received.length;
      assert.equal(target.skipNop(1, RIP, RIP + 5n), true);
      assert.equal(await target.pc(1), RIP + 5n, 'the registers of this stop say where the vCPU is now');
      assert.equal((await target.readDwarfRegisters(1)).get(16), RIP + 5n, 'DWARF rip too');
      assert.equal(target.rsp.holdingWrites, true, "the write waits for the end of the turn (the stop's messages go first)");
      await target.readMemory(0x1000n, 1, 1);
      assert.equal(target.rsp.holdingWrites, false);
      const after = peer.received.slice(sent).filter((f) => f !== '+');
      assert.deepEqual(after, ['P10=f5ff000000000000', 'm1000,1'], 'the PC write first, then what was asked after it');
      await turn();
      assert.deepEqual(warnings, []);
    } finally {
      target.close();
      peer.close();
    }
  });

  it("runs the NOP in the guest instead when the guest set the trap flag, or the PC isn't where the NOP is", async () => {
    const tf = await stub({ g: gWithEflags(0x102) });
    try {
      await tf.target.pc(1);
      assert.equal(tf.target.skipNop(1, RIP, RIP + 5n), false, 'TF set: the vCPU would trap after the NOP');
      assert.equal(await tf.target.pc(1), RIP);
    } finally {
      tf.target.close();
      tf.peer.close();
    }
    const s = await stub();
    try {
      assert.equal(s.target.skipNop(1, RIP, RIP + 5n), false, 'registers not read at this stop');
      await s.target.pc(1);
      assert.equal(s.target.skipNop(1, RIP + 1n, RIP + 6n), false, 'the PC is elsewhere');
      await turn();
      assert.ok(!s.peer.received.some((f) => f.startsWith('P')), 'no write');
    } finally {
      s.target.close();
      s.peer.close();
    }
  });

  it('a refused PC write brings back the real PC, says so, and stops further skips', async () => {
    const { peer, target, warnings } = await stub({ refuseP: true });
    try {
      await target.pc(1);
      assert.equal(target.skipNop(1, RIP, RIP + 5n), true);
      await turn();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /moving the PC failed .*E14.*stepped in the guest/);
      const gets = peer.received.filter((f) => f === 'g').length;
      assert.equal(await target.pc(1), RIP, "the stub's PC, read again");
      assert.equal(peer.received.filter((f) => f === 'g').length, gets + 1);
      assert.equal(target.skipNop(1, RIP, RIP + 5n), false);
    } finally {
      target.close();
      peer.close();
    }
  });
});
