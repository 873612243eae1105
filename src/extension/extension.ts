/**
 * Extension entry: registers the debugger, the guest console and monitor terminals, the
 * status-bar item, the log channel and commands. It stays small and engine-free: the engine
 * runs in the adapter process, so activation costs only this glue (bench/measures/activation.mjs).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CONSOLE_EVENT, LOG_EVENT, type ConsoleEventBody } from '../adapter/events';
import { QemuSessions, registerCommands } from './commands';
import { MonitorTerminals } from './monitor';
import { KernelLog } from './output';
import { GuestStatus } from './status';
import { RspTraceProvider } from './trace';
import { ConsoleInfo, ConsoleTerminals } from './console';
import { contributedSchemas, QemuKernelConfigProvider } from './config';
import { RegistersView } from '../ui/registers';
import { registerMemoryCommands } from '../ui/memory';

/**
 * The adapter's data (symbol tables, DWARF trees, line tables) is long-lived; a small young
 * generation stops short-lived parsing garbage from inflating its RSS by ~30 MB, at no
 * measurable cost in speed (bench/README.md).
 */
const ADAPTER_FLAGS = ['--max-semi-space-size=2'];

/** How long the last activate() took, in ms (the `qemuKernel.activationTime` command). */
let activationMs: number | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const started = performance.now();
  const log = new KernelLog();
  const consoles = new ConsoleTerminals();
  const monitors = new MonitorTerminals();
  const sessions = new QemuSessions();
  const status = new GuestStatus();
  const adapter = context.asAbsolutePath(path.join('dist', 'adapter.js'));
  context.subscriptions.push(
    log,
    consoles,
    monitors,
    sessions,
    status,
    new RegistersView(context.workspaceState),
    registerMemoryCommands(),
    vscode.debug.registerDebugAdapterDescriptorFactory('qemu-kernel', {
      // A separate process: symbol work never blocks the extension host, and if the host
      // dies the adapter sees stdin close and takes QEMU down with it.
      createDebugAdapterDescriptor: () => new vscode.DebugAdapterExecutable(process.execPath, [...ADAPTER_FLAGS, adapter], { env: { ELECTRON_RUN_AS_NODE: '1' } }),
    }),
    vscode.debug.registerDebugConfigurationProvider('qemu-kernel', new QemuKernelConfigProvider(contributedSchemas(context.extension.packageJSON))),
    // Offered in Run and Debug's start list even without a launch.json.
    vscode.debug.registerDebugConfigurationProvider('qemu-kernel', { provideDebugConfigurations: (folder) => new QemuKernelConfigProvider().provideDebugConfigurations(folder) }, vscode.DebugConfigurationProviderTriggerKind.Dynamic),
    vscode.debug.registerDebugConfigurationProvider('qemu-kernel', new RspTraceProvider(context.logUri, log)),
    vscode.debug.registerDebugAdapterTrackerFactory('qemu-kernel', { createDebugAdapterTracker: (s) => status.tracker(s) }),
    vscode.debug.onDidReceiveDebugSessionCustomEvent((e) => {
      if (e.session.type !== 'qemu-kernel') return;
      if (e.event === LOG_EVENT) log.fromAdapter(e.session, e.body);
      else if (e.event === CONSOLE_EVENT) {
        const body = e.body as ConsoleEventBody;
        consoles.open(e.session, body as ConsoleInfo);
        if (typeof body.monitor === 'string') monitors.register(e.session, body.monitor);
        sessions.ownsQemu(e.session);
      }
    }),
    vscode.debug.onDidTerminateDebugSession((s) => {
      if (s.type !== 'qemu-kernel') return;
      consoles.sessionEnded(s);
      monitors.sessionEnded(s);
    }),
    ...registerCommands(sessions, monitors),
    // For the E2E tier and bench/measures/activation.mjs; hidden from the palette.
    vscode.commands.registerCommand('qemuKernel.activationTime', () => activationMs),
    vscode.commands.registerCommand('qemuKernel.showGuestConsole', () => {
      if (!consoles.show()) void vscode.window.showInformationMessage('No QEMU kernel session has a guest console yet. Start one with F5.');
    }),
  );
  activationMs = performance.now() - started;
  log.write('debug', `Activated in ${activationMs.toFixed(2)} ms.`);
}

export function deactivate(): void {
  // Sessions end with their adapters; nothing to release here.
}
