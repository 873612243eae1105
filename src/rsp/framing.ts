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
 */
export class FrameParser {
  private buf = '';

  push(chunk: Buffer | string): FrameEvent[] {
    this.buf += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    const events: FrameEvent[] = [];
    for (;;) {
      if (this.buf.length === 0) break;
      const c = this.buf[0];
      if (c === '+') {
        events.push({ kind: 'ack' });
        this.buf = this.buf.slice(1);
        continue;
      }
      if (c === '-') {
        events.push({ kind: 'nak' });
        this.buf = this.buf.slice(1);
        continue;
      }
      if (c !== '$' && c !== '%') {
        // Noise between packets (e.g. a stray byte after a reconnect) is dropped, as gdb does.
        this.buf = this.buf.slice(1);
        continue;
      }
      const hash = this.findTerminator();
      if (hash < 0 || hash + 3 > this.buf.length) break;
      const raw = this.buf.slice(1, hash);
      const sent = parseInt(this.buf.slice(hash + 1, hash + 3), 16);
      this.buf = this.buf.slice(hash + 3);
      if (Number.isNaN(sent) || sent !== checksum(raw)) {
        events.push({ kind: 'bad-checksum', raw });
        continue;
      }
      events.push({ kind: c === '$' ? 'packet' : 'notification', payload: decodeBody(raw) });
    }
    return events;
  }

  /** Index of the `#` ending the frame at buf[0], skipping escaped characters. */
  private findTerminator(): number {
    for (let i = 1; i < this.buf.length; i++) {
      const ch = this.buf[i];
      if (ch === '}') i++;
      else if (ch === '#') return i;
    }
    return -1;
  }
}
