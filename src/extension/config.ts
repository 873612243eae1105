/**
 * The qemu-kernel DebugConfigurationProvider: what launch.json starts with (the workspace's
 * own kernel tree when it is one, else the sample guest), what F5 does with no launch.json,
 * and checks that stop a bad configuration before QEMU starts, naming the field.
 */
import * as path from 'node:path';
import vscode = require('vscode');
import type * as Checks from './configcheck';
import type { DebugConfig, Problem } from './configcheck';

let loaded: typeof Checks | undefined;

/**
 * The checks and what they stand on (src/config's schema and rules, every arch's register
 * tables) are a bundle of their own, dist/configcheck.js, loaded at the first configuration
 * asked for: compiling and running them was a third of the extension's activation (bench P7a).
 */
function checks(): typeof Checks {
  return (loaded ??= require(path.join(__dirname, 'configcheck.js')) as typeof Checks);
}

/**
 * Checks go through src/config, as the adapter's do, so the editor refuses exactly what a
 * session would fail on. Warnings (a typo of a field) do not refuse: the adapter shows them.
 */
export class QemuKernelConfigProvider implements vscode.DebugConfigurationProvider {
  provideDebugConfigurations(folder: vscode.WorkspaceFolder | undefined): vscode.DebugConfiguration[] {
    return checks().initialConfigurations(folder?.uri.fsPath) as vscode.DebugConfiguration[];
  }

  resolveDebugConfiguration(folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration | undefined {
    const { checkConfig, detectKernelTree, isError, SAMPLE_GUEST_CONFIG, treeConfig } = checks();
    let resolved: DebugConfig = config;
    if (!config.type && !config.request && !config.name) {
      // F5 with no launch.json: the workspace's kernel if it is a built tree, else the sample guest.
      const tree = folder ? detectKernelTree(folder.uri.fsPath) : undefined;
      resolved = (tree && treeConfig(tree)) ?? { ...SAMPLE_GUEST_CONFIG };
    }
    resolved.type ??= 'qemu-kernel';
    const settings = vscode.workspace.getConfiguration('qemuKernel', folder);
    if (resolved.disassemblySyntax === undefined) resolved.disassemblySyntax = settings.get<string>('disassemblySyntax', 'att');
    // The adapter checks the workspace for a kernel tree to map compile-time source paths.
    if (folder && resolved.cwd === undefined) resolved.cwd = folder.uri.fsPath;
    const problems = checkConfig(resolved).filter(isError);
    if (problems.length) return refuse(resolved, problems);
    if (Array.isArray(resolved.breakAt)) addFunctionBreakpoints(resolved.breakAt as string[]);
    return resolved as vscode.DebugConfiguration;
  }

  resolveDebugConfigurationWithSubstitutedVariables(_folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration | undefined {
    const { checkSubstituted, isError } = checks();
    const problems = checkSubstituted(config).filter(isError);
    return problems.length ? refuse(config, problems) : config;
  }
}

/**
 * `breakAt` becomes ordinary function breakpoints, visible and removable in the Breakpoints
 * view; added before the session starts, they reach the adapter with the others.
 */
function addFunctionBreakpoints(names: string[]): void {
  const have = new Set(vscode.debug.breakpoints.filter((b): b is vscode.FunctionBreakpoint => b instanceof vscode.FunctionBreakpoint).map((b) => b.functionName));
  const add = [...new Set(names.map((n) => n.trim()).filter((n) => n && !have.has(n)))];
  if (add.length) vscode.debug.addBreakpoints(add.map((n) => new vscode.FunctionBreakpoint(n)));
}

/** Say what is wrong and offer launch.json; returning undefined makes VS Code abort the launch quietly. */
function refuse(config: DebugConfig, problems: Problem[]): undefined {
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more: ${problems.slice(1).map((p) => p.field).join(', ')})` : '';
  const open = 'Open launch.json';
  void vscode.window.showErrorMessage(`${config.name ?? 'qemu-kernel'}: ${checks().problemText(problems[0])}${more}`, open).then((pick) => {
    if (pick === open) void vscode.commands.executeCommand('workbench.action.debug.configure');
  });
  return undefined;
}
