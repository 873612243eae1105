/**
 * When the function index (a scan of every unit's DIEs, for inlined copies, globals and
 * types) is built. The scan takes over a second of CPU on the sample guest and far longer on
 * a distribution vmlinux. Run while the guest boots toward its first breakpoint, it competes
 * with TCG's vCPU thread (on two cores, one is the vCPU's and the scan's GC and compiler
 * threads want the other), and that boot took hundreds of ms longer. A function breakpoint
 * is placed from the ELF symbol table without it, and its inlined copies can follow. So the
 * index waits while the guest runs toward its first stop, and is built:
 *  - after the first stop (or stopOnEntry), once the client has asked what it shows: the
 *    scan would slow those answers down, and the user looks at the stop for a while;
 *  - before the guest first runs, once the client has gone quiet: then a request is waiting
 *    for it (a breakpoint on a function with no out-of-line copy), since configurationDone
 *    would otherwise have come;
 *  - when the running guest is halted to update breakpoints and that needs it;
 *  - after the guest has run RUN_HOLD_MS without stopping, so that the inlined copies of a
 *    breakpoint whose out-of-line copy is never hit are still added.
 */
import type { SymbolIndex } from '../symbols/index/client';

/** Longer than a client takes between the last breakpoint response and configurationDone. */
export const QUIET_MS = 150;
export const RUN_HOLD_MS = 5000;

export interface GuestRunState {
  readonly isRunning: boolean;
  on(event: 'running' | 'stopped' | 'exited', listener: () => void): unknown;
}

export class IndexGate {
  private phase: 'configuring' | 'running' | 'settling' | 'open' | 'closed' = 'configuring';
  private readonly waiters: ((go: boolean) => void)[] = [];
  private readonly opened: (() => void)[] = [];
  private quiet?: NodeJS.Timeout;
  private runLimit?: NodeJS.Timeout;
  private guest?: GuestRunState;

  constructor(
    private readonly quietMs = QUIET_MS,
    private readonly runHoldMs = RUN_HOLD_MS,
  ) {}

  /** The debugger whose runs and stops open the gate. */
  follow(guest: GuestRunState): void {
    this.guest = guest;
    guest.on('running', () => this.resumed());
    guest.on('stopped', () => this.settle());
    guest.on('exited', () => this.close());
  }

  get isOpen(): boolean {
    return this.phase === 'open';
  }

  /** A DAP request came in: the client is not done yet. */
  activity(): void {
    if ((this.phase === 'configuring' && this.waiters.length) || this.phase === 'settling') this.armQuiet();
  }

  /** Run `fn` once the index may be built (at once when it already may). */
  onOpen(fn: () => void): void {
    if (this.phase === 'open') fn();
    else if (this.phase !== 'closed') this.opened.push(fn);
  }

  /**
   * The index as the engine sees it: the file → units lookup at once, the rest through the
   * gate. What the session's end cuts off finds nothing: there is nobody left to tell.
   */
  wrap(inner: SymbolIndex): SymbolIndex {
    const later = <T>(f: () => Promise<T>, none: T): Promise<T> => this.pass().then((go) => (go ? f() : none));
    return {
      unitsNaming: (base) => inner.unitsNaming(base),
      codeEntries: (name) => later(() => inner.codeEntries(name), []),
      variableDies: (name) => later(() => inner.variableDies(name), []),
      typeDie: (key) => later(() => inner.typeDie(key), undefined),
      buildFunctions: () => this.pass().then((go) => (go ? inner.buildFunctions() : Promise.reject(new Error('the debug session has ended')))),
      get functionsReady() {
        return inner.functionsReady;
      },
      close: async () => {
        this.close();
        await inner.close();
      },
    };
  }

  /** Resolves true once the index may be used, false if the session ends first. */
  private pass(): Promise<boolean> {
    if (this.phase === 'open' || this.phase === 'closed') return Promise.resolve(this.phase === 'open');
    // Halted while running (a breakpoint update): the caller holds the guest until answered.
    if (this.phase === 'running' && this.guest && !this.guest.isRunning) {
      this.open();
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (this.phase === 'configuring') this.armQuiet();
    });
  }

  private armQuiet(): void {
    clearTimeout(this.quiet);
    this.quiet = setTimeout(() => this.open(), this.quietMs);
  }

  private resumed(): void {
    if (this.phase !== 'configuring') return;
    this.phase = 'running';
    clearTimeout(this.quiet);
    this.runLimit = setTimeout(() => this.open(), this.runHoldMs);
    this.runLimit.unref();
  }

  private settle(): void {
    if (this.phase !== 'configuring' && this.phase !== 'running') return;
    this.phase = 'settling';
    clearTimeout(this.runLimit);
    this.armQuiet();
  }

  private open(): void {
    if (this.phase === 'open' || this.phase === 'closed') return;
    this.phase = 'open';
    this.clearTimers();
    for (const w of this.waiters.splice(0)) w(true);
    for (const fn of this.opened.splice(0)) fn();
  }

  private close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.clearTimers();
    this.opened.length = 0;
    for (const w of this.waiters.splice(0)) w(false);
  }

  private clearTimers(): void {
    clearTimeout(this.quiet);
    clearTimeout(this.runLimit);
  }
}
