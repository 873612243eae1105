/** The recorded QEMU gdbstub exchange (scripts/capture-rsp-fixture.mjs). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FrameParser } from '../../src/rsp/framing';

export interface Exchange {
  sent: string;
  receivedLatin1: string;
}

const file = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'qemu-x86_64-gdbstub.json');
export const recorded = JSON.parse(fs.readFileSync(file, 'utf8')) as { qemu: string; exchanges: Exchange[] };

export function rawReply(sent: string): string {
  const e = recorded.exchanges.find((x) => x.sent === sent);
  if (!e) throw new Error(`fixture has no exchange for '${sent}'`);
  return e.receivedLatin1;
}

/** The payload of the recorded reply to `sent`. */
export function payload(sent: string): string {
  const ev = new FrameParser().push(rawReply(sent)).find((e) => e.kind === 'packet');
  if (!ev || ev.kind !== 'packet') throw new Error(`no packet for ${sent}`);
  return ev.payload;
}

/** Serve annexes from the recorded qXfer replies, reassembling chunks as the client would. */
export async function fetchRecorded(annex: string): Promise<string> {
  let out = '';
  for (const ex of recorded.exchanges.filter((e) => e.sent.startsWith(`qXfer:features:read:${annex}:`))) {
    const p = payload(ex.sent);
    if (p[0] !== 'm' && p[0] !== 'l') throw new Error(`${annex}: ${p}`);
    out += p.slice(1);
  }
  return out;
}

/** A packet frame with its checksum, as the stub would send it. */
export function frame(p: string): string {
  let sum = 0;
  for (const ch of p) sum = (sum + ch.charCodeAt(0)) & 0xff;
  return `$${p}#${sum.toString(16).padStart(2, '0')}`;
}

/** The recorded x86_64 `g` reply with `bytes` written over it at byte `at` (rip is at 128, eflags at 136). */
export function gReplyWith(at: number, bytes: Buffer): string {
  const p = payload('g');
  return frame(p.slice(0, at * 2) + bytes.toString('hex') + p.slice((at + bytes.length) * 2));
}
