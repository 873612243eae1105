/**
 * A recorded QEMU gdbstub exchange for one guest arch (scripts/capture-rsp-fixture.mjs ARCH):
 * the target description as the client fetches it, and each register's reset value as QEMU
 * sent it, from the `g` block and from `p`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FrameParser } from '../../src/rsp/framing';
import { parseTargetDescription, splitRegisterBlock, type TargetDescription } from '../../src/rsp/targetxml';
import { leToBigInt } from '../../src/engine/target';
import type { Exchange } from './fixture';

export interface Recording {
  qemu: string;
  machine: string;
  exchanges: Exchange[];
  /** The payload of the reply to `sent` (run-length encoding expanded, as the client sees it). */
  payload(sent: string): string;
  /** A feature document reassembled from its qXfer chunks. */
  fetch(annex: string): Promise<string>;
}

export function recording(name: string): Recording {
  const file = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', `${name}.json`);
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as { qemu: string; machine: string; exchanges: Exchange[] };
  const payload = (sent: string): string => {
    const e = data.exchanges.find((x) => x.sent === sent);
    if (!e) throw new Error(`${name} has no exchange for '${sent}'`);
    const ev = new FrameParser().push(e.receivedLatin1).find((x) => x.kind === 'packet');
    if (!ev || ev.kind !== 'packet') throw new Error(`${name}: no packet in the reply to ${sent}`);
    return ev.payload;
  };
  const fetch = async (annex: string): Promise<string> => {
    let out = '';
    for (const ex of data.exchanges.filter((e) => e.sent.startsWith(`qXfer:features:read:${annex}:`))) {
      const p = payload(ex.sent);
      if (p[0] !== 'm' && p[0] !== 'l') throw new Error(`${annex}: ${p}`);
      out += p.slice(1);
    }
    return out;
  };
  return { ...data, payload, fetch };
}

export interface ResetState {
  desc: TargetDescription;
  /** Register values from the `g` block. */
  block: Map<string, bigint>;
  /** Register values from `p`, for every register QEMU could read (the odd pmpcfg fails on RV64). */
  p: Map<string, bigint>;
  /** Names whose `p` read QEMU refused, with its error. */
  refused: Map<string, string>;
}

export async function resetState(rec: Recording): Promise<ResetState> {
  const desc = await parseTargetDescription('target.xml', rec.fetch);
  const split = splitRegisterBlock(desc.registers, Buffer.from(rec.payload('g'), 'hex'));
  const block = new Map<string, bigint>();
  const p = new Map<string, bigint>();
  const refused = new Map<string, string>();
  for (const r of desc.registers) {
    const b = split.get(r.regnum);
    if (b) block.set(r.name, leToBigInt(b));
    const reply = rec.payload(`p${r.regnum.toString(16)}`);
    if (/^E[0-9a-f]{2}$/i.test(reply)) refused.set(r.name, reply);
    else p.set(r.name, leToBigInt(Buffer.from(reply, 'hex')));
  }
  return { desc, block, p, refused };
}
