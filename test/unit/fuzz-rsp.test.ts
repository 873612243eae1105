/**
 * Fuzzing the GDB remote protocol: the frame parser over the byte streams QEMU really sent
 * (recorded fixtures for three arches), mutated and split at random points; generated streams
 * of frames, escapes, run-length codes, notifications and noise; hand-made hostile frames
 * (bad checksums, endless run-length codes, frames that never end); and the packet-family
 * parsers of rsp/packets.ts fed arbitrary replies. The parser must never throw and must give
 * the same events however the stream is split; the packet functions may fail only with an
 * RspError.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as fc from 'fast-check';
import type { RspClient } from '../../src/rsp/client';
import { RspError } from '../../src/rsp/errors';
import { checksum, decodeBody, encodePacket, FrameParser, FramingError, MAX_FRAME, type FrameEvent } from '../../src/rsp/framing';
import * as P from '../../src/rsp/packets';
import { fuzz, fuzzAsync, hostile, mutate, mutations, record, runsFor, Tally } from './fuzzkit';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures');

/** Every reply QEMU sent in the recorded sessions, back to back: acks, packets, escapes, RLE. */
function recordedStream(): Buffer {
  const parts: string[] = [];
  for (const f of fs.readdirSync(FIXTURES).filter((n) => n.endsWith('-gdbstub.json'))) {
    const rec = JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8')) as { exchanges: Array<{ receivedLatin1: string }> };
    for (const e of rec.exchanges) parts.push(e.receivedLatin1);
  }
  return Buffer.from(parts.join(''), 'latin1');
}

/** Feed `bytes` in pieces cut at `cuts` (fractions of the length); never throws, or the test fails. */
function parseSplit(bytes: Buffer, cuts: readonly number[]): FrameEvent[] {
  const p = new FrameParser();
  const at = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const events: FrameEvent[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    events.push(...p.push(bytes.subarray(from, c)));
    from = c;
  }
  return events;
}

