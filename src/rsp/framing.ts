/**
 * GDB Remote Serial Protocol framing: `$payload#cs`, acks, `}` escapes and `*` run-length encoding.
 * Payloads are handled as latin1 strings so every byte value survives a round trip.
 */

export function checksum(payload: string): number {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) sum = (sum + payload.charCodeAt(i)) & 0xff;
  return sum;
}

/** Bytes that must be escaped when they appear in a payload we send. */
const NEEDS_ESCAPE = new Set(['$', '#', '}', '*']);

export function escapeBinary(data: string): string {
  let out = '';
  for (const ch of data) {
    out += NEEDS_ESCAPE.has(ch) ? '}' + String.fromCharCode(ch.charCodeAt(0) ^ 0x20) : ch;
  }
  return out;
}

export function encodePacket(payload: string): string {
  const escaped = escapeBinary(payload);
  return `$${escaped}#${checksum(escaped).toString(16).padStart(2, '0')}`;
}

/** Undo run-length encoding and escapes of a received packet body (the checksum covers the raw form). */
export function decodeBody(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i];
    if (ch === '}') {
      i++;
      if (i >= raw.length) throw new FramingError('escape character at end of packet');
      out += String.fromCharCode(raw.charCodeAt(i) ^ 0x20);
    } else if (ch === '*') {
      i++;
      if (i >= raw.length || out.length === 0) throw new FramingError('run-length marker without a preceding character');
      const repeat = raw.charCodeAt(i) - 29;
      if (repeat < 0) throw new FramingError(`invalid run-length count ${raw.charCodeAt(i)}`);
      out += out[out.length - 1].repeat(repeat);
    } else {
      out += ch;
    }
  }
  return out;
}

export class FramingError extends Error {
  constructor(message: string) {
    super(`RSP framing: ${message}`);
    this.name = 'FramingError';
  }
}

export type FrameEvent =
  | { kind: 'ack' }
  | { kind: 'nak' }
  | { kind: 'packet'; payload: string }
  | { kind: 'notification'; payload: string }
  | { kind: 'bad-checksum'; raw: string };

/**
 * Incremental parser for the byte stream coming from a stub. Call push() with each chunk;
 * it returns the complete frames found so far and keeps partial ones for the next chunk.
 * It works on bytes: a pipelined memory read brings dozens of 4 KiB frames in one chunk,
 * and per-character string work made the parser, not the stub, the cost of a large read.
 */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);
  /** Where the search for the current frame's `#` resumes when its end hasn't arrived yet. */
  private scanFrom = 1;

  push(chunk: Buffer | string): FrameEvent[] {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    const buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    const events: FrameEvent[] = [];
    let pos = 0;
    while (pos < buf.length) {
      const c = buf[pos];
      if (c === PLUS || c === MINUS) {
        events.push({ kind: c === PLUS ? 'ack' : 'nak' });
        pos++;
        continue;
      }
      if (c !== DOLLAR && c !== PERCENT) {
        // Noise between packets (e.g. a stray byte after a reconnect) is dropped, as gdb does.
        pos++;
        continue;
      }
      const hash = this.findTerminator(buf, pos);
      if (hash < 0 || hash + 3 > buf.length) break;
      const sent = parseInt(buf.toString('latin1', hash + 1, hash + 3), 16);
      let sum = 0;
      for (let i = pos + 1; i < hash; i++) sum = (sum + buf[i]) & 0xff;
      const raw = buf.subarray(pos + 1, hash);
      pos = hash + 3;
      this.scanFrom = 1;
      if (Number.isNaN(sent) || sent !== sum) {
        events.push({ kind: 'bad-checksum', raw: raw.toString('latin1') });
        continue;
      }
      // Escapes and run-length encoding are rare in replies; most bodies are already final.
      const plain = raw.indexOf(ESCAPE) < 0 && raw.indexOf(RUN) < 0;
      const text = raw.toString('latin1');
      events.push({ kind: c === DOLLAR ? 'packet' : 'notification', payload: plain ? text : decodeBody(text) });
    }
    this.buf = pos >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
    return events;
  }

  /** Index of the `#` ending the frame at `start`, skipping escaped characters; -1 if not here yet. */
  private findTerminator(buf: Buffer, start: number): number {
    let i = start + this.scanFrom;
    for (;;) {
      const hash = buf.indexOf(HASH, i);
      const esc = buf.indexOf(ESCAPE, i);
      if (esc < 0 || (hash >= 0 && esc > hash)) {
        if (hash < 0) this.scanFrom = buf.length - start;
        return hash;
      }
      // An escape before the next `#`: the byte after it is data, even if it is `#`.
      i = esc + 2;
      if (i > buf.length) {
        this.scanFrom = esc - start;
        return -1;
      }
    }
  }
}

const PLUS = 0x2b;
const MINUS = 0x2d;
const DOLLAR = 0x24;
const PERCENT = 0x25;
const HASH = 0x23;
const ESCAPE = 0x7d;
const RUN = 0x2a;
