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

interface Waiter {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class QmpClient extends EventEmitter {
  private buf = '';
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
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('QMP' in msg) gotGreeting(msg);
        else if ('event' in msg) this.emit('event', msg as unknown as QmpEvent);
        else if ('return' in msg || 'error' in msg) {
          const w = this.waiters.shift();
          if (!w) continue;
          if ('error' in msg) {
            const e = msg.error as { class?: string; desc?: string };
            w.reject(new QmpError(w.command, e.class ?? 'GenericError', e.desc ?? 'failed'));
          } else w.resolve(msg.return);
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
