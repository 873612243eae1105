/**
 * `crypto` for the language server's bundle (scripts/build.mjs aliases it there): node:crypto
 * and the stream modules it brings cost the server's start ~15 ms, and vscode-jsonrpc loads
 * it at its top only to name a pipe, which a server on stdio never does. Loaded at first use.
 */
import type * as Crypto from 'node:crypto';

let real: typeof Crypto | undefined;
const load = (): typeof Crypto => (real ??= require('node:crypto') as typeof Crypto);

export function randomBytes(size: number): Buffer {
  return load().randomBytes(size);
}
