/**
 * dist/lspclient.js: the language client of the kernel-log server, a bundle of its own that
 * kernellog.ts loads the first time it is needed, so activation never loads
 * vscode-languageclient.
 */
import vscode = require('vscode');
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { RESOLVE_REQUEST, SYMBOLS_NOTIFICATION, type ResolveParams, type ResolveResult, type SymbolsOptions } from '../lsp/protocol';

export interface KernelLogClient {
  setSymbols(o: SymbolsOptions | undefined): void;
  resolve(p: ResolveParams): Promise<ResolveResult>;
  dispose(): Promise<void>;
}

export async function startKernelLogClient(serverModule: string, symbols: SymbolsOptions | undefined, output: vscode.OutputChannel): Promise<KernelLogClient> {
  // The server makes no TLS connection, and node reads NODE_EXTRA_CA_CERTS's whole bundle as
  // it starts (80 ms where it names the system store): its start is what a log waits on.
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const run = { module: serverModule, transport: TransportKind.ipc, options: { env } };
  const server: ServerOptions = { run, debug: run };
  const options: LanguageClientOptions = {
    documentSelector: [{ language: 'linux-kernel-log' }],
    initializationOptions: symbols ?? {},
    outputChannel: output,
  };
  const client = new LanguageClient('qemuKernel.kernelLog', 'Kernel Log Language Server', server, options);
  await client.start();
  return {
    setSymbols: (o) => void client.sendNotification(SYMBOLS_NOTIFICATION, o ?? {}),
    resolve: (p) => client.sendRequest<ResolveResult>(RESOLVE_REQUEST, p),
    dispose: () => client.stop(),
  };
}
