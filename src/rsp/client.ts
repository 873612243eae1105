/**
 * A GDB Remote Serial Protocol client for QEMU's gdbstub.
 *
 * Quirks of QEMU's stub that shape this client (checked against QEMU 7.2):
 * - No QStartNoAckMode: every packet is acked both ways, always.
 * - PacketSize=1000 (4096 bytes); `m` reads at most 2048 bytes, so reads are split.
 * - While the guest runs, any byte except 0x03 is swallowed, so requests are refused
 *   locally until the stop reply arrives.
 * - Every VM stop sends a stop reply while a debugger is attached, including stops we
 *   did not cause (a QMP `stop`); those arrive as unsolicited stops.
 * - No swbreak/hwbreak in stop replies: callers tell a breakpoint from a step by the PC.
 *   An interrupt (0x03, or a VM pause) is reported as SIGINT (T02), breakpoints and steps as SIGTRAP (T05).
 * - `m` and `g` use the page tables of the vCPU chosen with `Hg`; outside long mode a `P` write
 *   to a general register keeps only its low 32 bits.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { encodePacket, FrameParser } from './framing';
import { RspConnectionError, RspError, RspProtocolError, errorFromReply } from './errors';
import { isStopReply, parseStopReply, StopReply } from './stop';

export type RspTarget = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export type WireLog = (direction: '->' | '<-', text: string) => void;

/**
 * How long a request waits for its reply. A stopped QEMU answers in well under a millisecond,
 * so a reply this late means QEMU itself is stopped (SIGSTOP) or hung, and the request, with
 * the DAP request behind it, had better fail while the user still waits for it.
 */
export const REPLY_TIMEOUT_MS = 3000;

export interface RspClientOptions {
  log?: WireLog;
  /** How long one request may wait for its reply (REPLY_TIMEOUT_MS). */
  timeoutMs?: number;
}

export interface RequestOptions {
  /** Receives the text of `O` console-output packets that precede the final reply (qRcmd). */
  onOutput?: (text: string) => void;
  timeoutMs?: number;
}

interface Pending {
  packet: string;
  resolve: (reply: string) => void;
  reject: (err: Error) => void;
  onOutput?: (text: string) => void;
  timer?: NodeJS.Timeout;
  /** Sent ahead of a resume, in its write (see resume()). */
  prelude?: boolean;
}

/**
 * A packet that goes out in the same write as a resume, ahead of it: QEMU answers it before it
 * handles the resume, so inserting a temporary breakpoint and continuing cost one round trip.
 */
export interface Prelude {
  packet: string;
  /** The stub's reply, before the resume's stop reply; '' if none came. */
  onReply: (reply: string) => void;
}

export class RspClient extends EventEmitter {
  private readonly parser = new FrameParser();
  /** Requests sent and not answered yet, oldest first: the stub answers in order. */
  private inflight: Pending[] = [];
  /** Replies still owed to requests that timed out; they are dropped as strays when they come. */
  private owed = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Requests made inside exclusive() chain here, so nothing from outside slips between them. */
  private readonly section = new AsyncLocalStorage<{ queue: Promise<unknown> }>();
  private running?: { resolve: (s: StopReply) => void; reject: (e: Error) => void };
  private unacked: Array<{ frame: string; tries: number }> = [];
  private closed = false;
  private readonly log?: WireLog;
  private readonly timeoutMs: number;
  private readonly preludeSources: Array<() => Prelude[]> = [];
  /** Packets that go out with the acks of the chunk being read (see prefetchOnStop). */
  private afterAcks: string[] = [];
  /**
   * When the stub last failed to answer in time, until it sends anything again. Meanwhile
   * requests fail at once rather than each waiting out its own timeout (an unwind makes
   * dozens of reads, and would take minutes); after `timeoutMs` one may try again.
   */
  private stalledAt?: number;
  /** Fires when an interrupt of the running guest brings no stop in time. */
  private interruptTimer?: NodeJS.Timeout;

  private constructor(private readonly socket: net.Socket, opts: RspClientOptions) {
    super();
    this.log = opts.log;
    this.timeoutMs = opts.timeoutMs ?? REPLY_TIMEOUT_MS;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('close', () => this.onClose('connection closed by the stub'));
    socket.on('error', (err) => this.onClose(err.message));
  }

