/**
 * A stub that stops answering (QEMU SIGSTOPped or hung): the request that times out fails,
 * the ones after it fail at once instead of each waiting out a timeout, the client says so
 * once ('stalled'), and all is well again when the stub speaks ('answering').
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { encodePacket } from '../../src/rsp/framing';
import { RspConnectionError } from '../../src/rsp/errors';
import { withPeer } from './peer';

describe('rsp/client: a stub that stops answering', () => {
  it('fails the late request, refuses the next at once, and recovers when the stub speaks again', async () => {
    let silent = true;
    const held: Array<{ frame: string; sock: net.Socket }> = [];
    const peer = await withPeer((f, s) => {
      if (f === '+' || f === '-') return;
      if (silent) held.push({ frame: f, sock: s });
      else s.write(encodePacket(`r-${f}`));
    });
    const events: string[] = [];
    peer.client.on('stalled', (what: string) => events.push(`stalled: ${what}`));
    peer.client.on('answering', () => events.push('answering'));
    try {
      const t0 = Date.now();
      await assert.rejects(peer.client.request('m1000,8'), /no reply to 'm1000,8' within 500 ms/);
      assert.ok(Date.now() - t0 < 800);
      assert.equal(peer.client.isStalled, true);
      // An unwind makes dozens of reads: each must not wait out its own timeout.
      const t1 = Date.now();
      await assert.rejects(peer.client.request('m2000,8'), (e: unknown) => e instanceof RspConnectionError && /stopped answering/.test(e.message));
      assert.ok(Date.now() - t1 < 50, `the second request took ${Date.now() - t1} ms`);
      assert.deepEqual(events, ["stalled: no reply to 'm1000,8' within 500 ms"]);
      // SIGCONT: the stub answers what it was sent; the late reply is dropped, not handed on.
      silent = false;
      for (const h of held) h.sock.write(encodePacket(`r-${h.frame}`));
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(peer.client.isStalled, false);
      assert.deepEqual(events.slice(1), ['answering']);
      assert.equal(await peer.client.request('m3000,8'), 'r-m3000,8');
    } finally {
      peer.close();
    }
  });

  it('tries again once the timeout has passed, even if the stub said nothing meanwhile', async () => {
    let answer = false;
    const held: string[] = [];
    const peer = await withPeer((f, s) => {
      if (f === '+' || f === '-') return;
      held.push(f);
      // QEMU answers in order once it runs again: the late reply first, then the new one's.
      if (answer) for (const h of held.splice(0)) s.write(encodePacket(`r-${h}`));
    });
    try {
      await assert.rejects(peer.client.request('qC'), /within 500 ms/);
      await new Promise((r) => setTimeout(r, 550));
      answer = true;
      assert.equal(await peer.client.request('qC2'), 'r-qC2');
    } finally {
      peer.close();
    }
  });

  it('says so when an interrupt brings no stop, and keeps the run pending for a late one', async () => {
    let stopNow: (() => void) | undefined;
    const peer = await withPeer((f, s) => {
      if (f === '\x03') stopNow = () => s.write(encodePacket('T02thread:01;'));
    });
    const events: string[] = [];
    peer.client.on('stalled', (what: string) => events.push(what));
    peer.client.on('answering', () => events.push('answering'));
    try {
      const run = peer.client.resume('c');
      await new Promise((r) => setTimeout(r, 20));
      peer.client.interrupt();
      await new Promise((r) => setTimeout(r, 650));
      assert.deepEqual(events, ['no stop within 500 ms of an interrupt']);
      assert.equal(peer.client.isRunning, true);
      stopNow?.();
      const stop = await run;
      assert.equal(stop.kind, 'signal');
      assert.deepEqual(events.slice(1), ['answering']);
    } finally {
      peer.close();
    }
  });
});
