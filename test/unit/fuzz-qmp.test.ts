/**
 * Fuzzing QMP decoding: what a real QEMU says on its QMP socket (captured at test time from
 * `qemu-system-x86_64 -qmp stdio`: greeting, replies, an error, events), mutated and split
 * anywhere; hand-made garbage (truncated or non-object JSON, `{"error": null}`, a 40 MB line
 * with no newline); and the same hostile lines through QmpClient on a real socket, where a
 * throw in the data handler would be an uncaught exception. Decoding never throws, splits
 * do not change the messages, and every message has the shape its kind promises.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { MAX_QMP_LINE, parseQmpLine, QmpClient, QmpDecoder, QmpError, type QmpMessage } from '../../src/qemu/qmp';
import { fuzz, hostile, mutate, mutations, record, runsFor, Tally } from './fuzzkit';

const COMMANDS = ['qmp_capabilities', 'query-status', 'query-version', 'no-such-command', 'stop', 'cont', 'query-commands', 'query-kvm', 'quit'];

/** A real QEMU's QMP output, or (without QEMU) lines of the same shapes as QEMU 7.2 writes them. */
function qmpTranscript(): string {
  try {
    const input = COMMANDS.map((c) => JSON.stringify({ execute: c }) + '\n').join('');
    return execFileSync('qemu-system-x86_64', ['-M', 'none', '-display', 'none', '-nodefaults', '-qmp', 'stdio'], { input, encoding: 'utf8', timeout: 20_000 });
  } catch {
    return [
      '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}',
      '{"return": {}}',
      '{"return": {"status": "running", "singlestep": false, "running": true}}',
      '{"error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}}',
      '{"timestamp": {"seconds": 1700000000, "microseconds": 1}, "event": "STOP"}',
      '{"return": {}}',
      '{"timestamp": {"seconds": 1700000000, "microseconds": 2}, "event": "RESUME"}',
      '{"return": [{"name": "device_add"}, {"name": "cont"}]}',
    ].join('\r\n') + '\r\n';
  }
}

/** Each kind keeps its promise: what QmpClient hands on is shaped as its type says. */
function wellShaped(m: QmpMessage): void {
  switch (m.kind) {
    case 'greeting':
      assert.ok(typeof m.greeting === 'object' && m.greeting !== null && !Array.isArray(m.greeting));
      break;
    case 'event':
      assert.equal(typeof m.event.event, 'string');
      if (m.event.data !== undefined) assert.ok(typeof m.event.data === 'object' && m.event.data !== null && !Array.isArray(m.event.data));
      break;
    case 'error':
      assert.equal(typeof m.errorClass, 'string');
      assert.equal(typeof m.desc, 'string');
      break;
    case 'return':
      break;
  }
}

function decodeSplit(text: string, cuts: readonly number[]): QmpMessage[] {
  const d = new QmpDecoder();
  const at = [...new Set(cuts.map((c) => Math.floor(c * text.length)))].sort((a, b) => a - b);
  const out: QmpMessage[] = [];
  let from = 0;
  for (const c of [...at, text.length]) {
    out.push(...d.push(text.slice(from, c)));
    from = c;
  }
  return out;
}

const HOSTILE_LINES = [
  '{"return"',
  '{"QMP": ',
  'null',
  '3',
  '"just a string"',
  '[]',
  '[{"return": {}}]',
  'true',
  '{}',
  '{"error": null}',
  '{"error": 5}',
  '{"error": {"class": 7, "desc": ["x"]}}',
  '{"event": 5}',
  '{"event": null, "data": 3}',
  '{"event": "STOP", "data": [1, 2]}',
  '{"return": {}, "error": {"class": "GenericError"}}',
  '{"__proto__": {"QMP": 1}}',
  '{"constructor": {"prototype": {"QMP": 1}}}',
  '\u0000\u0001\u00ff',
  '{"return": "\ud800"}',
  '[' .repeat(100_000) + ']'.repeat(100_000),
  '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000),
];