  static connect(target: RspTarget, opts: RspClientOptions = {}): Promise<RspClient> {
    return new Promise((resolve, reject) => {
      const socket =
        target.kind === 'unix' ? net.createConnection({ path: target.path }) : net.createConnection({ host: target.host, port: target.port });
      const fail = (err: Error): void => {
        const where = target.kind === 'unix' ? target.path : `${target.host}:${target.port}`;
        reject(new RspConnectionError('', `cannot connect to ${where}: ${err.message}`));
      };
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.off('error', fail);
        resolve(new RspClient(socket, opts));
      });
    });
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** True while the stub has not answered in time and not sent anything since ('stalled' / 'answering'). */
  get isStalled(): boolean {
    return this.stalledAt !== undefined;
  }

  private markStalled(what: string): void {
    const first = this.stalledAt === undefined;
    this.stalledAt = Date.now();
    if (first) this.emit('stalled', what);
  }

  /** Send one packet and wait for its reply. Requests are serialized, as the protocol requires. */
  request(packet: string, opts: RequestOptions = {}): Promise<string> {
    const caller = new Error();
    return this.enqueue(() => {
      const early = this.takePrefetched(packet);
      if (early) return early;
      return new Promise<string>((resolve, reject) => {
        if (!this.canSend(packet, reject)) return;
        this.send(packet, resolve, reject, opts, caller);
      });
    });
  }

  /**
   * The packet to send the moment a stop reply arrives (`g`, which every stop is followed
   * by), or undefined. It leaves in the write that acks the stop, before any promise is
   * resolved, and the first request for the same packet gets its reply.
   */
  prefetchOnStop?: (stop: StopReply) => string | undefined;
  private prefetched?: { packet: string; reply: Promise<string> };

  /** The reply prefetched for `packet`, if nothing was sent since; anything else drops it. */
  private takePrefetched(packet: string): Promise<string> | undefined {
    const p = this.prefetched;
    this.prefetched = undefined;
    return p && p.packet === packet ? p.reply : undefined;
  }

  /**
   * Send several packets without waiting for each reply, at most `window` unanswered at a
   * time, and return the replies in order. While the target is stopped QEMU handles the
   * packets one after another as they arrive, so a large read costs the stub's work rather
   * than a round trip per packet. Only for packets whose replies don't depend on each other.
   */
  requestMany(packets: readonly string[], window = 16, opts: RequestOptions = {}): Promise<string[]> {
    const caller = new Error();
    return this.enqueue(
      () =>
        new Promise<string[]>((resolve, reject) => {
          this.prefetched = undefined;
          const replies: string[] = new Array<string>(packets.length);
          let sent = 0;
          let answered = 0;
          let failed = false;
          const fail = (e: Error): void => {
            failed = true;
            reject(e);
          };
          const fill = (): void => {
            while (!failed && sent < packets.length && sent - answered < window) {
              const n = sent++;
              if (!this.canSend(packets[n], fail)) return;
              const got = (reply: string): void => {
                replies[n] = reply;
                answered++;
                if (answered === packets.length) resolve(replies);
                else fill();
              };
              this.send(packets[n], got, fail, opts, caller);
            }
          };
          if (packets.length === 0) resolve(replies);
          else fill();
        }),
    );
  }

  private canSend(packet: string, reject: (e: Error) => void): boolean {
    if (this.closed) reject(new RspConnectionError(packet, 'not connected'));
    else if (this.running) reject(new RspError(`cannot send '${packet}' while the target is running`, packet));
    else if (this.stalledAt !== undefined && Date.now() - this.stalledAt < this.timeoutMs) {
      reject(new RspConnectionError(packet, `the gdbstub has stopped answering (nothing for ${this.timeoutMs} ms); is QEMU stopped or hung?`));
    } else return true;
    return false;
  }

  private send(packet: string, resolve: (reply: string) => void, reject: (e: Error) => void, opts: RequestOptions, caller: Error): void {
    const timeout = opts.timeoutMs ?? this.timeoutMs;
    const pending: Pending = { packet, resolve, reject, onOutput: opts.onOutput };
    pending.timer = setTimeout(() => {
      // The stub is out of step with us: everything still in flight fails, and the replies
      // it may yet send are dropped rather than handed to later requests.
      const lost = this.inflight.splice(0);
      this.owed += lost.length;
      for (const p of lost) {
        clearTimeout(p.timer);
        if (p !== pending) p.reject(new RspConnectionError(p.packet, `abandoned: '${packet.slice(0, 40)}' had no reply`));
      }
      reject(withCallerStack(new RspConnectionError(packet, `no reply to '${packet.slice(0, 40)}' within ${timeout} ms`), caller));
      this.markStalled(`no reply to '${packet.slice(0, 40)}' within ${timeout} ms`);
    }, timeout);
    this.inflight.push(pending);
    this.sendFrame(packet);
  }

  private enqueue<T>(run: () => Promise<T>): Promise<T> {
    const inner = this.section.getStore();
    if (inner) {
      const q = inner.queue.then(run, run);
      inner.queue = q.catch(() => undefined);
      return q;
    }
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /**
   * Run a sequence of requests that must not be interleaved with anyone else's: a stub mode
   * switched on for a few packets (QEMU's PhyMemMode) must not leak into other requests.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = (): Promise<T> => this.section.run({ queue: Promise.resolve() }, fn);
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Send a request and turn `Exx` replies into RspErrorReply. */
  async command(packet: string, opts: RequestOptions = {}): Promise<string> {
    const reply = await this.request(packet, opts);
    const err = errorFromReply(packet, reply);
    if (err) throw err;
    return reply;
  }

  /**
   * Send a packet that resumes the target (`c`, `s`, `vCont;...`). Resolves with the stop reply
   * that ends this run, however long it takes.
   */
  resume(packet: string, prelude: readonly Prelude[] = []): Promise<StopReply> {
    const run = (): Promise<StopReply> =>
      new Promise<StopReply>((resolve, reject) => {
        if (this.closed) return reject(new RspConnectionError(packet, 'not connected'));
        if (this.running) return reject(new RspError('the target is already running', packet));
        this.prefetched = undefined;
        const ahead = [...this.preludeSources.flatMap((source) => source()), ...prelude];
        for (const p of ahead) {
          // QEMU forgets an unacked reply when the next packet starts, and takes any byte that
          // arrives while the guest runs as an interrupt: so these replies are never acked.
          this.inflight.push({ packet: p.packet, resolve: p.onReply, reject: () => p.onReply(''), prelude: true });
        }
        this.running = { resolve, reject };
        this.sendFrames([...ahead.map((p) => p.packet), packet]);
        // Whatever was read from the target is stale from here on.
        this.emit('resumed');
      });
    const p = this.queue.then(run, run);
    // The queue only waits for the packet to go out; the stop may come much later.
    this.queue = Promise.resolve();
    return p;
  }

  /** Packets every resume sends ahead of itself, e.g. breakpoint removals put off until then. */
  addResumePrelude(source: () => Prelude[]): void {
    this.preludeSources.push(source);
  }

  /**
   * Keep what is sent from now to the end of this turn of the event loop in the socket, and
   * write it then, in one write. A packet whose reply nobody waits for (a register write after
   * a NOP was stepped by moving the PC) then leaves after the messages the stop sends the
   * client, and the stub's wakeup isn't paid for before them. Packets keep their order.
   */
  holdWritesThisTurn(): void {
    if (this.holding || this.closed) return;
    this.holding = true;
    this.socket.cork();
    setImmediate(() => {
      this.holding = false;
      if (!this.socket.destroyed) this.socket.uncork();
    });
  }
  private holding = false;

  /** Whether writes are being held for the end of this turn (holdWritesThisTurn). */
  get holdingWrites(): boolean {
    return this.holding;
  }

  /** Ask a running target to stop (byte 0x03). The pending resume() resolves with the stop. */
  interrupt(): void {
    if (this.closed) return;
    this.log?.('->', '^C');
    this.socket.write(Buffer.from([0x03]));
    // QEMU stops the VM for an interrupt at once, whatever the guest does: no stop in time
    // means QEMU does not run. The resume stays pending: a stop that comes late still counts.
    if (this.running && !this.interruptTimer) {
      this.interruptTimer = setTimeout(() => {
        this.interruptTimer = undefined;
        if (this.running && !this.closed) this.markStalled(`no stop within ${this.timeoutMs} ms of an interrupt`);
      }, this.timeoutMs);
      this.interruptTimer.unref();
    }
  }

  close(): void {
    if (this.closed) return;
    this.socket.destroy();
    this.onClose('closed');
  }

  private sendFrame(payload: string): void {
    this.sendFrames([payload]);
  }

  /** Frames that go out in one write (one wakeup of the stub). */
  private sendFrames(payloads: readonly string[]): void {
    let bytes = '';
    for (const payload of payloads) {
      const frame = encodePacket(payload);
      this.unacked.push({ frame, tries: 1 });
      this.log?.('->', frame);
      bytes += frame;
    }
    this.socket.write(Buffer.from(bytes, 'latin1'));
  }

  private onData(chunk: Buffer): void {
    if (this.stalledAt !== undefined) {
      this.stalledAt = undefined;
      this.emit('answering');
    }
    let acks = 0;
    this.afterAcks = [];
    for (const ev of this.parser.push(chunk)) {
      switch (ev.kind) {
        case 'ack':
          this.unacked.shift();
          break;
        case 'nak': {
          const u = this.unacked[0];
          if (u && u.tries < 3) {
            u.tries++;
            this.log?.('->', `${u.frame} (resend)`);
            this.socket.write(Buffer.from(u.frame, 'latin1'));
          }
          break;
        }
        case 'bad-checksum':
          this.log?.('<-', `$${ev.raw} (bad checksum, nak)`);
          this.socket.write('-');
          break;
        case 'notification':
          this.log?.('<-', `%${ev.payload}`);
          break;
        case 'packet':
          this.log?.('<-', `$${ev.payload}`);
          if (this.onPacket(ev.payload)) acks++;
          break;
      }
    }
    // One write acks every packet of the chunk (the replies to a pipelined read come together)
    // and carries the packet prefetched after a stop.
    if ((acks > 0 || this.afterAcks.length) && !this.socket.destroyed) {
      let bytes = '+'.repeat(acks);
      for (const payload of this.afterAcks) {
        const frame = encodePacket(payload);
        this.unacked.push({ frame, tries: 1 });
        this.log?.('->', frame);
        bytes += frame;
      }
      this.socket.write(Buffer.from(bytes, 'latin1'));
    }
  }

  /** Handle one packet from the stub; false when it must not be acked. */
  private onPacket(payload: string): boolean {
    if (isConsoleOutput(payload)) {
      const text = Buffer.from(payload.slice(1), 'hex').toString('utf8');
      const first = this.inflight[0];
      if (first?.onOutput) first.onOutput(text);
      else this.emit('output', text);
      return true;
    }
    if (this.running && isStopReply(payload)) {
      // The stub answers a resume's preludes before it resumes: any still waiting got nothing.
      while (this.inflight[0]?.prelude) this.inflight.shift()?.resolve('');
      const r = this.running;
      this.running = undefined;
      clearTimeout(this.interruptTimer);
      this.interruptTimer = undefined;
      const stop = parseStopReply(payload);
      const next = this.prefetchOnStop?.(stop);
      if (next) {
        const reply = new Promise<string>((resolve, reject) => {
          const pending: Pending = { packet: next, resolve, reject };
          pending.timer = setTimeout(() => {
            // Out of step with the stub: a late reply is dropped, not given to a later request.
            const at = this.inflight.indexOf(pending);
            if (at >= 0) {
              this.inflight.splice(at, 1);
              this.owed++;
            }
            reject(new RspConnectionError(next, `no reply to '${next}' within ${this.timeoutMs} ms`));
            this.markStalled(`no reply to '${next}' within ${this.timeoutMs} ms`);
          }, this.timeoutMs);
          this.inflight.push(pending);
        });
        reply.catch(() => undefined);
        this.prefetched = { packet: next, reply };
        this.afterAcks.push(next);
      }
      r.resolve(stop);
      return true;
    }
    if (this.owed > 0 && !isStopReply(payload)) {
      this.owed--;
      this.emit('stray', payload);
      return true;
    }
    if (isStopReply(payload) && this.inflight.length && this.inflight[0].packet !== '?') {
      // QEMU pauses a running VM when a debugger connects and says so at once, unasked:
      // that stop must not be taken for the answer to the request in flight (qSupported).
      this.emit('unsolicited-stop', parseStopReply(payload));
      return true;
    }
    const p = this.inflight.shift();
    if (p) {
      clearTimeout(p.timer);
      p.resolve(payload);
      // A reply that comes once a resume has gone out (a prelude's, or the read that followed
      // the last stop) is never acked: QEMU forgot it when the resume began, and takes any
      // byte that arrives while the guest runs as an interrupt.
      return !this.running;
    }
    if (isStopReply(payload)) {
      // A stop we did not ask for (e.g. the VM was paused through QMP).
      this.emit('unsolicited-stop', parseStopReply(payload));
      return true;
    }
    this.emit('stray', payload);
    return true;
  }

  private onClose(reason: string): void {
    if (this.closed && !this.inflight.length && !this.running) return;
    this.closed = true;
    clearTimeout(this.interruptTimer);
    this.interruptTimer = undefined;
    for (const p of this.inflight.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new RspConnectionError(p.packet, reason));
    }
    const r = this.running;
    this.running = undefined;
    r?.reject(new RspConnectionError('', reason));
    this.emit('close', reason);
  }
}

function isConsoleOutput(payload: string): boolean {
  return payload.length > 1 && payload[0] === 'O' && payload !== 'OK' && /^O([0-9a-fA-F]{2})+$/.test(payload);
}

function withCallerStack(err: Error, caller: Error): Error {
  if (caller.stack) err.stack = `${err.name}: ${err.message}\n${caller.stack.split('\n').slice(1).join('\n')}`;
  return err;
}

export { RspProtocolError };
