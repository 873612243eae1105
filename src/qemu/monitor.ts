/**
 * A client of QEMU's human monitor (HMP) on its unix socket, in readline mode: QEMU does the
 * line editing, history and completion itself, so this only moves bytes between a terminal
 * and the socket. Kept free of 'vscode' so the tests can drive the same code the editor's
 * terminal uses.
 */
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { netModule } from '../util/lazynet';

/**
 * Terminals need CR LF. QEMU's monitor already writes "\r\n", but output that passes
 * through it from elsewhere may not; a lone LF gets its CR. `prevCR` carries a CR that
 * ended the previous chunk, so a CR LF split across chunks is not doubled.
 */
export function toTerminalNewlines(text: string, prevCR: boolean): { text: string; endsWithCR: boolean } {
  let out = '';
  let cr = prevCR;
  for (const ch of text) {
    if (ch === '\n' && !cr) out += '\r';
    out += ch;
    cr = ch === '\r';
  }
  return { text: out, endsWithCR: cr };
}

/**
 * What a terminal sends, as QEMU's readline wants it. Enter arrives as CR, which readline
 * takes as the end of a line; a pasted CR LF would end the line twice, so it becomes one CR.
 */
export function toMonitorInput(data: string): string {
  return data.replace(/\r\n/g, '\r');
}

/** Emits 'data' (terminal-ready text) and 'close' (once, with an error message or undefined). */
export class MonitorConnection extends EventEmitter {
  private socket?: net.Socket;
  private readonly decoder = new TextDecoder('utf-8');
  private prevCR = false;
  private closed = false;

  constructor(readonly socketPath: string) {
    super();
  }

  /** Resolves once connected; QEMU then sends its banner and the (qemu) prompt. */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = netModule().createConnection(this.socketPath);
      this.socket = s;
      let connected = false;
      s.on('connect', () => {
        connected = true;
        resolve();
      });
      s.on('data', (d: Buffer) => {
        const conv = toTerminalNewlines(this.decoder.decode(d, { stream: true }), this.prevCR);
        this.prevCR = conv.endsWithCR;
        if (conv.text) this.emit('data', conv.text);
      });
      s.on('error', (e) => {
        if (connected) this.finish(e.message);
        else {
          // Never connected: the caller hears it through the rejection, not as a 'close'.
          this.closed = true;
          reject(e);
        }
      });
      s.on('close', () => this.finish(undefined));
    });
  }

  write(data: string): void {
    if (this.closed || !this.socket) return;
    this.socket.write(toMonitorInput(data));
  }

  close(): void {
    this.socket?.destroy();
    this.finish(undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private finish(error: string | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', error);
  }
}
