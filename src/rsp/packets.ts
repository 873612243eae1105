/**
 * One small typed function per packet family, so raw packet strings never leave rsp/.
 * Addresses are bigint: guest kernels live at the top of the 64-bit space.
 */
import { RspClient, type Prelude } from './client';
import { errorFromReply, RspProtocolError, RspUnsupported } from './errors';
import { MAX_FRAME } from './framing';
import { parseThreadId, StopReply, parseStopReply, isStopReply } from './stop';

export const hex = (n: bigint | number): string => n.toString(16);

export interface StubFeatures {
  packetSize: number;
  features: Map<string, string | boolean>;
}

/** qSupported: learn PacketSize and the stub's features. */
export async function querySupported(c: RspClient, ours: string[] = ['multiprocess-', 'swbreak+', 'hwbreak+', 'vContSupported+', 'xmlRegisters=i386']): Promise<StubFeatures> {
  const packet = `qSupported:${ours.join(';')}`;
  const reply = await c.command(packet);
  if (reply === '') throw new RspUnsupported(packet);
  const features = new Map<string, string | boolean>();
  for (const item of reply.split(';')) {
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq >= 0) features.set(item.slice(0, eq), item.slice(eq + 1));
    else if (item.endsWith('+')) features.set(item.slice(0, -1), true);
    else if (item.endsWith('-')) features.set(item.slice(0, -1), false);
    else features.set(item, true);
  }
  const size = features.get('PacketSize');
  // gdb's default when the stub is silent about it.
  let packetSize = 400;
  if (typeof size === 'string') {
    if (!/^[0-9a-fA-F]{1,16}$/.test(size)) throw new RspProtocolError(packet, `PacketSize '${size.slice(0, 20)}' is not a hex number`);
    // Memory reads are sized from it: 0 would split a read into endless empty requests, and
    // a huge one asks for replies the frame parser refuses (MAX_FRAME).
    packetSize = Math.min(MAX_PACKET_SIZE, Math.max(MIN_PACKET_SIZE, parseInt(size, 16)));
  }
  return { packetSize, features };
}

/** The PacketSize range we use, whatever a stub claims: gdb's floor, and a ceiling well under MAX_FRAME. */
export const MIN_PACKET_SIZE = 20;
export const MAX_PACKET_SIZE = MAX_FRAME >> 2;
/** A target description larger than this is a stub that never says `l`. */
const MAX_FEATURE_DOCUMENT = 16 << 20;
const MAX_FEATURE_REQUESTS = 4096;

/** qXfer:features:read — fetch one target-description document, chunk by chunk. */
export async function readFeatureDocument(c: RspClient, annex: string, chunk = 0xffb): Promise<string> {
  let out = '';
  for (let offset = 0, requests = 0; ; requests++) {
    const packet = `qXfer:features:read:${annex}:${hex(offset)},${hex(chunk)}`;
    // A stub that answers a byte at a time forever would otherwise be asked forever.
    if (requests >= MAX_FEATURE_REQUESTS) throw new RspProtocolError(packet, `${annex} not complete after ${MAX_FEATURE_REQUESTS} requests`);
    const reply = await c.command(packet);
    if (reply === '') throw new RspUnsupported(packet);
    if (reply[0] !== 'm' && reply[0] !== 'l') throw new RspProtocolError(packet, `expected m or l, got '${reply.slice(0, 10)}'`);
    out += reply.slice(1);
    offset += reply.length - 1;
    if (reply[0] === 'l' || reply.length === 1) return out;
    if (out.length > MAX_FEATURE_DOCUMENT) throw new RspProtocolError(packet, `${annex} grows past ${MAX_FEATURE_DOCUMENT} bytes without an 'l' reply`);
  }
}

/** `?`: why the target is stopped now. */
export async function queryHaltReason(c: RspClient): Promise<StopReply> {
  const reply = await c.command('?');
  if (!isStopReply(reply)) throw new RspProtocolError('?', `not a stop reply: '${reply.slice(0, 40)}'`);
  return shaped('?', () => parseStopReply(reply));
}

/** `g`: every register the stub sends in one block, raw target-endian bytes. */
export async function readRegisterBlock(c: RspClient): Promise<Buffer> {
  const reply = await c.command('g');
  return parseHexBytes('g', reply);
}

