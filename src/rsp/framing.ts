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

/**
 * The most bytes one frame may carry, raw or decoded. QEMU's largest replies are a few KiB
 * (PacketSize, a `g` block); a stub that sends more, or run-length codes that expand past
 * it, is broken or hostile, and buffering it would take the adapter's memory with it.
 */
export const MAX_FRAME = 4 << 20;

/** Undo run-length encoding and escapes of a received packet body (the checksum covers the raw form). */
export function decodeBody(raw: string, max = MAX_FRAME): string {
  let out = '';
  // The character a run repeats, kept apart: indexing `out` (a rope while it grows) would
  // flatten it at every run, which made a long run-length coded packet quadratic.
  let last = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i];
    if (ch === '}') {
      i++;
      if (i >= raw.length) throw new FramingError('escape character at end of packet');
      last = String.fromCharCode(raw.charCodeAt(i) ^ 0x20);
      out += last;
    } else if (ch === '*') {
      i++;
      if (i >= raw.length || out.length === 0) throw new FramingError('run-length marker without a preceding character');
      const repeat = raw.charCodeAt(i) - 29;
      if (repeat < 0) throw new FramingError(`invalid run-length count ${raw.charCodeAt(i)}`);
      if (out.length + repeat > max) throw new FramingError(`run-length encoding expands the packet past ${max} bytes`);
      out += last.repeat(repeat);
    } else {
      last = ch;
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
  /**
   * A frame to nak: its checksum did not match, or (with `error`) it could not be decoded or
   * was longer than MAX_FRAME; the stub resends it, as after line noise.
   */
  | { kind: 'bad-checksum'; raw: string; error?: string };

/** What a dropped frame shows of itself in a log. */
function preview(raw: Buffer): string {
  return raw.length > 64 ? `${raw.toString('latin1', 0, 64)}...` : raw.toString('latin1');
}

/**
 * Incremental parser for the byte stream coming from a stub. Call push() with each chunk;
 * it returns the complete frames found so far and keeps partial ones for the next chunk.
 * It works on bytes: a pipelined memory read brings dozens of 4 KiB frames in one chunk,
 * and per-character string work made the parser, not the stub, the cost of a large read.
 * push() never throws: what cannot be decoded comes out as a bad-checksum event.
 */
export class FrameParser {
  /** The unparsed tail of earlier chunks is store[0, kept); capacity grows by doubling. */
  private store: Buffer = Buffer.alloc(0);
  private kept = 0;
  /** Where the search for the current frame's `#` resumes when its end hasn't arrived yet. */
  private scanFrom = 1;
  /** Dropping the rest of an over-long frame: whether the next byte is escaped, and checksum bytes left after its `#` (-1: `#` not seen yet). */
  private skipping: { escaped: boolean; tail: number } | undefined;

  push(chunk: Buffer | string): FrameEvent[] {
    let b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    const events: FrameEvent[] = [];
    if (this.skipping) {
      const resume = this.skipRest(b);
      if (resume < 0) return events;
      b = b.subarray(resume);
    }
    const buf = this.kept ? this.append(b) : b;
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
      if (hash < 0 || hash + 3 > buf.length) {
        if (buf.length - pos > MAX_FRAME + 3) {
          // Keep nothing of it: drop bytes until its end, then read on.
          events.push({ kind: 'bad-checksum', raw: preview(buf.subarray(pos + 1, pos + 65)), error: `frame longer than ${MAX_FRAME} bytes` });
          const lastEscaped = hash < 0 && this.scanFrom === buf.length - 1 - pos && buf[buf.length - 1] === ESCAPE;
          this.skipping = { escaped: lastEscaped, tail: hash < 0 ? -1 : 2 - (buf.length - hash - 1) };
          this.scanFrom = 1;
          pos = buf.length;
        }
        break;
      }
      const sent = parseInt(buf.toString('latin1', hash + 1, hash + 3), 16);
      const raw = buf.subarray(pos + 1, hash);
      pos = hash + 3;
      this.scanFrom = 1;
      if (raw.length > MAX_FRAME) {
        events.push({ kind: 'bad-checksum', raw: preview(raw), error: `frame longer than ${MAX_FRAME} bytes` });
        continue;
      }
      let sum = 0;
      for (let i = 0; i < raw.length; i++) sum = (sum + raw[i]) & 0xff;
      if (Number.isNaN(sent) || sent !== sum) {
        events.push({ kind: 'bad-checksum', raw: raw.toString('latin1') });
        continue;
      }
      // Escapes and run-length encoding are rare in replies; most bodies are already final.
      const plain = raw.indexOf(ESCAPE) < 0 && raw.indexOf(RUN) < 0;
      const text = raw.toString('latin1');
      let payload = text;
      if (!plain) {
        try {
          payload = decodeBody(text);
        } catch (e) {
          if (!(e instanceof FramingError)) throw e;
          events.push({ kind: 'bad-checksum', raw: preview(raw), error: e.message });
          continue;
        }
      }
      events.push({ kind: c === DOLLAR ? 'packet' : 'notification', payload });
    }
    this.keep(buf, pos);
    return events;
  }

  /** The kept tail with `b` after it, as one view (no copy of the kept bytes). */
  private append(b: Buffer): Buffer {
    const need = this.kept + b.length;
    if (need > this.store.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.store.length));
      this.store.copy(grown, 0, 0, this.kept);
      this.store = grown;
    }
    b.copy(this.store, this.kept);
    return this.store.subarray(0, need);
  }

  /** Keep buf[pos..] for the next push; when buf is store, nothing moves unless frames were taken off its front. */
  private keep(buf: Buffer, pos: number): void {
    const rest = buf.length - pos;
    if (rest === 0) {
      this.kept = 0;
      // Don't hold on to the capacity a long frame needed.
      if (this.store.length > 1 << 16) this.store = Buffer.alloc(0);
      return;
    }
    if (buf.buffer === this.store.buffer && buf.byteOffset === this.store.byteOffset) {
      if (pos > 0) this.store.copyWithin(0, pos, buf.length);
    } else {
      if (rest > this.store.length) this.store = Buffer.allocUnsafe(Math.max(rest, 256));
      buf.copy(this.store, 0, pos);
    }
    this.kept = rest;
  }

  /** Drop the rest of an over-long frame; returns where in `b` normal parsing resumes, or -1 when all of it was dropped. */
  private skipRest(b: Buffer): number {
    const s = this.skipping as { escaped: boolean; tail: number };
    let i = 0;
    // Each search starts past the previous hit, so a chunk is scanned once, however many escapes it has.
    let hash = -2;
    let esc = -2;
    while (i < b.length) {
      if (s.tail >= 0) {
        const n = Math.min(s.tail, b.length - i);
        i += n;
        s.tail -= n;
        if (s.tail === 0) {
          this.skipping = undefined;
          return i;
        }
        continue;
      }
      if (s.escaped) {
        s.escaped = false;
        i++;
        continue;
      }
      if (hash !== -1 && hash < i) hash = b.indexOf(HASH, i);
      if (esc !== -1 && esc < i) esc = b.indexOf(ESCAPE, i);
      if (esc >= 0 && (hash < 0 || esc < hash)) {
        s.escaped = true;
        i = esc + 1;
      } else if (hash >= 0) {
        s.tail = 2;
        i = hash + 1;
      } else {
        return -1;
      }
    }
    if (s.tail === 0) {
      this.skipping = undefined;
      return i;
    }
    return -1;
  }

  /** Index of the `#` ending the frame at `start`, skipping escaped characters; -1 if not here yet. */
  private findTerminator(buf: Buffer, start: number): number {
    let i = start + this.scanFrom;
    // Each search starts past the previous hit, so the frame is scanned once, however many escapes it has.
    let hash = buf.indexOf(HASH, i);
    let esc = buf.indexOf(ESCAPE, i);
    for (;;) {
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
      if (hash >= 0 && hash < i) hash = buf.indexOf(HASH, i);
      esc = buf.indexOf(ESCAPE, i);
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
