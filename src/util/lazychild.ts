/**
 * `child_process` for the language server's bundle (aliased there by scripts/build.mjs, as
 * lazycrypto.ts is): vscode-languageserver loads it at its top for module resolution the server
 * never asks for, and with it node:dgram and the child-process internals. Loaded at first use.
 */
import type * as ChildProcess from 'node:child_process';

let real: typeof ChildProcess | undefined;
const load = (): typeof ChildProcess => (real ??= require('node:child_process') as typeof ChildProcess);

export const fork: typeof ChildProcess.fork = ((...args: Parameters<typeof ChildProcess.fork>) => load().fork(...args)) as typeof ChildProcess.fork;
export const spawnSync: typeof ChildProcess.spawnSync = ((...args: Parameters<typeof ChildProcess.spawnSync>) => load().spawnSync(...args)) as typeof ChildProcess.spawnSync;
