/**
 * `qemuKernel.trace.rsp`: when on, each session writes every GDB remote protocol packet to a
 * file under the extension's log folder (the launch/attach `rspLog` field), and the output
 * channel says which file. A config that already names an `rspLog` keeps it.
 */
import * as path from 'node:path';
import vscode = require('vscode');
import type { KernelLog } from './output';

export const RSP_TRACE_SETTING = 'trace.rsp';

/** `config` with `rspLog` set to a new file in `logDir` when tracing is on and none was given. */
export function withRspTrace(config: vscode.DebugConfiguration, logDir: string, enabled: boolean, now: Date = new Date()): vscode.DebugConfiguration {
  if (!enabled || (typeof config.rspLog === 'string' && config.rspLog !== '')) return config;
  const stamp = now.toISOString().replace(/\..*$/, '').replace(/[-:]/g, '').replace('T', '-');
  const slug = String(config.name ?? 'session').replace(/[^\w.-]+/g, '_').slice(0, 40);
  return { ...config, rspLog: path.join(logDir, `rsp-${stamp}-${slug}.log`) };
}

/**
 * Registered beside the main configuration provider: VS Code runs every provider of a type
 * in turn, and this step comes after variable substitution, so it sees the final config.
 */
export class RspTraceProvider implements vscode.DebugConfigurationProvider {
  constructor(
    private readonly logDir: vscode.Uri,
    private readonly log: KernelLog,
  ) {}

  resolveDebugConfigurationWithSubstitutedVariables(folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration {
    const enabled = vscode.workspace.getConfiguration('qemuKernel', folder?.uri).get<boolean>(RSP_TRACE_SETTING, false);
    const out = withRspTrace(config, this.logDir.fsPath, enabled);
    if (out.rspLog !== config.rspLog) {
      this.log.write('info', `RSP wire trace of "${String(config.name ?? '')}": every packet goes to ${String(out.rspLog)}`);
    }
    return out;
  }
}
