/**
 * The "QEMU Kernel" output channel: a LogOutputChannel, so every line carries a level the
 * user can filter on (Output view → Set Log Level). The adapter's lines arrive as custom
 * events; the extension adds its own (activation time, RSP trace files).
 */
import vscode = require('vscode');
import { LOG_LEVELS, type LogEventBody, type LogLevel } from '../adapter/events';

export class KernelLog implements vscode.Disposable {
  readonly channel: vscode.LogOutputChannel;

  constructor() {
    this.channel = vscode.window.createOutputChannel('QEMU Kernel', { log: true });
  }

  write(level: LogLevel, message: string): void {
    const c = this.channel;
    switch (level) {
      case 'trace':
        return c.trace(message);
      case 'debug':
        return c.debug(message);
      case 'info':
        return c.info(message);
      case 'warn':
        return c.warn(message);
      case 'error':
        return c.error(message);
    }
  }

  /** A log event from a session's adapter; the session's name tells concurrent sessions apart. */
  fromAdapter(session: vscode.DebugSession, body: unknown): void {
    const b = (body ?? {}) as Partial<LogEventBody>;
    if (typeof b.message !== 'string') return;
    const level = LOG_LEVELS.includes(b.level as LogLevel) ? (b.level as LogLevel) : 'info';
    this.write(level, `[${session.name}] ${b.message}`);
  }

  show(): void {
    this.channel.show(true);
  }

  dispose(): void {
    this.channel.dispose();
  }
}