/** `p n`: one register, raw bytes. */
export async function readRegister(c: RspClient, regnum: number): Promise<Buffer> {
  const packet = `p${hex(regnum)}`;
  const reply = await c.command(packet);
  if (reply === '') throw new RspUnsupported(packet);
  return parseHexBytes(packet, reply);
}

/** `P n=v`: write one register. QEMU's `G` is unreliable outside long mode, so we only use `P`. */
export async function writeRegister(c: RspClient, regnum: number, value: Buffer): Promise<void> {
  const packet = `P${hex(regnum)}=${value.toString('hex')}`;
  expectOk(packet, await c.command(packet));
}

/** `m` packets for [addr, addr+length), each at most `maxChunk` bytes. */
function readPackets(addr: bigint, length: number, maxChunk: number): Array<{ packet: string; at: number; n: number }> {
  const out: Array<{ packet: string; at: number; n: number }> = [];
  // A chunk below one byte (PacketSize 0 or 1 halved) would never advance.
  maxChunk = Math.max(1, Math.floor(maxChunk) || 1);
  for (let at = 0; at < length; at += maxChunk) {
    const n = Math.min(maxChunk, length - at);
    out.push({ packet: `m${hex(addr + BigInt(at))},${hex(n)}`, at, n });
  }
  return out;
}

/** One `m` reply's bytes, or the error it carries. */
function memoryReply(packet: string, reply: string, n: number): Buffer | Error {
  const err = errorFromReply(packet, reply);
  if (err) return err;
  if (reply === '') return new RspProtocolError(packet, 'empty memory reply');
  const bytes = parseHexBytes(packet, reply);
  if (bytes.length > n) return new RspProtocolError(packet, `${bytes.length} bytes in reply to a read of ${n}`);
  return bytes;
}

/** `m`: read guest memory, split into requests the stub accepts and sent pipelined. */
export async function readMemory(c: RspClient, addr: bigint, length: number, maxChunk: number): Promise<Buffer> {
  const reads = readPackets(addr, length, maxChunk);
  const replies = reads.length === 1 ? [await c.request(reads[0].packet)] : await c.requestMany(reads.map((r) => r.packet));
  const parts: Buffer[] = [];
  for (let i = 0; i < reads.length; i++) {
    const bytes = memoryReply(reads[i].packet, replies[i], reads[i].n);
    if (bytes instanceof Error) throw bytes;
    parts.push(bytes);
    // A stub may answer with fewer bytes than asked; the rest of that chunk is asked again.
    if (bytes.length < reads[i].n) parts.push(await readMemory(c, addr + BigInt(reads[i].at + bytes.length), reads[i].n - bytes.length, maxChunk));
  }
  return Buffer.concat(parts);
}

/**
 * Several ranges in one pipelined run of `m` packets (16 unanswered at a time: deeper, QEMU stalls more often than it gains): many small
 * objects, such as every task's fields, cost the stub's work rather than a round trip each.
 * Each range comes back whole, or undefined when any of its packets failed or fell short.
 */
export async function readMemoryMany(c: RspClient, ranges: ReadonlyArray<readonly [bigint, number]>, maxChunk: number): Promise<Array<Buffer | undefined>> {
  const plan = ranges.map(([addr, length]) => readPackets(addr, length, maxChunk));
  const replies = await c.requestMany(plan.flat().map((r) => r.packet), 16);
  let k = 0;
  return plan.map((reads) => {
    const parts: Buffer[] = [];
    let whole = true;
    for (const r of reads) {
      const bytes = memoryReply(r.packet, replies[k++], r.n);
      if (bytes instanceof Error || bytes.length !== r.n) whole = false;
      else parts.push(bytes);
    }
    return whole ? Buffer.concat(parts) : undefined;
  });
}

/**
 * As much of [addr, addr+length) as is readable from its start: the chunks up to the first
 * that fails, then that chunk page by page, so a read running into an unmapped page returns
 * the bytes before the hole.
 */
export async function readMemoryPrefix(c: RspClient, addr: bigint, length: number, maxChunk: number): Promise<Buffer> {
  const reads = readPackets(addr, length, maxChunk);
  const replies = reads.length === 1 ? [await c.request(reads[0].packet)] : await c.requestMany(reads.map((r) => r.packet));
  const parts: Buffer[] = [];
  for (let i = 0; i < reads.length; i++) {
    const bytes = memoryReply(reads[i].packet, replies[i], reads[i].n);
    if (!(bytes instanceof Error) && bytes.length === reads[i].n) {
      parts.push(bytes);
      continue;
    }
    const at = addr + BigInt(reads[i].at);
    const pageEnd = Number(((at | 0xfffn) + 1n) - at);
    if (pageEnd < reads[i].n) {
      const head = await readMemory(c, at, pageEnd, maxChunk).catch(() => undefined);
      if (head) parts.push(head, await readMemoryPrefix(c, at + BigInt(pageEnd), length - reads[i].at - pageEnd, maxChunk));
    }
    break;
  }
  return Buffer.concat(parts);
}

