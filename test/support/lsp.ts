/** A client for dist/lsp.js over stdio, speaking LSP as an editor would. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { createProtocolConnection, StreamMessageReader, StreamMessageWriter, type CodeAction, type Diagnostic, type DocumentLink, type Hover, type PublishDiagnosticsParams } from 'vscode-languageserver-protocol/node';
import { REPO } from './env';

export interface LspClient {
  open(uri: string, text: string): void;
  /** The next diagnostics published for uri. */
  diagnostics(uri: string): Promise<Diagnostic[]>;
  links(uri: string): Promise<DocumentLink[]>;
  hover(uri: string, line: number, character: number): Promise<string>;
  codeActions(uri: string, line: number): Promise<CodeAction[]>;
  stop(): Promise<void>;
}

export async function startLsp(initializationOptions: object): Promise<LspClient> {
  const child = spawn(process.execPath, [path.join(REPO, 'dist', 'lsp.js'), '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.on('error', () => undefined);
  const conn = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  const waiting = new Map<string, (d: Diagnostic[]) => void>();
  conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => waiting.get(p.uri)?.(p.diagnostics));
  conn.listen();
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions });
  conn.sendNotification('initialized', {});
  return {
    open: (uri, text) => void conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'linux-kernel-log', version: 1, text } }),
    diagnostics: (uri) => new Promise((resolve) => waiting.set(uri, resolve)),
    links: (uri) => conn.sendRequest('textDocument/documentLink', { textDocument: { uri } }),
    hover: async (uri, line, character) => {
      const h: Hover | null = await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character } });
      const c = h?.contents;
      return typeof c === 'object' && c !== null && 'value' in c ? c.value : '';
    },
    codeActions: (uri, line) => conn.sendRequest('textDocument/codeAction', { textDocument: { uri }, range: { start: { line, character: 0 }, end: { line, character: 0 } }, context: { diagnostics: [] } }),
    stop: async () => {
      await conn.sendRequest('shutdown').catch(() => undefined);
      // The server exits on `exit`: a write after that must not surface as an unhandled rejection.
      await conn.sendNotification('exit').catch(() => undefined);
      conn.dispose();
      child.kill();
    },
  };
}
