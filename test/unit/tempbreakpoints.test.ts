/**
 * BreakpointTable's temporary breakpoints for a step: armed in the resume's write, and left in
 * the stub after the step (removed ahead of the next resume, or taken back for free) only when
 * the stub keeps breakpoints out of guest memory.
 */
import * as assert from 'node:assert/strict';
import { BreakpointTable } from '../../src/engine/breakpoints';
import { rawReply } from './fixture';
import { withPeer } from './peer';

const OK = '$OK#9a';
const STOP = rawReply('?');

/** A peer that accepts every Z/z (or refuses the addresses in `refuse`) and stops every resume. */
function stub(refuse: string[] = []): ReturnType<typeof withPeer> {
  return withPeer((f, s) => {
    if (/^[Zz]/.test(f)) s.write(refuse.some((a) => f.includes(`,${a},`)) ? rawReply('m0,1000') : OK);
    else if (f.startsWith('vCont')) s.write(STOP);
  });
}

/** The frames of the last write that held a resume. */
function lastResumeWrite(chunks: string[]): string {
  const w = [...chunks].reverse().find((c) => c.includes('$vCont'));
  return (w?.match(/\$([^#]*)#/g) ?? []).map((f) => f.slice(1, -1)).join(' ');
}

describe('engine/breakpoints: temporary breakpoints of a step', () => {
  it('arms in the resume, puts removal off to the next resume, and takes a left-over back without packets (TCG)', async () => {
    const peer = await stub();
    try {
      const bps = new BreakpointTable(peer.client, 1, () => false);
      const armed = bps.arm([0x1000n, 0x2000n, 0x1000n], -1, () => assert.fail('nothing is refused'));
      await peer.client.resume('vCont;c', armed.prelude);
      assert.equal(lastResumeWrite(peer.chunks), 'Z0,1000,1 Z0,2000,1 vCont;c');
      assert.ok(bps.has(0x1000n) && bps.has(0x2000n));
      const before = peer.received.length;
      await bps.retire(armed.addresses, -1);
      assert.equal(peer.received.length, before, 'nothing is sent when the step ends');
      assert.ok(!bps.has(0x1000n) && !bps.has(0x2000n));
      // The next step wants 0x2000 again: it is still in the stub, so only 0x1000 goes.
      const again = bps.arm([0x2000n, 0x3000n], -1, () => assert.fail('nothing is refused'));
      await peer.client.resume('vCont;c', again.prelude);
      assert.equal(lastResumeWrite(peer.chunks), 'z0,1000,1 Z0,3000,1 vCont;c');
      await bps.retire(again.addresses, -1);
      await bps.flushStale();
      assert.deepEqual(peer.received.slice(-2).sort(), ['z0,2000,1', 'z0,3000,1']);
    } finally {
      peer.close();
    }
  });

  it('a user breakpoint on a left-over address costs no packet, and survives the step', async () => {
    const peer = await stub();
    try {
      const bps = new BreakpointTable(peer.client, 1, () => false);
      const armed = bps.arm([0x1000n], -1, () => undefined);
      await peer.client.resume('vCont;c', armed.prelude);
      await bps.retire(armed.addresses, -1);
      const before = peer.received.length;
      await bps.add(0x1000n, 7);
      assert.equal(peer.received.length, before);
      assert.deepEqual(bps.idsAt(0x1000n), [7]);
      await peer.client.resume('vCont;c');
      assert.equal(lastResumeWrite(peer.chunks), 'vCont;c', 'the user breakpoint is not removed');
    } finally {
      peer.close();
    }
  });

  it('removes at once where breakpoints are guest memory (KVM), so no int3 shows in a read', async () => {
    const peer = await stub();
    try {
      const bps = new BreakpointTable(peer.client, 1, () => true);
      const armed = bps.arm([0x1000n], -1, () => undefined);
      await peer.client.resume('vCont;c', armed.prelude);
      await bps.retire(armed.addresses, -1);
      assert.equal(peer.received.at(-1), 'z0,1000,1');
      await peer.client.resume('vCont;c');
      assert.equal(lastResumeWrite(peer.chunks), 'vCont;c');
    } finally {
      peer.close();
    }
  });

  it('drops an address the stub refuses and says so at once', async () => {
    const peer = await stub(['2000']);
    try {
      const bps = new BreakpointTable(peer.client, 1, () => false);
      let told = 0;
      const armed = bps.arm([0x1000n, 0x2000n], -1, () => told++);
      await peer.client.resume('vCont;c', armed.prelude);
      assert.deepEqual(armed.refused, [0x2000n]);
      assert.equal(told, 1);
      assert.ok(bps.has(0x1000n) && !bps.has(0x2000n));
    } finally {
      peer.close();
    }
  });
});
