/**
 * A status-bar item with the guest's state: building / booting / running / stopped at
 * <function> / exited. The adapter's state events say what DAP cannot (building, the
 * function at a stop); DAP's own stopped/continued/terminated events, seen through a
 * tracker, keep it right even when a state event is missing. Clicking shows the console.
 */
import vscode = require('vscode');
import { STATE_EVENT, type GuestState, type StateEventBody } from '../adapter/events';

interface Entry {
  name: string;
  state: GuestState;
  detail?: string;
  updated: number;
}

const STATES: readonly GuestState[] = ['building', 'booting', 'running', 'stopped', 'exited'];

/** The status text for a state, with a codicon. Exported for tests and the walkthrough's wording. */
export function statusText(state: GuestState, detail?: string): string {
  switch (state) {
    case 'building':
      return '$(loading~spin) QEMU: building guest';
    case 'booting':
      return '$(loading~spin) QEMU: booting';
    case 'running':
      return '$(play) QEMU: running';
    case 'stopped':
      return `$(debug-pause) QEMU: stopped${detail ? ` at ${detail}` : ''}`;
    case 'exited':
      return '$(debug-stop) QEMU: exited';
  }
}

export class GuestStatus implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private readonly sessions = new Map<string, Entry>();
  private readonly subs: vscode.Disposable[] = [];
  private tick = 0;

  constructor() {
    this.item = vscode.window.createStatusBarItem('qemuKernel.guestState', vscode.StatusBarAlignment.Left, 50);
    this.item.name = 'QEMU Kernel Guest';
    this.item.command = 'qemuKernel.showGuestConsole';
    this.subs.push(vscode.debug.onDidChangeActiveDebugSession(() => this.render()));
  }

  tracker(session: vscode.DebugSession): vscode.DebugAdapterTracker {
    return {
      onDidSendMessage: (m: unknown) => this.onMessage(session, m),
      onExit: () => this.set(session, 'exited'),
    };
  }

  private onMessage(session: vscode.DebugSession, m: unknown): void {
    const msg = m as { type?: string; event?: string; body?: unknown };
    if (msg.type !== 'event') return;
    const cur = this.sessions.get(session.id);
    switch (msg.event) {
      case STATE_EVENT: {
        const b = (msg.body ?? {}) as Partial<StateEventBody>;
        if (b.state && STATES.includes(b.state)) this.set(session, b.state, typeof b.detail === 'string' ? b.detail : undefined);
        break;
      }
      case 'stopped':
        // The adapter's state event came first with the function; keep it.
        if (cur?.state !== 'stopped') this.set(session, 'stopped');
        break;
      case 'continued':
        this.set(session, 'running');
        break;
      case 'terminated':
      case 'exited':
        this.set(session, 'exited');
        break;
    }
  }

  private set(session: vscode.DebugSession, state: GuestState, detail?: string): void {
    this.sessions.set(session.id, { name: session.name, state, detail, updated: ++this.tick });
    this.render();
  }

  /** The active session's guest when it is ours, else the one that changed last. */
  private render(): void {
    const active = vscode.debug.activeDebugSession;
    let e = active ? this.sessions.get(active.id) : undefined;
    if (!e) for (const x of this.sessions.values()) if (!e || x.updated > e.updated) e = x;
    if (!e) {
      this.item.hide();
      return;
    }
    this.item.text = statusText(e.state, e.detail);
    const words = statusText(e.state, e.detail).replace(/^\$\([^)]*\) QEMU: /, '');
    this.item.tooltip = `Guest of "${e.name}": ${words}. Click to show the guest console.`;
    this.item.show();
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.item.dispose();
  }
}
