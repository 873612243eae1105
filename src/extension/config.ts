/** Launch configuration defaults: with no launch.json, debug the sample guest. */
import * as vscode from 'vscode';

export class QemuKernelConfigProvider implements vscode.DebugConfigurationProvider {
  resolveDebugConfiguration(_folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration {
    if (!config.type && !config.request && !config.name) {
      return { type: 'qemu-kernel', request: 'launch', name: 'Debug sample guest', sampleGuest: true };
    }
    return config;
  }
}