/** A frame as a stub might send it: right, wrong, or strange. */
const frame: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 64 }).map((s) => encodePacket(s)) },
  { weight: 2, arbitrary: fc.tuple(fc.string({ unit: 'binary-ascii', maxLength: 32 }), fc.nat(255)).map(([s, sum]) => `$${s}#${sum.toString(16).padStart(2, '0')}`) },
  // Run-length codes, valid or not, with the right checksum so they reach the decoder.
  { weight: 3, arbitrary: fc.array(fc.oneof(fc.constantFrom('0', 'f', 'x', '}', '*', '#', '$'), fc.integer({ min: 0, max: 255 }).map((n) => `*${String.fromCharCode(n)}`)), { maxLength: 40 }).map((parts) => parts.join('').replace(/[#$]/g, 'a')).map((raw) => `$${raw}#${checksum(raw).toString(16).padStart(2, '0')}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 16 }).map((s) => `%${s.replace(/[#$}*]/g, '.')}#${checksum(s.replace(/[#$}*]/g, '.')).toString(16).padStart(2, '0')}`) },
  { weight: 1, arbitrary: fc.constantFrom('+', '-', '\x03', '$', '#', '}', '$#', '$}#00#00', '$abc#zz', '$a#0', '###') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => Buffer.from(s, 'utf8').toString('latin1')) },
);

/** What the parser may never do, whatever the bytes: throw, or give a payload past MAX_FRAME. */
function sane(events: FrameEvent[]): void {
  for (const e of events) if (e.kind === 'packet' || e.kind === 'notification') assert.ok(e.payload.length <= MAX_FRAME, 'a payload past MAX_FRAME');
}

/** A fake client answering each packet with the next scripted reply (then the last one forever). */
function scripted(replies: readonly string[]): RspClient {
  let i = 0;
  const next = (): string => replies[Math.min(i++, replies.length - 1)] ?? '';
  const fake = {
    command: async (_packet: string, opts?: { onOutput?: (t: string) => void }) => {
      let r = next();
      // O packets (console output) come before the real reply, as the client delivers them.
      while (r.startsWith('O') && r.length > 1 && i < replies.length) {
        opts?.onOutput?.(Buffer.from(r.slice(1), 'hex').toString('utf8'));
        r = next();
      }
      return r;
    },
    request: async () => next(),
    requestMany: async (packets: readonly string[]) => packets.map(() => next()),
    exclusive: <T>(fn: () => Promise<T>) => fn(),
  };
  return fake as unknown as RspClient;
}

const hexish = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefxX'), maxLength: 64 }),
  fc.constantFrom('', 'OK', 'E22', 'E.no', 'l', 'm', 'mxyz', 'T05thread:zz;', 'T05thread:p1.-5;', 'T0', 'S05', 'W00', 'X09', 'QCzz', 'QC1', 'm1,2,,3', 'mq', 'vCont;c;C;s;S', 'O414243'),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.tuple(fc.constantFrom('PacketSize=', 'PacketSize=0;', 'PacketSize=ffffffffffff;', 'PacketSize=-1;', 'PacketSize=1;qXfer:features:read+', 'x;y+;z-;=', ';;;'), fc.string({ unit: 'binary-ascii', maxLength: 8 })).map(([a, b]) => a + b),
);

describe('fuzz: RSP framing and packet parsers', function () {
  this.timeout(600_000);
  const recorded = recordedStream();

  it(`QEMU's recorded replies, mutated and split anywhere: ${runsFor(8)} cases`, function () {
    const arb = fc.tuple(mutations(recorded.length, undefined, 6), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }));
    fuzz({ parser: 'rsp framing', property: 'mutated recorded stream', runs: runsFor(8) }, arb, ([ms, cuts], tally) => {
      const bytes = mutate(recorded, ms);
      const whole = new FrameParser().push(bytes);
      sane(whole);
      // However TCP splits the stream, the frames are the same.
      assert.deepEqual(parseSplit(bytes, cuts), whole);
      if (whole.some((e) => e.kind === 'bad-checksum')) tally.typed++;
      else tally.ok++;
    });
  });

  it(`generated streams of frames, escapes, run-length codes and noise: ${runsFor(30)} cases`, function () {
    const arb = fc.tuple(fc.array(frame, { maxLength: 24 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }));
    fuzz({ parser: 'rsp framing', property: 'generated frames', runs: runsFor(30) }, arb, ([frames, cuts], tally) => {
      const bytes = Buffer.from(frames.join(''), 'latin1');
      const whole = new FrameParser().push(bytes);
      sane(whole);
      assert.deepEqual(parseSplit(bytes, cuts), whole);
      if (whole.some((e) => e.kind === 'bad-checksum')) tally.typed++;
      else tally.ok++;
    });
  });

  it(`every payload we encode comes back whole, in any split: ${runsFor(20)} cases`, function () {
    const arb = fc.tuple(fc.array(fc.string({ unit: 'binary-ascii', maxLength: 200 }), { minLength: 1, maxLength: 8 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }));
    fuzz({ parser: 'rsp framing', property: 'encode/parse round trip', runs: runsFor(20) }, arb, ([payloads, cuts], tally) => {
      const events = parseSplit(Buffer.from(payloads.map(encodePacket).join(''), 'latin1'), cuts);
      assert.deepEqual(events, payloads.map((payload) => ({ kind: 'packet', payload })));
      tally.ok++;
    });
  });

  it(`decodeBody on any string: a string within MAX_FRAME, or a FramingError: ${runsFor(30)} cases`, function () {
    const arb = fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 80 }), fc.array(fc.constantFrom('a', '*', '}', '~', ' ', '#', '*~', 'a*~'), { maxLength: 60 }).map((p) => p.join('')));
    fuzz({ parser: 'rsp framing', property: 'decodeBody', runs: runsFor(30) }, arb, (raw, tally) => {
      try {
        assert.ok(decodeBody(raw).length <= MAX_FRAME);
        tally.ok++;
      } catch (e) {
        tally.error(e, (x) => (x instanceof FramingError ? undefined : 'not a FramingError'));
      }
    });
  });

  it('hand-made hostile frames: bad checksums, endless run-length codes, frames that never end', function () {
    const tally = new Tally();
    let cases = 0;
    const expect = (what: string, bytes: Buffer | string, chunk: number, check: (events: FrameEvent[]) => void): void => {
      cases++;
      hostile(tally, what, () => {
        const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
        const p = new FrameParser();
        const events: FrameEvent[] = [];
        for (let i = 0; i < b.length; i += chunk) events.push(...p.push(b.subarray(i, i + chunk)));
        sane(events);
        check(events);
      }, () => 'the frame parser threw');
    };
    const ok = encodePacket('OK');
    const kinds = (events: FrameEvent[]): string[] => events.map((e) => (e.kind === 'packet' ? `packet:${e.payload.slice(0, 8)}` : e.kind));
    expect('bad checksum, then a good frame', `$OK#00${ok}`, 3, (ev) => assert.deepEqual(kinds(ev), ['bad-checksum', 'packet:OK']));
    expect('checksum that is not hex', `$OK#zz${ok}`, 1, (ev) => assert.deepEqual(kinds(ev), ['bad-checksum', 'packet:OK']));
    const rleFirst = '*a';
    expect('run-length marker as the first byte (once escaped the parser)', `$${rleFirst}#${checksum(rleFirst).toString(16).padStart(2, '0')}${ok}`, 1000, (ev) => assert.deepEqual(kinds(ev), ['bad-checksum', 'packet:OK']));
    const trailingEscape = 'ab}';
    // The escape takes the # as data, so the frame runs on into the next one: one bad frame, no throw.
    expect('escape as the last byte', `$${trailingEscape}#${checksum(trailingEscape).toString(16).padStart(2, '0')}${ok}`, 7, (ev) => assert.deepEqual(kinds(ev), ['bad-checksum']));
    // 'a' then 200,000 '*~' pairs: each adds 97 copies, 19 MB in all from 400 KB on the wire.
    const endless = 'a' + '*~'.repeat(200_000);
    expect('run-length codes expanding to 19 MB', `$${endless}#${checksum(endless).toString(16).padStart(2, '0')}${ok}`, 65536, (ev) => assert.deepEqual(kinds(ev), ['bad-checksum', 'packet:OK']));
    const huge = Buffer.alloc(MAX_FRAME + 4096, 0x61);
    expect('a frame longer than MAX_FRAME, then a good one', Buffer.concat([Buffer.from('$'), huge, Buffer.from(`#00${ok}`)]), 4096, (ev) => assert.deepEqual(kinds(ev), ['bad-checksum', 'packet:OK']));
    expect('a frame that never ends (5 MB, no #)', Buffer.concat([Buffer.from('$'), Buffer.alloc(5 << 20, 0x62)]), 8192, (ev) => assert.deepEqual(kinds(ev), ['bad-checksum']));
    expect('a frame of nothing but escapes (2 MB), then a good one', Buffer.concat([Buffer.from('$'), Buffer.alloc(2 << 20, 0x7d), Buffer.from(`#00${ok}`)]), 65536, (ev) => assert.deepEqual(kinds(ev).slice(-1), ['packet:OK']));
    expect('an over-long frame ending in an escaped #, then a good one', Buffer.concat([Buffer.from('$'), huge, Buffer.from(`}##00${ok}`)]), 4096, (ev) => assert.deepEqual(kinds(ev), ['bad-checksum', 'packet:OK']));
    expect('a 256 KB frame in one-byte pushes', Buffer.from(encodePacket('x'.repeat(1 << 18)), 'latin1'), 1, (ev) => assert.deepEqual(kinds(ev), ['packet:xxxxxxxx']));
    record('rsp framing', 'hand-made hostile frames', cases, tally, 0);
    assert.equal(tally.ok, cases, tally.summary());
  });

  it(`packet parsers on arbitrary replies: ${runsFor(10)} cases`, async function () {
    const isRsp = (e: unknown): string | undefined => (e instanceof RspError ? undefined : 'not an RspError (crash)');
    const arb = fc.array(hexish, { minLength: 1, maxLength: 6 });
    await fuzzAsync({ parser: 'rsp packets', property: 'arbitrary replies', runs: runsFor(10) }, arb, async (replies, tally) => {
      const c = (): RspClient => scripted(replies);
      const calls: Array<() => Promise<unknown>> = [
        () => P.querySupported(c()).then((s) => assert.ok(s.packetSize >= P.MIN_PACKET_SIZE && s.packetSize <= P.MAX_PACKET_SIZE, `packetSize ${s.packetSize}`)),
        () => P.readFeatureDocument(c(), 'target.xml', 16),
        () => P.queryHaltReason(c()),
        () => P.readRegisterBlock(c()),
        () => P.readRegister(c(), 3),
        () => P.readMemory(c(), 0xffffffff81000000n, 37, 16),
        () => P.readMemoryPrefix(c(), 0xffffffff81000ff0n, 64, 16),
        () => P.readMemory(c(), 0n, 8, 0),
        () => P.listThreads(c()),
        () => P.currentThread(c()),
        () => P.queryVCont(c()),
        () => P.monitorCommand(c(), 'info registers'),
        () => P.setBreakpoints(c(), true, 'sw', [1n, 2n, 3n], 1),
        () => P.insertBreakpoint(c(), 'hw', 0x1000n, 1),
        () => P.writeMemory(c(), 0x1000n, Buffer.alloc(100, 1), 0),
        () => P.setQemuOption(c(), 'sstep', 7),
      ];
      for (const call of calls) await tally.stageAsync(call, isRsp);
      tally.endCase();
    });
  });

  it('a stub whose target description never ends, or whose thread list never ends, is refused', async function () {
    const tally = new Tally();
    const isRsp = (e: unknown): string | undefined => (e instanceof RspError ? undefined : 'not an RspError');
    await tally.stageAsync(() => P.readFeatureDocument(scripted(['m' + 'x'.repeat(0xffb)]), 'target.xml'), isRsp);
    await tally.stageAsync(() => P.listThreads(scripted(['m1,2'])), isRsp);
    await tally.stageAsync(() => P.querySupported(scripted(['PacketSize=0'])).then((s) => assert.equal(s.packetSize, P.MIN_PACKET_SIZE)), isRsp);
    tally.endCase();
    record('rsp packets', 'hand-made endless replies', 3, tally, 0);
    assert.equal(tally.typed, 1, tally.summary());
  });
});
