/**
 * The guest's serial console as a stream: output is read from QEMU's console log (so a
 * viewer opened late still sees everything since boot, exactly once), input is written to
 * the console socket. The socket is also drained, because QEMU stalls the guest's UART when
 * a connected client stops reading.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { netModule } from '../util/lazynet';

export interface ConsoleOptions {
  /** Start reading the log at this byte offset: the session's start (QemuInstance.consoleLogStart). */
  fromOffset?: number;
}

export class GuestConsole extends EventEmitter {
  private offset: number;
  private watcher?: fs.FSWatcher;
  private poll?: NodeJS.Timeout;
  private socket?: net.Socket;
  private reading = false;
  private again = false;
  private closed = false;

  constructor(readonly logPath: string, readonly socketPath: string | undefined, opts: ConsoleOptions = {}) {
    super();
    this.offset = opts.fromOffset ?? 0;
  }

  /** Begin emitting 'data' (Buffer) for the log's content and connect for input. */
  start(): void {
    this.pump();
    try {
      this.watcher = fs.watch(this.logPath, () => this.pump());
    } catch {
      // The log may not exist yet; the poll below picks it up.
    }
    // inotify can miss events on some filesystems; a slow poll keeps output flowing anyway.
    this.poll = setInterval(() => this.pump(), 250);
    if (this.socketPath) this.connect(this.socketPath);
  }

  private connect(socketPath: string): void {
    const s = netModule().createConnection({ path: socketPath });
    // 'live': the bytes as the socket delivers them. The log can hold a character twice (QEMU
    // 7.2 logs a serial byte again each time a lagging reader makes it retry); the socket cannot.
    s.on('data', (d: Buffer) => this.emit('live', d));
    s.on('error', (e) => this.emit('input-error', e));
    s.on('close', () => {
      if (this.socket === s) this.socket = undefined;
    });
    this.socket = s;
  }

  /** Send keystrokes to the guest. */
  write(data: string | Buffer): boolean {
    if (!this.socket || this.socket.destroyed) return false;
    this.socket.write(data);
    return true;
  }

  /** Wait until the input connection is open (or failed). */
  ready(): Promise<boolean> {
    const s = this.socket;
    if (!s) return Promise.resolve(false);
    if (!s.connecting) return Promise.resolve(!s.destroyed);
    return new Promise((resolve) => {
      s.once('connect', () => resolve(true));
      s.once('error', () => resolve(false));
    });
  }

  get bytesRead(): number {
    return this.offset;
  }

  private pump(): void {
    if (this.closed) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    void this.readNew().finally(() => {
      this.reading = false;
      if (this.again) {
        this.again = false;
        this.pump();
      }
    });
  }

  private async readNew(): Promise<void> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(this.logPath, 'r');
    } catch {
      return;
    }
    try {
      for (;;) {
        const buf = Buffer.alloc(65536);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0 || this.closed) break;
        this.offset += bytesRead;
        this.emit('data', buf.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  }

  /** Read what is left in the log, then stop. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.readNew().catch(() => undefined);
    this.closed = true;
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    this.socket?.destroy();
    this.emit('close');
  }
}

/** Resolve once `pattern` appears in the log, reading it as it grows. */
export function waitForConsole(logPath: string, pattern: RegExp | string, timeoutMs: number, fromOffset = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const con = new GuestConsole(logPath, undefined, { fromOffset });
    let text = '';
    const timer = setTimeout(() => {
      void con.close();
      reject(new Error(`'${String(pattern)}' did not appear in ${logPath} within ${timeoutMs} ms; last output: ${text.slice(-300)}`));
    }, timeoutMs);
    con.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      if (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text)) {
        clearTimeout(timer);
        void con.close();
        resolve(text);
      }
    });
    con.start();
  });
}
