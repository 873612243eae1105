import * as assert from 'node:assert/strict';
import { checksum, decodeBody, encodePacket, type FrameEvent, FrameParser, FramingError } from '../../src/rsp/framing';
import { recorded, rawReply } from './fixture';

describe('rsp/framing', () => {
  it('parses every reply QEMU sent, with its checksum, split at any byte', () => {
    for (const ex of recorded.exchanges) {
      const bytes = Buffer.from(ex.receivedLatin1, 'latin1');
      for (const step of [1, 7, bytes.length]) {
        const p = new FrameParser();
        const events = [];
        for (let i = 0; i < bytes.length; i += step) events.push(...p.push(bytes.subarray(i, i + step)));
        assert.deepEqual(events.map((e) => e.kind), ['ack', 'packet'], `${ex.sent} in chunks of ${step}`);
      }
    }
  });

  it('decodes the qSupported reply to the fields QEMU 7.2 offers', () => {
    const [, pkt] = new FrameParser().push(rawReply('qSupported:multiprocess-;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386'));
    assert.equal(pkt.kind, 'packet');
    assert.ok(pkt.kind === 'packet' && pkt.payload.startsWith('PacketSize=1000;qXfer:features:read+'));
  });

  it('reports a frame whose checksum does not match', () => {
    const good = rawReply('?').slice(1); // "$T05thread:01;#07"
    const bad = good.replace(/#..$/, '#00');
    const events = new FrameParser().push(bad);
    assert.deepEqual(events, [{ kind: 'bad-checksum', raw: 'T05thread:01;' }]);
  });

  it('encodes packets the way QEMU accepts them', () => {
    // The same frames the capture script sent, which QEMU acked.
    assert.equal(encodePacket('g'), '$g#67');
    assert.equal(encodePacket('vCont?'), '$vCont?#49');
    assert.equal(checksum('qfThreadInfo').toString(16), 'bb');
  });

  it('escapes $ # } * in payloads and decodes them back', () => {
    const payload = 'a$b#c}d*e';
    const frame = encodePacket(payload);
    assert.equal(frame.slice(1, frame.indexOf('#', frame.length - 3)), 'a}\x04b}\x03c}]d}\x0ae');
    const events = new FrameParser().push(frame);
    assert.deepEqual(events, [{ kind: 'packet', payload }]);
  });

  it('expands run-length encoding (gdb manual example: "0* " is four zeros)', () => {
    assert.equal(decodeBody('0* '), '0000');
    assert.equal(decodeBody('x*"y'), 'xxxxxxy'); // '"' is 34: five more copies
  });

  it('rejects malformed run-length and escape sequences with a clear error', () => {
    assert.throws(() => decodeBody('*#'), FramingError);
    assert.throws(() => decodeBody('ab}'), /escape character at end/);
  });

  it('parses a stream of many frames in order, escapes included, however it is split', () => {
    // What a pipelined read brings: QEMU's recorded replies back to back, plus a frame whose
    // escaped byte is '#' (0x03 escaped), which must not end the frame.
    // Our encoder leaves 0x03 alone, but a stub may escape any byte.
    const raw = 'a}#b}]c';
    const escaped = `$${raw}#${checksum(raw).toString(16).padStart(2, '0')}`;
    const frames = [...recorded.exchanges.map((ex) => ex.receivedLatin1), escaped, ...recorded.exchanges.map((ex) => ex.receivedLatin1)];
    const stream = Buffer.from(frames.join(''), 'latin1');
    const whole = new FrameParser().push(stream);
    const payloads = (events: FrameEvent[]): string[] => events.flatMap((e) => (e.kind === 'packet' ? [e.payload] : []));
    const expected = payloads(whole);
    assert.equal(expected.length, recorded.exchanges.length * 2 + 1);
    assert.equal(expected[recorded.exchanges.length], 'a\x03b}c');
    for (const step of [1, 2, 3, 5, 64, 4097]) {
      const p = new FrameParser();
      const events: FrameEvent[] = [];
      for (let i = 0; i < stream.length; i += step) events.push(...p.push(stream.subarray(i, i + step)));
      assert.deepEqual(payloads(events), expected, `chunks of ${step}`);
      assert.equal(events.filter((e) => e.kind === 'bad-checksum').length, 0);
    }
  });

  it('skips noise between frames', () => {
    const events = new FrameParser().push('\x00garbage+$OK#9a');
    assert.deepEqual(events, [{ kind: 'ack' }, { kind: 'packet', payload: 'OK' }]);
  });
});
