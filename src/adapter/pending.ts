/**
 * DAP requests not answered yet. When the session ends, whatever still waits (a stack trace
 * whose reads went to a QEMU that was killed, a breakpoint update waiting for a stop that
 * will never come) is answered at once with why, rather than left for the client to wait on
 * forever; the handler's own answer, should it come later, is dropped.
 */

/** Requests that the end itself is serving: they are answered when it is done. */
const SERVED_BY_THE_END = new Set(['disconnect', 'terminate']);

/** Requests that still make sense once the session has ended. */
export const ANSWERED_AFTER_END = new Set(['disconnect', 'terminate', 'threads', 'source', 'initialize']);

export class PendingRequests {
  private readonly waiting = new Map<number, { command: string; fail: (message: string) => void }>();

  add(seq: number, command: string, fail: (message: string) => void): void {
    this.waiting.set(seq, { command, fail });
  }

  /** True when the request still waits (the caller answers it now); false when it was answered already. */
  settle(seq: number): boolean {
    return this.waiting.delete(seq);
  }

  /** Answer every waiting request with `message`, except those the end serves. */
  failAll(message: string): void {
    for (const [seq, p] of [...this.waiting]) {
      if (SERVED_BY_THE_END.has(p.command)) continue;
      this.waiting.delete(seq);
      p.fail(message);
    }
  }
}
