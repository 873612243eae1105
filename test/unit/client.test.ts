/**
 * RspClient protocol handling against a scripted peer that answers with the bytes QEMU
 * really sent (the recorded fixture). The peer also misbehaves on purpose (nak, silence,
 * hang-up), which a real QEMU cannot be made to do on demand.
 */
import * as assert from 'node:assert/strict';
import { RspConnectionError, RspErrorReply, RspUnsupported } from '../../src/rsp/errors';
import * as P from '../../src/rsp/packets';
import { rawReply } from './fixture';
import { withPeer } from './peer';

describe('rsp/client', () => {
  it('sends a request, acks the reply and returns its payload', async () => {
    const peer = await withPeer((f, s) => {
      if (f === 'vCont?') s.write(rawReply('vCont?'));
    });
    try {
      assert.deepEqual([...(await P.queryVCont(peer.client))], ['c', 'C', 's', 'S']);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(peer.received, ['vCont?', '+']);
    } finally {
      peer.close();
    }
  });

  it('resends a packet the stub naks', async () => {
    let naks = 0;
    const peer = await withPeer((f, s) => {
      if (f === '?' && naks++ === 0) s.write('-');
      else if (f === '?') s.write(rawReply('?'));
    });
    try {
      const stop = await P.queryHaltReason(peer.client);
      assert.equal(stop.kind, 'signal');
      assert.equal(peer.received.filter((x) => x === '?').length, 2);
    } finally {
      peer.close();
    }
  });

  it('raises RspErrorReply for Exx and RspUnsupported for an empty reply', async () => {
    const peer = await withPeer((f, s) => {
      if (f.startsWith('m')) s.write(rawReply('m0,1000'));
      else s.write(rawReply('qFoo'));
    });
    try {
      await assert.rejects(P.readMemory(peer.client, 0n, 16, 2048), (e: unknown) => e instanceof RspErrorReply && e.code === 0x22);
      await assert.rejects(P.readRegister(peer.client, 0x99), RspUnsupported);
    } finally {
      peer.close();
    }
  });

  it('splits memory reads to the chunk size', async () => {
    const sizes: number[] = [];
    const peer = await withPeer((f, s) => {
      const m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(f);
      if (!m) return;
      const n = parseInt(m[2], 16);
      sizes.push(n);
      const body = 'ab'.repeat(n);
      const sum = [...body].reduce((a, c) => (a + c.charCodeAt(0)) & 0xff, 0);
      s.write(`+$${body}#${sum.toString(16).padStart(2, '0')}`);
    });
    try {
      const data = await P.readMemory(peer.client, 0x1000n, 5000, 2048);
      assert.equal(data.length, 5000);
      assert.deepEqual(sizes, [2048, 2048, 904]);
    } finally {
      peer.close();
    }
  });

  it('pipelines a large read: several packets in flight, never more than the window, replies matched in order', async () => {
    let inFlight = 0;
    let most = 0;
    const peer = await withPeer((f, s) => {
      const m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(f);
      if (!m) return;
      inFlight++;
      most = Math.max(most, inFlight);
      s.write('+');
      // Answer later, as a busy stub would; each chunk's bytes are its own address's low byte.
      const addr = BigInt('0x' + m[1]);
      const body = Number(addr & 0xffn).toString(16).padStart(2, '0').repeat(parseInt(m[2], 16));
      const sum = [...body].reduce((a, c) => (a + c.charCodeAt(0)) & 0xff, 0);
      setTimeout(() => {
        inFlight--;
        s.write(`$${body}#${sum.toString(16).padStart(2, '0')}`);
      }, 2);
    });
    try {
      const data = await P.readMemory(peer.client, 0x10000n + 0x11n, 40 * 256, 256);
      assert.equal(data.length, 40 * 256);
      for (let k = 0; k < 40; k++) assert.equal(data[k * 256], (0x11 + k * 256) & 0xff, `chunk ${k}`);
      assert.ok(most > 1 && most <= 16, `at most ${most} in flight`);
      // Every reply is acked (the last acks may still be on their way).
      for (let i = 0; i < 100 && peer.received.filter((r) => r === '+').length < 40; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(peer.received.filter((r) => r === '+').length, 40);
    } finally {
      peer.close();
    }
  });

  it('returns the readable prefix of a pipelined read that runs into an error', async () => {
    const peer = await withPeer((f, s) => {
      const m = /^m([0-9a-f]+),([0-9a-f]+)$/.exec(f);
      if (!m) return;
      const addr = BigInt('0x' + m[1]);
      const n = parseInt(m[2], 16);
      // Memory ends at 0x3800: a read reaching past it fails as QEMU's does, with E14.
      const reply = addr + BigInt(n) > 0x3800n ? 'E14' : 'cd'.repeat(n);
      const sum = [...reply].reduce((a, c) => (a + c.charCodeAt(0)) & 0xff, 0);
      s.write(`+$${reply}#${sum.toString(16).padStart(2, '0')}`);
    });
    try {
      const data = await P.readMemoryPrefix(peer.client, 0x1000n, 0x4000, 0x800);
      assert.equal(data.length, 0x2800);
      assert.ok(data.every((b) => b === 0xcd));
      await assert.rejects(P.readMemory(peer.client, 0x1000n, 0x4000, 0x800), RspErrorReply);
    } finally {
      peer.close();
    }
  });

  it('refuses requests while running, interrupts with 0x03, and resolves the resume with the stop', async () => {
    const peer = await withPeer((f, s) => {
      if (f === '\x03') s.write(rawReply('?'));
    });
    try {
      const run = peer.client.resume('c');
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(peer.client.isRunning, true);
      await assert.rejects(peer.client.request('g'), /while the target is running/);
      peer.client.interrupt();
      const stop = await run;
      assert.ok(stop.kind === 'signal' && stop.thread === 1);
      assert.ok(peer.received.includes('\x03'));
    } finally {
      peer.close();
    }
  });

  it('times out a request the stub never answers, naming the packet', async () => {
    const peer = await withPeer(() => undefined);
    try {
      await assert.rejects(peer.client.request('qC'), (e: unknown) => e instanceof RspConnectionError && /no reply to 'qC' within 500 ms/.test(e.message));
    } finally {
      peer.close();
    }
  });

  it('rejects the pending request when the stub hangs up', async () => {
    const peer = await withPeer((_f, s) => s.destroy());
    try {
      await assert.rejects(peer.client.request('g'), RspConnectionError);
      assert.equal(peer.client.isClosed, true);
    } finally {
      peer.close();
    }
  });
});

describe('rsp/client: packets sent ahead of a resume', () => {
  const OK = '$OK#9a';
  const stop = rawReply('?');
  const E22 = rawReply('m0,1000');

  it('sends them in the resume\'s write, passes on their replies and acks only the stop', async () => {
    const peer = await withPeer((f, s) => {
      if (f.startsWith('Z0,1000') || f.startsWith('z0,3000')) s.write(OK);
      else if (f.startsWith('Z0,2000')) s.write(E22);
      else if (f === 'vCont;c') setTimeout(() => s.write(stop), 20);
    });
    try {
      const replies: string[] = [];
      peer.client.addResumePrelude(() => [{ packet: 'z0,3000,1', onReply: (r) => replies.push(`z:${r}`) }]);
      const run = peer.client.resume('vCont;c', [
        { packet: 'Z0,1000,1', onReply: (r) => replies.push(r) },
        { packet: 'Z0,2000,1', onReply: (r) => replies.push(r) },
      ]);
      const s = await run;
      assert.ok(s.kind === 'signal' && s.signal === 5);
      // The source's removal first, then the resume's own packets, then the resume, in one write.
      assert.equal(peer.chunks[0].match(/\$[^#]*#/g)?.join(' '), '$z0,3000,1# $Z0,1000,1# $Z0,2000,1# $vCont;c#');
      assert.deepEqual(replies, ['z:OK', 'OK', 'E22']);
      // No '+' for the preludes' replies (QEMU would take it as an interrupt while running); one for the stop.
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(peer.received.filter((x) => x === '+'), ['+']);
    } finally {
      peer.close();
    }
  });

  it('gives a prelude the stub never answered an empty reply, and the next request its own reply', async () => {
    const peer = await withPeer((f, s) => {
      if (f === 'vCont;c') s.write(stop);
      else if (f === 'g') s.write(rawReply('g'));
    });
    try {
      let got: string | undefined;
      await peer.client.resume('vCont;c', [{ packet: 'Z0,1000,1', onReply: (r) => (got = r) }]);
      assert.equal(got, '');
      const g = await peer.client.request('g');
      assert.ok(/^[0-9a-f]{100}/.test(g), 'the g reply went to the g request');
    } finally {
      peer.close();
    }
  });
});

describe('rsp/client: the register read that follows a stop', () => {
  const stop = rawReply('?');

  it('goes out with the stop\'s ack, and the first request for it gets that reply', async () => {
    const asked: string[] = [];
    const peer = await withPeer((f, s) => {
      asked.push(f);
      if (f === 'vCont;c') s.write(stop);
      else if (f === 'g') s.write(rawReply('g'));
      else if (f === 'p10') s.write(rawReply('p10'));
    });
    try {
      peer.client.prefetchOnStop = (st) => (st.kind === 'signal' && st.thread === 1 ? 'g' : undefined);
      await peer.client.resume('vCont;c');
      await new Promise((r) => setTimeout(r, 20));
      assert.ok(peer.chunks.some((c) => c.startsWith('+$g#')), `the ack and g in one write: ${JSON.stringify(peer.chunks)}`);
      const g = await peer.client.request('g');
      assert.ok(/^[0-9a-f]{100}/.test(g));
      assert.deepEqual(asked.filter((f) => f === 'g'), ['g'], 'g was sent once');
      // The prefetched reply is used once; another packet in between drops it.
      await peer.client.resume('vCont;c');
      await peer.client.request('p10');
      await peer.client.request('g');
      assert.deepEqual(asked.filter((f) => f === 'g'), ['g', 'g', 'g']);
    } finally {
      peer.close();
    }
  });
});

describe('rsp/client: replies that come while the guest runs', () => {
  it('does not ack the prefetched read when the next resume went out before its reply', async () => {
    const stop = rawReply('?');
    let resumes = 0;
    const peer = await withPeer((f, s) => {
      if (f === 'vCont;c') {
        resumes++;
        if (resumes === 1) s.write(stop);
        else setTimeout(() => s.write(stop), 40);
      } else if (f === 'g') setTimeout(() => s.write(rawReply('g')), 10);
    });
    try {
      peer.client.prefetchOnStop = () => 'g';
      await peer.client.resume('vCont;c');
      // Resume again at once: the g reply arrives while the guest (as QEMU sees it) runs.
      await peer.client.resume('vCont;c');
      await new Promise((r) => setTimeout(r, 30));
      // The first g reply came while the guest ran: no '+' for it (QEMU would take it as an
      // interrupt). The stops are acked, and the second g reply, which came while stopped.
      assert.deepEqual(peer.received.filter((x) => ['+', 'g', 'vCont;c'].includes(x)), ['vCont;c', '+', 'g', 'vCont;c', '+', 'g', '+']);
    } finally {
      peer.close();
    }
  });
});
