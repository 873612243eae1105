/**
 * Extension entry: registers the debugger, the guest console and monitor terminals, the
 * status-bar item, the log channel and commands. It stays small and engine-free: the engine
 * is in the adapter's bundles, loaded when a session starts (adapterfactory.ts), so activation
 * costs only this glue (bench/measures/activation.mjs).
 */
import vscode = require('vscode');
import { CONSOLE_EVENT, LOG_EVENT, SYMBOLS_EVENT, type ConsoleEventBody, type SymbolsEventBody } from '../adapter/events';
import { QemuSessions, registerCommands } from './commands';
import { MonitorTerminals } from './monitor';
import { KernelLog } from './output';
import { GuestStatus } from './status';
import { RspTraceProvider } from './trace';
import { ConsoleInfo, ConsoleTerminals } from './console';
import { AdapterFactory } from './adapterfactory';
import { KernelLogs } from './kernellog';
import { InitramfsLists } from './initramfslang';
import { QemuKernelConfigProvider } from './config';
import { ModulesView } from '../ui/modules';
import { TasksView } from '../ui/tasks';
import { RegistersView } from '../ui/registers';
import { registerMemoryCommands } from '../ui/memory';

/** How long the last activate() took, in ms (the `qemuKernel.activationTime` command). */
let activationMs: number | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const started = performance.now();
  const log = new KernelLog();
  const consoles = new ConsoleTerminals();
  const monitors = new MonitorTerminals();
  const sessions = new QemuSessions();
  const status = new GuestStatus();
  const kernelLogs = new KernelLogs(context.asAbsolutePath('dist'));
  context.subscriptions.push(
    new InitramfsLists(),
    kernelLogs,
    log,
    consoles,
    monitors,
    sessions,
    status,
    new RegistersView(context.workspaceState),
    new ModulesView(),
    new TasksView(),
    registerMemoryCommands(),
    vscode.debug.registerDebugAdapterDescriptorFactory('qemu-kernel', new AdapterFactory(context.asAbsolutePath('dist'), (m) => void vscode.window.showWarningMessage(m))),
    vscode.debug.registerDebugConfigurationProvider('qemu-kernel', new QemuKernelConfigProvider()),
    // Offered in Run and Debug's start list even without a launch.json.
    vscode.debug.registerDebugConfigurationProvider('qemu-kernel', { provideDebugConfigurations: (folder) => new QemuKernelConfigProvider().provideDebugConfigurations(folder) }, vscode.DebugConfigurationProviderTriggerKind.Dynamic),
    vscode.debug.registerDebugConfigurationProvider('qemu-kernel', new RspTraceProvider(context.logUri, log)),
    vscode.debug.registerDebugAdapterTrackerFactory('qemu-kernel', { createDebugAdapterTracker: (s) => status.tracker(s) }),
    vscode.debug.onDidReceiveDebugSessionCustomEvent((e) => {
      if (e.session.type !== 'qemu-kernel') return;
      if (e.event === LOG_EVENT) log.fromAdapter(e.session, e.body);
      else if (e.event === SYMBOLS_EVENT) kernelLogs.sessionSymbols(e.session, e.body as SymbolsEventBody);
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
      kernelLogs.sessionEnded(s);
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