describe('fuzz: QMP decoding', function () {
  this.timeout(600_000);
  const transcript = qmpTranscript();

  it('decodes the real transcript into the replies and events QEMU sent', () => {
    const msgs = new QmpDecoder().push(transcript);
    assert.equal(msgs[0]?.kind, 'greeting');
    assert.ok(msgs.some((m) => m.kind === 'error' && m.errorClass === 'CommandNotFound'), JSON.stringify(msgs.map((m) => m.kind)));
    assert.ok(msgs.filter((m) => m.kind === 'return').length >= 5);
  });

  it(`the real transcript, mutated and split anywhere: ${runsFor(20)} cases`, function () {
    const bytes = Buffer.from(transcript, 'utf8');
    const arb = fc.tuple(mutations(bytes.length, undefined, 6), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 }));
    fuzz({ parser: 'qmp', property: 'mutated transcript', runs: runsFor(20) }, arb, ([ms, cuts], tally) => {
      const text = mutate(bytes, ms).toString('utf8');
      const whole = new QmpDecoder().push(text);
      whole.forEach(wellShaped);
      assert.deepEqual(decodeSplit(text, cuts), whole);
      if (whole.length < transcript.split('\n').length - 1) tally.typed++;
      else tally.ok++;
    });
  });

  it(`arbitrary lines and JSON values: ${runsFor(20)} cases`, function () {
    const line = fc.oneof(fc.string({ maxLength: 60 }), fc.json({ maxDepth: 4 }), fc.constantFrom(...HOSTILE_LINES.slice(0, -2)), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ return: v })), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ error: v })), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ event: v, data: v })));
    const arb = fc.tuple(fc.array(line, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }));
    fuzz({ parser: 'qmp', property: 'arbitrary lines', runs: runsFor(20) }, arb, ([lines, eol, cuts], tally) => {
      const text = lines.join(eol) + eol;
      const whole = new QmpDecoder().push(text);
      whole.forEach(wellShaped);
      assert.deepEqual(decodeSplit(text, cuts), whole);
      for (const l of lines) {
        const m = parseQmpLine(l);
        if (m) wellShaped(m);
      }
      tally.ok++;
    });
  });

  it('hand-made hostile input: garbage, deep nesting, lines past MAX_QMP_LINE', () => {
    const tally = new Tally();
    let cases = 0;
    const never = (): string => 'QMP decoding threw';
    for (const l of HOSTILE_LINES) {
      cases++;
      hostile(tally, `line ${JSON.stringify(l.slice(0, 20))}`, () => {
        const m = parseQmpLine(l);
        if (m) wellShaped(m);
        const after = new QmpDecoder().push(`${l}\n{"return": 1}\n`);
        assert.deepEqual(after[after.length - 1], { kind: 'return', value: 1 });
      }, never);
    }
    const huge = 'x'.repeat(MAX_QMP_LINE + 1024);
    cases++;
    hostile(tally, 'a 32 MB line with no newline, fed in 64 KB chunks, then a good line', () => {
      const d = new QmpDecoder();
      const out: QmpMessage[] = [];
      for (let i = 0; i < huge.length; i += 65536) out.push(...d.push(huge.slice(i, i + 65536)));
      out.push(...d.push('\n{"return": 2}\n'));
      assert.deepEqual(out, [{ kind: 'return', value: 2 }]);
      assert.equal(d.dropped, 1);
    }, never);
    cases++;
    hostile(tally, 'a line of 200,000 one-character chunks', () => {
      const d = new QmpDecoder();
      const line = JSON.stringify({ return: 'y'.repeat(200_000) });
      const out: QmpMessage[] = [];
      for (const ch of line) out.push(...d.push(ch));
      out.push(...d.push('\n'));
      assert.equal(out.length, 1);
    }, never);
    record('qmp', 'hand-made hostile lines', cases, tally, 0);
    assert.equal(tally.ok, cases, tally.summary());
  });

  it('QmpClient on a real socket survives hostile lines and still answers commands', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-fuzz-qmp-'));
    const sock = path.join(dir, 'qmp');
    const server = net.createServer((s) => {
      s.write(transcript.split('\n')[0] + '\n');
      s.on('data', (d) => {
        for (const line of d.toString('utf8').split('\n').filter(Boolean)) {
          const cmd = (JSON.parse(line) as { execute: string }).execute;
          // Garbage, then the answer: a decoder that threw on the garbage would never get to it.
          s.write(HOSTILE_LINES.slice(0, -2).join('\n') + '\n');
          s.write(cmd === 'bad' ? '{"error": {"class": "GenericError", "desc": "no"}}\n' : '{"return": {"ok": true}}\n');
        }
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
    const socket = net.connect(sock);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    const client = new QmpClient(socket);
    try {
      await client.greeting;
      // The garbage before each answer includes `{"error": null}` and `{"return": ...}` lines,
      // which are replies too: the client pairs them with commands in order, as QMP says.
      const results = await Promise.allSettled(['a', 'bad', 'c'].map((c) => client.execute(c)));
      for (const r of results) assert.ok(r.status === 'fulfilled' || r.reason instanceof QmpError, String(r.status === 'rejected' ? r.reason : ''));
      record('qmp', 'QmpClient over a socket', results.length, Object.assign(new Tally(), { ok: results.length }), 0);
    } finally {
      client.close();
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
