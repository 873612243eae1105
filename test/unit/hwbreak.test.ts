/**
 * Software or hardware breakpoints, per address: under KVM the stub refuses a software
 * breakpoint (Z0) where the code is not mapped yet, and the table falls back to a hardware
 * one (Z1); x86 has 4 debug registers, so a fifth is refused before it is asked for, naming
 * the four in use. The peer answers as QEMU does: `E22` for a Z0 it can't write.
 */
import * as assert from 'node:assert/strict';
import { BreakpointTable } from '../../src/engine/breakpoints';
import { placementNote } from '../../src/engine/bptypes';
import { frame } from './fixture';
import { withPeer } from './peer';

const OK = frame('OK');
const E22 = frame('E22');
const UNMAPPED = 0xffffffff81000000n;

describe('breakpoints: software where it can be written, hardware where it cannot, at most 4 on x86', () => {
  it('falls back to Z1 where Z0 is refused, says so, and refuses a fifth hardware one with the four in use', async () => {
    const sent: string[] = [];
    const peer = await withPeer((f, s) => {
      if (f === '+' || f === '-') return;
      sent.push(f);
      // Software breakpoints go in only below the unmapped range; hardware ones anywhere.
      if (f.startsWith('Z0,')) s.write(BigInt('0x' + f.split(',')[1]) >= UNMAPPED ? E22 : OK);
      else if (f.startsWith('Z1,') || f.startsWith('z')) s.write(OK);
      else s.write(frame(''));
    });
    try {
      const bps = new BreakpointTable(peer.client, 1, () => true, 4);
      await bps.add(0x1000n, 1);
      assert.equal(bps.kindAt(0x1000n), 'sw');
      for (let i = 0; i < 4; i++) await bps.add(UNMAPPED + BigInt(i * 16), 2 + i);
      assert.deepEqual(
        [0, 1, 2, 3].map((i) => bps.kindAt(UNMAPPED + BigInt(i * 16))),
        ['hw', 'hw', 'hw', 'hw'],
      );
      const z1Before = sent.filter((f) => f.startsWith('Z1,')).length;
      await assert.rejects(bps.add(UNMAPPED + 0x100n, 9), (e: Error) => {
        assert.match(e.message, /a software breakpoint cannot be written at 0xffffffff81000100 .*all 4 hardware breakpoints are in use \(at 0xffffffff81000000, 0xffffffff81000010, 0xffffffff81000020, 0xffffffff81000030\)/);
        return true;
      });
      assert.equal(sent.filter((f) => f.startsWith('Z1,')).length, z1Before, 'the fifth Z1 is never sent');
      // Freeing one makes room again.
      await bps.remove(UNMAPPED, 2);
      await bps.add(UNMAPPED + 0x100n, 9);
      assert.equal(bps.kindAt(UNMAPPED + 0x100n), 'hw');
      assert.equal(placementNote(1, [UNMAPPED + 0x100n]), 'hardware breakpoint (Z1) at 0xffffffff81000100: a software one (Z0) could not be written there (under KVM the code is not mapped, or not where it will run, yet)');
      assert.equal(placementNote(2, []), '2 locations');
    } finally {
      peer.close();
    }
  });
});
