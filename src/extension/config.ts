/** Launch configuration defaults: with no launch.json, debug the sample guest. */
import * as vscode from 'vscode';

export class QemuKernelConfigProvider implements vscode.DebugConfigurationProvider {
  resolveDebugConfiguration(folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration {
    const resolved: vscode.DebugConfiguration =
      !config.type && !config.request && !config.name ? { type: 'qemu-kernel', request: 'launch', name: 'Debug sample guest', sampleGuest: true } : config;
    // The adapter checks the workspace for a kernel tree to map compile-time source paths.
    if (folder && resolved.cwd === undefined) resolved.cwd = folder.uri.fsPath;
    return resolved;
  }
}
