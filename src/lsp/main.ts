/**
 * dist/lsp.js: the kernel-log language server as its own process, started by the extension
 * (vscode-languageclient over IPC) or any LSP client (--stdio).
 */
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { serveKernelLog } from './server';

serveKernelLog(createConnection(ProposedFeatures.all));
