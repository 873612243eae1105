/**
 * Where the debug adapter runs: inside the extension host (the default), or in a process of
 * its own (the `qemuKernel.adapterHost` setting).
 *
 * In the extension host, DAP messages are objects handed over in memory. In its own process,
 * every message is also a pipe write and a wakeup of the other process: a step over a line
 * waits for two of those, which on our bench machine took as long as QEMU's part of the step
 * (bench/README.md, P4). The separate process keeps the adapter's symbol work (parsing DWARF
 * on demand, milliseconds at a time; the whole-vmlinux index is built in a worker thread
 * either way) off the extension host's thread, for users who run many other extensions.
 *
 * QEMU's lifetime doesn't depend on the choice: it is started under setpriv's pdeathsig, so
 * it dies with whichever process started it, and a session that ends kills it.
 */
import * as path from 'node:path';
import vscode = require('vscode');

export const ADAPTER_HOST_SETTING = 'adapterHost';
export type AdapterHost = 'extensionHost' | 'process';
const HOSTS: readonly AdapterHost[] = ['extensionHost', 'process'];

/**
 * For the separate process. The adapter's data (symbol tables, DWARF trees, line tables) is
 * long-lived; a small young generation stops short-lived parsing garbage from inflating its
 * RSS by ~30 MB, at no measurable cost in speed (bench/README.md).
 */
const ADAPTER_FLAGS = ['--max-semi-space-size=2'];

/** dist/adapter-inline.js, typed as what VS Code needs of an in-process adapter. */
interface InlineAdapterModule {
  createSession(): vscode.DebugAdapter;
}

export class AdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(
    private readonly dist: string,
    private readonly warn: (message: string) => void,
  ) {}

  createDebugAdapterDescriptor(session: vscode.DebugSession): vscode.DebugAdapterDescriptor {
    if (this.host(session.workspaceFolder) === 'process') {
      return new vscode.DebugAdapterExecutable(process.execPath, [...ADAPTER_FLAGS, path.join(this.dist, 'adapter.js')], { env: { ELECTRON_RUN_AS_NODE: '1' } });
    }
    // Loaded on the first session, not at activation: it is most of the extension's code.
    const inline = require(path.join(this.dist, 'adapter-inline.js')) as InlineAdapterModule;
    return new vscode.DebugAdapterInlineImplementation(inline.createSession());
  }

  private host(folder: vscode.WorkspaceFolder | undefined): AdapterHost {
    const value = vscode.workspace.getConfiguration('qemuKernel', folder).get<unknown>(ADAPTER_HOST_SETTING, 'extensionHost');
    if (HOSTS.includes(value as AdapterHost)) return value as AdapterHost;
    this.warn(`The qemuKernel.${ADAPTER_HOST_SETTING} setting is ${JSON.stringify(value)}; it must be one of ${HOSTS.map((h) => `"${h}"`).join(', ')}. Running the adapter in the extension host.`);
    return 'extensionHost';
  }
}
