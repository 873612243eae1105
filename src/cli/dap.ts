/**
 * An in-process DAP client for our own session: the CLI drives exactly the adapter that
 * editors use, through the same messages, without a second process.
 */
import { DebugProtocol } from '@vscode/debugprotocol';
import { EventEmitter } from 'node:events';
import { QemuKernelSession } from '../adapter/session';

export class DapError extends Error {
  constructor(readonly command: string, message: string) {
    super(message);
    this.name = 'DapError';
  }
}

export class InProcessDap extends EventEmitter {
  private seq = 1;
  private readonly waiting = new Map<number, (r: DebugProtocol.Response) => void>();
  readonly session = new QemuKernelSession();

  constructor() {
    super();
    this.session.onDidSendMessage((m) => {
      const msg = m as DebugProtocol.ProtocolMessage;
      if (msg.type === 'response') {
        const r = msg as DebugProtocol.Response;
        this.waiting.get(r.request_seq)?.(r);
        this.waiting.delete(r.request_seq);
      } else if (msg.type === 'event') {
        const e = msg as DebugProtocol.Event;
        this.emit(e.event, e.body);
        this.emit('event', e);
      }
    });
  }

  async request<T = unknown>(command: string, args?: object): Promise<T> {
    const seq = this.seq++;
    const res = await new Promise<DebugProtocol.Response>((resolve) => {
      this.waiting.set(seq, resolve);
      this.session.handleMessage({ seq, type: 'request', command, arguments: args } as DebugProtocol.Request);
    });
    if (!res.success) throw new DapError(command, res.message ?? `${command} failed`);
    return res.body as T;
  }

  waitEvent<T = unknown>(event: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${event}' event within ${timeoutMs / 1000} s`)), timeoutMs);
      this.once(event, (body: T) => {
        clearTimeout(timer);
        resolve(body);
      });
    });
  }
}
