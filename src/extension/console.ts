/**
 * The guest's serial console as a VS Code terminal. It replays the log from boot, then
 * follows it; keystrokes go to the guest. Only one terminal per session holds the input
 * socket, because QEMU's console socket serves one client at a time.
 */
import vscode = require('vscode');
import { GuestConsole } from '../qemu/console';

export interface ConsoleInfo {
  log: string;
  /** This session's first byte in `log`, which may hold earlier sessions too. */
  logStart?: number;
  socket: string;
}

export class ConsoleTerminals implements vscode.Disposable {
  private readonly bySession = new Map<string, { info: ConsoleInfo; name: string; terminal?: vscode.Terminal; ended: boolean }>();
  private last?: string;
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    this.subs.push(
      vscode.window.onDidCloseTerminal((t) => {
        for (const entry of this.bySession.values()) if (entry.terminal === t) entry.terminal = undefined;
      }),
    );
  }

  /** Called when a session reports its console. */
  open(session: vscode.DebugSession, info: ConsoleInfo): void {
    this.bySession.set(session.id, { info, name: `Guest Console: ${session.name}`, ended: false });
    this.last = session.id;
    this.show(session.id, true);
  }

  sessionEnded(session: vscode.DebugSession): void {
    const e = this.bySession.get(session.id);
    if (e) e.ended = true;
  }

  /** Reveal the console of `sessionId` (default: the active or last session), reopening it if closed. */
  show(sessionId?: string, preserveFocus = false): boolean {
    const id = sessionId ?? (vscode.debug.activeDebugSession && this.bySession.has(vscode.debug.activeDebugSession.id) ? vscode.debug.activeDebugSession.id : this.last);
    const entry = id ? this.bySession.get(id) : undefined;
    if (!entry) return false;
    if (!entry.terminal) entry.terminal = vscode.window.createTerminal({ name: entry.name, pty: makePty(entry.info, entry.ended) });
    entry.terminal.show(preserveFocus);
    return true;
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}

function makePty(info: ConsoleInfo, ended: boolean): vscode.Pseudoterminal {
  const write = new vscode.EventEmitter<string>();
  let con: GuestConsole | undefined;
  const decoder = new TextDecoder('utf-8');
  return {
    onDidWrite: write.event,
    open: () => {
      con = new GuestConsole(info.log, ended ? undefined : info.socket, { fromOffset: info.logStart });
      con.on('data', (d: Buffer) => write.fire(decoder.decode(d, { stream: true })));
      con.on('input-error', () => write.fire('\r\n[qemu-kernel-debug: the guest console no longer takes input]\r\n'));
      con.start();
      if (ended) write.fire(`[qemu-kernel-debug: replaying the log of an ended session: ${info.log}]\r\n`);
    },
    close: () => void con?.close(),
    handleInput: (data: string) => {
      con?.write(data);
    },
  };
}
