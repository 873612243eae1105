/**
 * What the kernel-log language server adds to LSP. The extension imports this file, so it
 * holds names and types only: nothing that would pull the server into dist/extension.js.
 */

/** vmlinux and where modules' .ko files are (folders searched for `name.ko`, or the files). */
export interface SymbolsOptions {
  vmlinux?: string;
  modules?: string[];
}

/** The client's symbols changed (a debug session started, the setting changed). */
export const SYMBOLS_NOTIFICATION = 'qemuKernel/symbols';

/** Where one code reference's source is, for clients with text of their own (the Guest Console's terminal links). */
export const RESOLVE_REQUEST = 'qemuKernel/resolve';
export interface ResolveParams {
  func: string;
  /** Hex, with or without 0x. */
  offset: string;
  module?: string;
}
export type ResolveResult = { path: string; line: number } | { error: string };