/** `M`: write guest memory, split so each packet fits the stub's PacketSize. */
export async function writeMemory(c: RspClient, addr: bigint, data: Buffer, packetSize: number): Promise<void> {
  const header = 40;
  const chunk = Math.max(1, Math.floor((packetSize - header) / 2));
  for (let done = 0; done < data.length; done += chunk) {
    const part = data.subarray(done, done + chunk);
    const packet = `M${hex(addr + BigInt(done))},${hex(part.length)}:${part.toString('hex')}`;
    expectOk(packet, await c.command(packet));
  }
}

export type BreakpointType = 'sw' | 'hw' | 'write' | 'read' | 'access';
const Z_TYPE: Record<BreakpointType, number> = { sw: 0, hw: 1, write: 2, read: 3, access: 4 };

/** `Z`: insert a breakpoint or watchpoint. `kind` is the arch's breakpoint kind or watch length. */
export async function insertBreakpoint(c: RspClient, type: BreakpointType, addr: bigint, kind: number): Promise<void> {
  const packet = `Z${Z_TYPE[type]},${hex(addr)},${hex(kind)}`;
  const reply = await c.command(packet);
  if (reply === '') throw new RspUnsupported(packet);
  expectOk(packet, reply);
}

/** What a `Z`/`z` reply means: undefined for OK, else the error to raise. */
function breakpointReply(packet: string, reply: string): Error | undefined {
  if (reply === '') return new RspUnsupported(packet);
  const err = errorFromReply(packet, reply);
  if (err) return err;
  return reply === 'OK' ? undefined : new RspProtocolError(packet, `expected OK, got '${reply.slice(0, 20)}'`);
}

/**
 * `Z` or `z` for several addresses in one pipelined exchange (a step's temporary breakpoints
 * go in and out together). Each address gets its own outcome: undefined for OK, or the error.
 */
export async function setBreakpoints(c: RspClient, insert: boolean, type: BreakpointType, addrs: readonly bigint[], kind: number): Promise<Array<Error | undefined>> {
  const packets = addrs.map((a) => `${insert ? 'Z' : 'z'}${Z_TYPE[type]},${hex(a)},${hex(kind)}`);
  const replies = packets.length === 1 ? [await c.request(packets[0])] : await c.requestMany(packets);
  return replies.map((r, i) => breakpointReply(packets[i], r));
}

/** `z`: remove a breakpoint or watchpoint. */
export async function removeBreakpoint(c: RspClient, type: BreakpointType, addr: bigint, kind: number): Promise<void> {
  const packet = `z${Z_TYPE[type]},${hex(addr)},${hex(kind)}`;
  const reply = await c.command(packet);
  if (reply === '') throw new RspUnsupported(packet);
  expectOk(packet, reply);
}

/** `qfThreadInfo`/`qsThreadInfo`: the thread ids (one per vCPU on QEMU). */
export async function listThreads(c: RspClient): Promise<number[]> {
  const ids: number[] = [];
  let reply = await c.command('qfThreadInfo');
  for (let guard = 0; guard < 4096; guard++) {
    if (reply === 'l' || reply === '') return ids;
    if (reply[0] !== 'm') throw new RspProtocolError('qfThreadInfo', `expected m or l, got '${reply}'`);
    for (const id of reply.slice(1).split(',')) if (id) ids.push(shaped('qfThreadInfo', () => parseThreadId(id)));
    reply = await c.command('qsThreadInfo');
  }
  throw new RspProtocolError('qsThreadInfo', 'thread list did not end');
}

/** `Hg`/`Hc`: select the thread later `g`, `p` and `m` (Hg) or resumes (Hc) apply to. */
export async function selectThread(c: RspClient, op: 'g' | 'c', tid: number): Promise<void> {
  const packet = `H${op}${tid < 0 ? '-1' : hex(tid)}`;
  expectOk(packet, await c.command(packet));
}

