/** QEMU Machine Protocol over a connected socket: one JSON object a line. */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
}

export class QmpError extends Error {
  constructor(readonly command: string, readonly errorClass: string, desc: string) {
    super(`QMP ${command}: ${desc}`);
    this.name = 'QmpError';
  }
}

/** One line of QMP, checked for the shape each kind must have; anything else is skipped. */
export type QmpMessage =
  | { kind: 'greeting'; greeting: Record<string, unknown> }
  | { kind: 'event'; event: QmpEvent }
  | { kind: 'return'; value: unknown }
  | { kind: 'error'; errorClass: string; desc: string };

/**
 * The longest line kept: QEMU's largest reply (query-qmp-schema) is a few hundred KiB. Past
 * this a line is dropped unread up to its newline, so a peer that never sends one cannot
 * take the adapter's memory.
 */
export const MAX_QMP_LINE = 32 << 20;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A line as a QMP message, or undefined for a blank line, broken JSON or a shape QMP never sends. */
export function parseQmpLine(text: string): QmpMessage | undefined {
  const line = text.trim();
  if (!line) return undefined;
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return undefined;
  }
  // `null`, `3` or `[]` is valid JSON and no QMP message: `'QMP' in null` would throw.
  if (!isRecord(msg)) return undefined;
  if ('QMP' in msg) return { kind: 'greeting', greeting: msg };
  if ('event' in msg) {
    if (typeof msg.event !== 'string') return undefined;
    return { kind: 'event', event: isRecord(msg.data) ? { event: msg.event, data: msg.data } : { event: msg.event } };
  }
  if ('error' in msg) {
    const e = isRecord(msg.error) ? msg.error : {};
    return { kind: 'error', errorClass: typeof e.class === 'string' ? e.class : 'GenericError', desc: typeof e.desc === 'string' ? e.desc : 'failed' };
  }
  if ('return' in msg) return { kind: 'return', value: msg.return };
  return undefined;
}

/** Splits the text QEMU sends into lines and decodes each; partial lines wait for the next chunk. */
export class QmpDecoder {
  /** The current line's text so far, in pieces: rejoining it per chunk would be quadratic. */
  private parts: string[] = [];
  private partLength = 0;
  /** Inside a line longer than MAX_QMP_LINE: dropped up to its newline. */
  private dropping = false;
  /** Lines dropped for length, for a log. */
  dropped = 0;

  push(chunk: string): QmpMessage[] {
    const out: QmpMessage[] = [];
    let from = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', from)) {
      if (this.dropping) this.dropping = false;
      else if (this.partLength + nl - from > MAX_QMP_LINE) this.dropped++;
      else {
        const line = this.parts.length ? this.parts.join('') + chunk.slice(from, nl) : chunk.slice(from, nl);
        const msg = parseQmpLine(line);
        if (msg) out.push(msg);
      }
      this.parts = [];
      this.partLength = 0;
      from = nl + 1;
    }
    if (from < chunk.length && !this.dropping) {
      this.parts.push(chunk.slice(from));
      this.partLength += chunk.length - from;
      if (this.partLength > MAX_QMP_LINE) {
        this.dropped++;
        this.dropping = true;
        this.parts = [];
        this.partLength = 0;
      }
    }
    return out;
  }
}

interface Waiter {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class QmpClient extends EventEmitter {
  private readonly decoder = new QmpDecoder();
  private readonly waiters: Waiter[] = [];
  private closed = false;
  /** Resolves with the greeting once QEMU has sent it. */
  readonly greeting: Promise<Record<string, unknown>>;

  constructor(private readonly socket: net.Socket) {
    super();
    let gotGreeting: (g: Record<string, unknown>) => void = () => undefined;
    let noGreeting: (e: Error) => void = () => undefined;
    this.greeting = new Promise((resolve, reject) => {
      gotGreeting = resolve;
      noGreeting = reject;
    });
    this.greeting.catch(() => undefined);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const msg of this.decoder.push(chunk)) {
        if (msg.kind === 'greeting') gotGreeting(msg.greeting);
        else if (msg.kind === 'event') this.emit('event', msg.event);
        else {
          const w = this.waiters.shift();
          if (!w) continue;
          if (msg.kind === 'error') w.reject(new QmpError(w.command, msg.errorClass, msg.desc));
          else w.resolve(msg.value);
        }
      }
    });
    const onEnd = (): void => {
      if (this.closed) return;
      this.closed = true;
      noGreeting(new Error('QMP connection closed before the greeting'));
      for (const w of this.waiters.splice(0)) w.reject(new Error(`QMP ${w.command}: connection closed`));
      this.emit('close');
    };
    socket.on('close', onEnd);
    socket.on('error', onEnd);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) return reject(new Error(`QMP ${command}: connection closed`));
      this.waiters.push({ command, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
