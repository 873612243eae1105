/**
 * RunControl stepping off a breakpoint before it continues. QEMU's TCG now and then ends that
 * single step with the instruction not run: a SIGTRAP and every register as it was (seen on
 * x86_64 after a stop in a module's init function). Taken as is, that is the same breakpoint
 * hit twice, and the client sees a stop where the user asked to continue. The peer answers with
 * the `g` bytes QEMU sent for an x86_64 guest, the PC set where this test puts it.
 */
import * as assert from 'node:assert/strict';
import { getArch } from '../../src/arch';
import { BreakpointTable } from '../../src/engine/breakpoints';
import { RunControl } from '../../src/engine/runcontrol';
import type { StopEvent } from '../../src/engine/stopreason';
import { KernelTarget } from '../../src/engine/target';
import { WatchTable } from '../../src/engine/watchpoints';
import { gReplyWith, rawReply } from './fixture';
import { withPeer, type Peer } from './peer';

const OK = '$OK#9a';
const STOP = rawReply('?');
/** qkd_sample_init's first instruction (a 5-byte ftrace NOP), where the breakpoint was. */
const BP = 0xffffffffa0005000n;

/** The recorded `g` reply with rip (8 bytes at byte 128) replaced. */
function gWithRip(rip: bigint): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(rip);
  return gReplyWith(128, b);
}

interface Rig {
  peer: Peer;
  target: KernelTarget;
  run: RunControl;
  stops: StopEvent[];
  /** How many of the coming single steps leave the PC where it was. */
  stuck: { steps: number };
}

/**
 * A guest stopped at BP. Each single step moves the PC past the NOP unless told to stay; a
 * continue hits BP again when `hitOnContinue` is set, and runs on silently otherwise.
 */
async function rig(): Promise<Rig & { hitOnContinue: { on: boolean } }> {
  let rip = BP;
  const stuck = { steps: 0 };
  const hitOnContinue = { on: false };
  const peer = await withPeer((f, s) => {
    if (f === 'g') s.write(gWithRip(rip));
    else if (f === 'Hg1' || /^[Zz]0,/.test(f)) s.write(OK);
    else if (f.startsWith('vCont;s')) {
      if (stuck.steps > 0) stuck.steps--;
      else rip += 5n;
      s.write(STOP);
    } else if (f === 'vCont;c') {
      if (!hitOnContinue.on) return;
      rip = BP;
      s.write(STOP);
    } else if (f !== '+' && f !== '-') s.write(rawReply(f));
  });
  const target = await KernelTarget.connect({ kind: 'unix', path: peer.path }, getArch('x86_64'), { timeoutMs: 500 });
  const bps = new BreakpointTable(target.rsp, 1, () => false);
  const stops: StopEvent[] = [];
  const run = new RunControl({
    target,
    bps,
    watches: new WatchTable(target.rsp),
    stepper: undefined,
    source: undefined,
    instructionHit: () => false,
    shouldStop: () => Promise.resolve(true),
    forget: () => undefined,
    stopped: (e) => stops.push(e),
    running: () => undefined,
    exited: (why) => assert.fail(`exited: ${why}`),
  });
  await bps.add(BP, 1);
  return { peer, target, run, stops, stuck, hitOnContinue };
}

/** Continue from BP once with steps that work, so the table learns TCG steps over its breakpoints. */
async function learnStepsOver(r: Rig & { hitOnContinue: { on: boolean } }): Promise<void> {
  r.hitOnContinue.on = true;
  await r.run.continue();
  await until(() => r.stops.length > 0);
  assert.equal(r.stops.length, 1, 'the continue hit BP again');
  r.stops.length = 0;
  r.hitOnContinue.on = false;
}

/** The packets sent from `from` on, without acks. */
function sentSince(peer: Peer, from: number): string[] {
  return peer.received.slice(from).filter((f) => f !== '+' && f !== '-');
}

/** Wait (a loaded machine may take a while) until `done` holds; the assertions after it say what was wrong. */
async function until(done: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

describe('engine/runcontrol: stepping off a breakpoint to continue', () => {
  it('tries again when a step leaves the PC unmoved, then continues with no stop reported', async () => {
    const r = await rig();
    try {
      await learnStepsOver(r);
      r.stuck.steps = 1;
      const from = r.peer.received.length;
      await r.run.continue();
      await until(() => sentSince(r.peer, from).includes('vCont;c') || r.stops.length > 0);
      const sent = sentSince(r.peer, from);
      assert.deepEqual(
        sent.filter((f) => f.startsWith('vCont') || /^[Zz]/.test(f)),
        ['vCont;s:1', 'vCont;s:1', 'vCont;c'],
        'stepped twice with the breakpoint left in, then continued',
      );
      assert.deepEqual(r.stops, [], 'the unmoved step is not a second hit');
      assert.equal(r.run.isRunning, true);
    } finally {
      r.target.close();
      r.peer.close();
    }
  });

  it('an unmoved first step does not make the table lift every breakpoint for the session', async () => {
    const r = await rig();
    try {
      r.stuck.steps = 1;
      r.hitOnContinue.on = true;
      await r.run.continue();
      await until(() => r.stops.length > 0);
      const from = r.peer.received.length;
      r.hitOnContinue.on = false;
      await r.run.continue();
      await until(() => sentSince(r.peer, from).includes('vCont;c'));
      assert.deepEqual(
        sentSince(r.peer, from).filter((f) => f.startsWith('vCont') || /^[Zz]/.test(f)),
        ['vCont;s:1', 'vCont;c'],
        'the next step off a breakpoint needs no z0/Z0 around it',
      );
    } finally {
      r.target.close();
      r.peer.close();
    }
  });

  it('counts a PC that stays put after every try as a hit of the same breakpoint (a self-loop)', async () => {
    const r = await rig();
    try {
      await learnStepsOver(r);
      r.stuck.steps = Number.POSITIVE_INFINITY;
      const from = r.peer.received.length;
      await r.run.continue();
      await until(() => r.stops.length > 0 || sentSince(r.peer, from).includes('vCont;c'));
      const sent = sentSince(r.peer, from);
      assert.equal(sent.filter((f) => f.startsWith('vCont;s')).length, 3, sent.join(' '));
      assert.equal(sent.filter((f) => f === 'vCont;c').length, 0, 'no continue after a hit');
      assert.equal(r.stops.length, 1);
      assert.equal(r.stops[0].pc, BP);
      assert.equal(r.stops[0].reason, 'breakpoint');
      assert.equal(r.run.isRunning, false);
    } finally {
      r.target.close();
      r.peer.close();
    }
  });
});
