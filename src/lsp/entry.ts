/**
 * dist/lsp.js: starts the kernel-log language server (dist/lsp-main.js) from V8's code cache,
 * as the editor waits on its start for a log's first diagnostics (bench L1).
 */
import * as path from 'node:path';
import { requireCached } from '../util/codecache';

requireCached(path.join(__dirname, 'lsp-main.js'), 1500);
