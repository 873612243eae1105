/**
 * A step's response, held until the step ends so that it reaches the client together with the
 * stopped event, in one write: a step over a line takes about a millisecond, and waking the
 * client for the response in the middle of it costs a fair part of that on a busy machine.
 * The response must still come first: VS Code marks the thread running when a step's response
 * arrives. A step that runs on (over a call that blocks) gets its response after `maxMs`.
 */
export class HeldResponse {
  private held?: { send: () => void; timer: NodeJS.Timeout };

  constructor(private readonly maxMs: number) {}

  hold(send: () => void): void {
    this.flush();
    this.held = { send, timer: setTimeout(() => this.flush(), this.maxMs) };
  }

  /** Send the held response now, if there is one. */
  flush(): void {
    const h = this.held;
    if (!h) return;
    this.held = undefined;
    clearTimeout(h.timer);
    h.send();
  }
}

/** Run `fn` with `out` corked, so the messages it sends leave in one write. */
export function inOneWrite(out: NodeJS.WritableStream | undefined, fn: () => void): void {
  const stream = out as { cork?: () => void; uncork?: () => void } | undefined;
  stream?.cork?.();
  try {
    fn();
  } finally {
    stream?.uncork?.();
  }
}
