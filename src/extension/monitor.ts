/**
 * "Open QEMU Monitor": a terminal on the human monitor socket QEMU opens in the session's
 * private run dir. QEMU's readline does the editing, so the terminal only relays bytes. The
 * socket serves one client at a time, so each session keeps at most one monitor terminal.
 */
import vscode = require('vscode');
import { MonitorConnection } from '../qemu/monitor';

interface Entry {
  socket: string;
  name: string;
  terminal?: vscode.Terminal;
  ended: boolean;
}

export class MonitorTerminals implements vscode.Disposable {
  private readonly bySession = new Map<string, Entry>();
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    this.subs.push(
      vscode.window.onDidCloseTerminal((t) => {
        for (const e of this.bySession.values()) if (e.terminal === t) e.terminal = undefined;
      }),
    );
  }

  /** A session reported its monitor socket (in the console event). */
  register(session: vscode.DebugSession, socket: string): void {
    this.bySession.set(session.id, { socket, name: `QEMU Monitor: ${session.name}`, ended: false });
  }

  sessionEnded(session: vscode.DebugSession): void {
    const e = this.bySession.get(session.id);
    if (e) e.ended = true;
  }

  /** True while `session`'s QEMU runs and has a monitor we can open. */
  has(session: vscode.DebugSession): boolean {
    const e = this.bySession.get(session.id);
    return !!e && !e.ended;
  }

  /** Reveal the session's monitor terminal, opening one when there is none. */
  open(session: vscode.DebugSession): boolean {
    const e = this.bySession.get(session.id);
    if (!e || e.ended) return false;
    e.terminal ??= vscode.window.createTerminal({ name: e.name, pty: monitorPty(e.socket) });
    e.terminal.show();
    return true;
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}

function monitorPty(socket: string): vscode.Pseudoterminal {
  const write = new vscode.EventEmitter<string>();
  const conn = new MonitorConnection(socket);
  conn.on('data', (text: string) => write.fire(text));
  conn.on('close', (error: string | undefined) => write.fire(`\r\n[qemu-kernel-debug: the QEMU monitor closed${error ? `: ${error}` : ''}]\r\n`));
  return {
    onDidWrite: write.event,
    open: () => {
      conn.connect().catch((e: Error) => write.fire(`[qemu-kernel-debug: cannot reach the QEMU monitor at ${socket}: ${e.message}]\r\n`));
    },
    close: () => conn.close(),
    handleInput: (data: string) => conn.write(data),
  };
}