/** `qC`: the current thread. */
export async function currentThread(c: RspClient): Promise<number | undefined> {
  const reply = await c.command('qC');
  return reply.startsWith('QC') ? shaped('qC', () => parseThreadId(reply.slice(2))) : undefined;
}

/** `vCont?`: which vCont actions the stub supports. */
export async function queryVCont(c: RspClient): Promise<Set<string>> {
  const reply = await c.command('vCont?');
  if (!reply.startsWith('vCont')) return new Set();
  return new Set(reply.slice(5).split(';').filter(Boolean));
}

/** Step one instruction on `tid`, leaving the other vCPUs stopped. */
export function stepThread(c: RspClient, tid: number, vcont: boolean, prelude?: readonly Prelude[]): Promise<StopReply> {
  return c.resume(vcont ? `vCont;s:${hex(tid)}` : 's', prelude);
}

/** Continue every vCPU; when vCont is known, name the thread so QEMU keeps its selection. */
export function continueThreads(c: RspClient, tid: number | undefined, vcont: boolean, prelude?: readonly Prelude[]): Promise<StopReply> {
  return c.resume(vcont ? (tid !== undefined ? `vCont;c:${hex(tid)};c` : 'vCont;c') : 'c', prelude);
}

/** `Z`/`z` for one breakpoint, as a resume's prelude; `onReply` gets undefined or the error. */
export function breakpointPrelude(insert: boolean, type: BreakpointType, addr: bigint, kind: number, onReply: (err: Error | undefined) => void): Prelude {
  const packet = `${insert ? 'Z' : 'z'}${Z_TYPE[type]},${hex(addr)},${hex(kind)}`;
  return { packet, onReply: (reply) => onReply(breakpointReply(packet, reply)) };
}

/** `qRcmd`: run a monitor command; its output comes back in `O` packets before `OK`. */
export async function monitorCommand(c: RspClient, command: string): Promise<string> {
  let output = '';
  const packet = `qRcmd,${Buffer.from(command, 'utf8').toString('hex')}`;
  const reply = await c.command(packet, { onOutput: (t) => (output += t) });
  if (reply === '') throw new RspUnsupported(packet);
  if (reply !== 'OK') output += Buffer.from(reply, 'hex').toString('utf8');
  return output;
}

/** QEMU's `Qqemu.sstep` and `Qqemu.PhyMemMode` settings. */
export async function setQemuOption(c: RspClient, name: 'sstep' | 'PhyMemMode', value: number): Promise<void> {
  const packet = name === 'sstep' ? `Qqemu.sstep=${hex(value)}` : `Qqemu.PhyMemMode:${value}`;
  const reply = await c.command(packet);
  if (reply === '') throw new RspUnsupported(packet);
  expectOk(packet, reply);
}

/**
 * Run `fn` with QEMU's gdbstub reading and writing physical addresses (`Qqemu.PhyMemMode`),
 * switching back afterwards even on failure. Nothing else is sent in between.
 */
export function withPhysicalMemory<T>(c: RspClient, fn: () => Promise<T>): Promise<T> {
  return c.exclusive(async () => {
    await setQemuOption(c, 'PhyMemMode', 1);
    try {
      return await fn();
    } finally {
      await setQemuOption(c, 'PhyMemMode', 0);
    }
  });
}

/** `D`: detach, leaving the target running. */
export async function detach(c: RspClient): Promise<void> {
  expectOk('D', await c.command('D'));
}

/** A reply parser's plain Error (a bad thread id) as the RspProtocolError callers handle. */
function shaped<T>(packet: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof RspProtocolError || !(e instanceof Error)) throw e;
    throw new RspProtocolError(packet, e.message);
  }
}

function expectOk(packet: string, reply: string): void {
  if (reply === '') throw new RspUnsupported(packet);
  if (reply !== 'OK') throw new RspProtocolError(packet, `expected OK, got '${reply.slice(0, 20)}'`);
}

function parseHexBytes(packet: string, reply: string): Buffer {
  // QEMU marks unavailable register bytes with 'x'; they read as zero.
  const clean = reply.includes('x') ? reply.replace(/x/g, '0') : reply;
  // Buffer.from stops at the first non-hex pair, so a short result means bad data.
  const bytes = Buffer.from(clean, 'hex');
  if (bytes.length * 2 !== clean.length) throw new RspProtocolError(packet, `not hex data: '${reply.slice(0, 20)}'`);
  return bytes;
}
