/** Extension entry: registers the debugger, the guest console terminal and commands. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CONSOLE_EVENT } from '../adapter/events';
import { ConsoleInfo, ConsoleTerminals } from './console';
import { QemuKernelConfigProvider } from './config';

/**
 * The adapter's data (symbol tables, DWARF trees, line tables) is long-lived; a small young
 * generation stops short-lived parsing garbage from inflating its RSS by ~30 MB, at no
 * measurable cost in speed (bench/README.md).
 */
const ADAPTER_FLAGS = ['--max-semi-space-size=2'];

export function activate(context: vscode.ExtensionContext): void {
  const consoles = new ConsoleTerminals();
  const adapter = context.asAbsolutePath(path.join('dist', 'adapter.js'));
  context.subscriptions.push(
    consoles,
    vscode.debug.registerDebugAdapterDescriptorFactory('qemu-kernel', {
      // A separate process: symbol work never blocks the extension host, and if the host
      // dies the adapter sees stdin close and takes QEMU down with it.
      createDebugAdapterDescriptor: () => new vscode.DebugAdapterExecutable(process.execPath, [...ADAPTER_FLAGS, adapter], { env: { ELECTRON_RUN_AS_NODE: '1' } }),
    }),
    vscode.debug.registerDebugConfigurationProvider('qemu-kernel', new QemuKernelConfigProvider()),
    vscode.debug.onDidReceiveDebugSessionCustomEvent((e) => {
      if (e.session.type === 'qemu-kernel' && e.event === CONSOLE_EVENT) consoles.open(e.session, e.body as ConsoleInfo);
    }),
    vscode.debug.onDidTerminateDebugSession((s) => {
      if (s.type === 'qemu-kernel') consoles.sessionEnded(s);
    }),
    vscode.commands.registerCommand('qemuKernel.showGuestConsole', () => {
      if (!consoles.show()) void vscode.window.showInformationMessage('No QEMU kernel session has a guest console yet. Start one with F5.');
    }),
  );
}

export function deactivate(): void {
  // Sessions end with their adapters; nothing to release here.
}
