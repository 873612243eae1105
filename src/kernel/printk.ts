/**
 * The kernel log from guest memory: the lockless printk ring of 5.10+ (`prb`, kernel/printk/
 * printk_ringbuffer.h), read as scripts/gdb's lx-dmesg reads it, so it works when the console
 * is broken or not up yet. A descriptor ring (state and text position per record) beside an
 * info array (sequence, timestamp, level, length) and a text ring in which each record's
 * bytes follow its descriptor id. Offsets come from this kernel's DWARF.
 */
import { LayoutError, readUint, StructLayout, type KernelAccess } from './layout';

export interface LogRecord {
  seq: bigint;
  /** Nanoseconds since boot. */
  tsNsec: bigint;
  /** Syslog level 0 (emerg) to 7 (debug). */
  level: number;
  /** `T<pid>` or `C<cpu>` (the caller id printk records). */
  caller: string;
  text: string;
}

/** Functions of the units that define the ring's types (printk.c; the ring's own file). */
const NEAR = ['vprintk_store', 'prb_read_valid', 'prb_reserve', 'printk_get_next_message'];

/** A descriptor's state in the top two bits of its state word. */
const DESC_COMMITTED = 1n;
const DESC_FINALIZED = 2n;

/** Every record the ring still holds, oldest first. */
export async function readKernelLog(access: KernelAccess): Promise<LogRecord[]> {
  const ps = access.pointerSize;
  const prbVar = access.symbol('prb');
  if (prbVar === undefined) throw new LayoutError('this kernel has no printk ring (`prb`; it needs Linux 5.10 or later)');
  const ring = await StructLayout.of(access, 'struct printk_ringbuffer', NEAR);
  const descT = await StructLayout.of(access, 'struct prb_desc', NEAR);
  const infoT = await StructLayout.of(access, 'struct printk_info', NEAR);
  const prb = readUint(await access.read(prbVar, ps), 0, ps);
  const rb = await access.read(prb, ring.size);
  const u = (path: string, size = ps): bigint => readUint(rb, ring.offset(path), size);
  const count = 1n << u('desc_ring.count_bits', 4);
  const descs = u('desc_ring.descs');
  const infos = u('desc_ring.infos');
  const head = u('desc_ring.head_id');
  const tail = u('desc_ring.tail_id');
  const textSize = 1n << u('text_data_ring.size_bits', 4);
  const textAddr = u('text_data_ring.data');
  const flagsShift = BigInt(ps * 8 - 2);
  const idMask = (1n << flagsShift) - 1n;
  // Only the live records, not the whole ring (4096 descriptors and 88-byte infos for a
  // 128 KiB log): their descriptors and infos from tail to head, then the text they point
  // at, in two pipelined batches.
  const live = Number(((head - tail) & idMask) % count) + 1;
  const first = Number(tail % count);
  const wrap = (base: bigint, size: number): Array<readonly [bigint, number]> => {
    const a = Math.min(live, Number(count) - first);
    const out: Array<readonly [bigint, number]> = [[base + BigInt(first * size), a * size]];
    if (live > a) out.push([base, (live - a) * size]);
    return out;
  };
  const dRanges = wrap(descs, descT.size);
  const iRanges = wrap(infos, infoT.size);
  const got = await access.readMany([...dRanges, ...iRanges]);
  if (got.some((b) => !b)) throw new LayoutError('the printk ring\'s descriptors cannot be read at this stop');
  const descBuf = Buffer.concat(got.slice(0, dRanges.length) as Buffer[]);
  const infoBuf = Buffer.concat(got.slice(dRanges.length) as Buffer[]);
  const slot = (id: bigint): number => (Number(id % count) - first + Number(count)) % Number(count);
  // Each record's text block, then one read per run of overlapping or touching blocks.
  const blocks: Array<[number, number]> = [];
  for (let id = tail, n = 0; n < live; n++, id = (id + 1n) & idMask) {
    const d = slot(id) * descT.size;
    let begin = readUint(descBuf, d + descT.offset('text_blk_lpos.begin'), ps) % textSize;
    const end = readUint(descBuf, d + descT.offset('text_blk_lpos.next'), ps) % textSize;
    if ((begin & 1n) !== 0n) continue;
    if (begin > end) begin = 0n;
    blocks.push([Number(begin), Number(end)]);
  }
  blocks.sort((a, b) => a[0] - b[0]);
  const runs: Array<[number, number]> = [];
  for (const b of blocks) {
    const last = runs[runs.length - 1];
    if (last && b[0] <= last[1]) last[1] = Math.max(last[1], b[1]);
    else runs.push([b[0], b[1]]);
  }
  const texts = await access.readMany(runs.map(([a, z]) => [textAddr + BigInt(a), z - a] as const));
  const textAt = (start: number, len: number): string => {
    const i = runs.findIndex(([a, z]) => start >= a && start + len <= z);
    const t = i >= 0 ? texts[i] : undefined;
    return t ? t.toString('utf8', start - runs[i][0], start - runs[i][0] + len) : '';
  };
  const out: LogRecord[] = [];
  const levelField = infoT.has('level') ? infoT.field('level') : undefined;
  for (let id = tail, n = 0; n < live; n++, id = (id + 1n) & idMask) {
    const d = slot(id) * descT.size;
    const state = (readUint(descBuf, d + descT.offset('state_var'), ps) >> flagsShift) & 3n;
    if (state !== DESC_COMMITTED && state !== DESC_FINALIZED) continue;
    const o = slot(id) * infoT.size;
    const len = Number(readUint(infoBuf, o + infoT.offset('text_len'), 2));
    let begin = readUint(descBuf, d + descT.offset('text_blk_lpos.begin'), ps) % textSize;
    const end = readUint(descBuf, d + descT.offset('text_blk_lpos.next'), ps) % textSize;
    let body = '';
    // An odd begin is a record without text; a block that wraps starts again at 0.
    if ((begin & 1n) === 0n) {
      if (begin > end) begin = 0n;
      const start = Number(begin) + ps;
      body = textAt(start, Math.max(0, Math.min(len, Number(end) - start)));
    }
    const callerId = Number(readUint(infoBuf, o + infoT.offset('caller_id'), 4));
    out.push({
      seq: readUint(infoBuf, o + infoT.offset('seq'), 8),
      tsNsec: readUint(infoBuf, o + infoT.offset('ts_nsec'), 8),
      level: levelField ? levelOf(infoBuf[o + levelField.offset]) : 6,
      caller: callerId & 0x80000000 ? `C${callerId & 0x7fffffff}` : `T${callerId}`,
      text: body,
    });
  }
  return out;
}

/**
 * The 3-bit `level` shares its byte with the 5-bit `flags` (`u8 flags:5; u8 level:3;`): GCC on
 * little-endian targets gives the first bit-field the low bits.
 */
function levelOf(byte: number): number {
  return (byte >> 5) & 7;
}

/** The log as dmesg (and lx-dmesg) prints it: `[    1.234567] text`, one line per text line. */
export function formatKernelLog(records: readonly LogRecord[]): string {
  let out = '';
  for (const r of records) {
    const secs = Number(r.tsNsec / 1000n) / 1e6;
    const stamp = `[${secs.toFixed(6).padStart(12)}]`;
    for (const line of r.text.split('\n')) out += `${stamp} ${line}\n`;
  }
  return out;
}
