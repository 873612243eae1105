/**
 * What the user sees while nothing can be debugged yet: DAP progress from the sample-guest
 * build to the first stop, the guest's state for the status bar, and leveled log lines for
 * the extension's output channel. Clients without progress support get the phases in the
 * Debug Console instead.
 */
import { Event, ProgressEndEvent, ProgressStartEvent, ProgressUpdateEvent } from '@vscode/debugadapter';
import { DebugProtocol } from '@vscode/debugprotocol';
import { GuestState, LOG_EVENT, LogEventBody, LogLevel, STATE_EVENT, StateEventBody } from './events';

export const PROGRESS_TITLE = 'QEMU kernel';

let nextProgress = 1;

export class Feedback {
  private progressId?: string;
  private phase = '';
  private indexPending = false;
  private lastState?: GuestState;

  constructor(
    private readonly send: (e: DebugProtocol.Event) => void,
    private readonly progressSupported: () => boolean,
    private readonly debugConsole: (m: string) => void,
  ) {}

  log(level: LogLevel, message: string): void {
    this.send(new Event(LOG_EVENT, { level, message } satisfies LogEventBody) as DebugProtocol.Event);
  }

  state(state: GuestState, detail?: string): void {
    // 'running' is reported at every resume, including the quiet ones of conditions and logpoints.
    if (state === 'running' && this.lastState === 'running' && !detail) return;
    this.lastState = state;
    this.send(new Event(STATE_EVENT, { state, detail } satisfies StateEventBody) as DebugProtocol.Event);
    this.log('debug', `Guest ${state}${detail ? `: ${detail}` : ''}`);
  }

  get guestState(): GuestState | undefined {
    return this.lastState;
  }

  /** A new phase of getting to the first stop (building, starting QEMU, booting...). */
  progress(phase: string): void {
    this.phase = phase;
    this.log('info', phase);
    if (!this.progressSupported()) {
      this.debugConsole(phase + '…');
      return;
    }
    this.sendProgress();
  }

  /**
   * The function index is being built in a worker (when, IndexGate decides); every phase
   * names it until it is ready, since a breakpoint on an inlined function waits for it.
   */
  indexing(done: Promise<unknown>): void {
    this.indexPending = true;
    const finish = (): void => {
      this.indexPending = false;
      if (this.progressId) this.sendProgress();
    };
    done.then(finish, finish);
  }

  /** The first stop (or a failure): the progress indicator goes away. */
  end(): void {
    if (this.progressId) this.send(new ProgressEndEvent(this.progressId) as DebugProtocol.Event);
    this.progressId = undefined;
  }

  private sendProgress(): void {
    const message = this.indexPending ? `${this.phase} · indexing symbols` : this.phase;
    if (!this.progressId) {
      this.progressId = `qkd-${process.pid}-${nextProgress++}`;
      this.send(new ProgressStartEvent(this.progressId, PROGRESS_TITLE, message) as DebugProtocol.Event);
    } else this.send(new ProgressUpdateEvent(this.progressId, message) as DebugProtocol.Event);
  }
}
