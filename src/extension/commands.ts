/**
 * The "QEMU Kernel" commands that act on a running session: restart the guest, open QEMU's
 * monitor, copy QEMU's command line. They work on the active qemu-kernel session, or the
 * most recent one still running when another debugger is active.
 */
import vscode = require('vscode');
import { COMMAND_LINE_REQUEST, KERNEL_LOG_REQUEST, RESTART_GUEST_REQUEST, TRANSLATE_REQUEST, type CommandLineResponseBody, type KernelLogResponseBody, type RestartGuestResponseBody, type TranslateResponseBody } from '../adapter/events';
import type { MonitorTerminals } from './monitor';

/** Context key: the active debug session is a qemu-kernel launch whose QEMU still runs. */
export const OWNS_QEMU_CONTEXT = 'qemuKernel.ownsQemu';
/** Context key: some session has reported a guest console (live or ended). */
export const HAS_CONSOLE_CONTEXT = 'qemuKernel.hasConsole';

/** Live qemu-kernel sessions, and which of them own a QEMU; keeps the context keys current. */
export class QemuSessions implements vscode.Disposable {
  private readonly live = new Map<string, vscode.DebugSession>();
  private readonly owning = new Set<string>();
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    this.subs.push(
      vscode.debug.onDidStartDebugSession((s) => {
        if (s.type === 'qemu-kernel') this.live.set(s.id, s);
      }),
      vscode.debug.onDidTerminateDebugSession((s) => {
        this.live.delete(s.id);
        this.owning.delete(s.id);
        this.update();
      }),
      vscode.debug.onDidChangeActiveDebugSession(() => this.update()),
    );
  }

  /** The session reported a console: it launched QEMU itself. */
  ownsQemu(session: vscode.DebugSession): void {
    this.live.set(session.id, session);
    this.owning.add(session.id);
    void vscode.commands.executeCommand('setContext', HAS_CONSOLE_CONTEXT, true);
    this.update();
  }

  /** The session a command should act on. */
  target(): vscode.DebugSession | undefined {
    const active = vscode.debug.activeDebugSession;
    if (active?.type === 'qemu-kernel') return active;
    const all = [...this.live.values()];
    return all.filter((s) => this.owning.has(s.id)).pop() ?? all.pop();
  }

  private update(): void {
    const active = vscode.debug.activeDebugSession;
    void vscode.commands.executeCommand('setContext', OWNS_QEMU_CONTEXT, !!active && this.owning.has(active.id));
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
  }
}

const NO_SESSION = 'No QEMU kernel session is running. Start one with F5 (Run and Debug → QEMU Kernel).';

/** The message of a failed custom request, without VS Code's wrapping. */
function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function registerCommands(sessions: QemuSessions, monitors: MonitorTerminals): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('qemuKernel.restartGuest', async () => {
      const s = sessions.target();
      if (!s) return void vscode.window.showInformationMessage(NO_SESSION);
      try {
        const r = (await s.customRequest(RESTART_GUEST_REQUEST)) as RestartGuestResponseBody;
        vscode.window.setStatusBarMessage(`$(debug-restart) Guest of "${s.name}" restarted${r.continued ? ' and continued' : ''}; breakpoints stay set.`, 5000);
      } catch (e) {
        void vscode.window.showErrorMessage(`Restart Guest: ${reason(e)}`);
      }
    }),
    vscode.commands.registerCommand('qemuKernel.openMonitor', () => {
      const s = sessions.target();
      if (!s) return void vscode.window.showInformationMessage(NO_SESSION);
      if (!monitors.open(s)) {
        void vscode.window.showInformationMessage(`"${s.name}" has no QEMU monitor to open: it attached to a QEMU it does not own, or its QEMU has exited.`);
      }
    }),
    vscode.commands.registerCommand('qemuKernel.showKernelLog', async () => {
      const s = sessions.target();
      if (!s) return void vscode.window.showInformationMessage(NO_SESSION);
      try {
        const r = (await s.customRequest(KERNEL_LOG_REQUEST)) as KernelLogResponseBody;
        const doc = await vscode.workspace.openTextDocument({ language: 'linux-kernel-log', content: r.text });
        await vscode.window.showTextDocument(doc, { preview: false });
        vscode.window.setStatusBarMessage(`Kernel log of "${s.name}": ${r.records} records read from guest memory.`, 5000);
      } catch (e) {
        void vscode.window.showErrorMessage(`Show Kernel Log: ${reason(e)}`);
      }
    }),
    vscode.commands.registerCommand('qemuKernel.translateAddress', async () => {
      const s = sessions.target();
      if (!s) return void vscode.window.showInformationMessage(NO_SESSION);
      const expression = await vscode.window.showInputBox({ title: 'Translate Address', prompt: 'A virtual address or a C expression: 0xffff888000000000, &init_task, $current, $sp', ignoreFocusOut: true });
      if (!expression) return;
      try {
        const r = (await s.customRequest(TRANSLATE_REQUEST, { expression })) as TranslateResponseBody;
        const doc = await vscode.workspace.openTextDocument({ content: r.text });
        await vscode.window.showTextDocument(doc, { preview: true });
      } catch (e) {
        void vscode.window.showErrorMessage(`Translate Address: ${reason(e)}`);
      }
    }),
    vscode.commands.registerCommand('qemuKernel.copyQemuCommandLine', async () => {
      const s = sessions.target();
      if (!s) return void vscode.window.showInformationMessage(NO_SESSION);
      try {
        const r = (await s.customRequest(COMMAND_LINE_REQUEST)) as CommandLineResponseBody;
        await vscode.env.clipboard.writeText(r.commandLine);
        void vscode.window.showInformationMessage(`Copied the QEMU command line of "${s.name}" (${r.argv.length} arguments${r.pid ? `, pid ${r.pid}` : ''}) to the clipboard.`);
      } catch (e) {
        void vscode.window.showErrorMessage(`Copy QEMU Command Line: ${reason(e)}`);
      }
    }),
  ];
}
