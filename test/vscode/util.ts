/** Helpers for the tests that run inside the extension host. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { REPO } from '../support/env';

export const EXTENSION_ID = 'qemu-kernel-debug.qemu-kernel-debug';

export function extension(): vscode.Extension<unknown> {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  if (!ext) throw new Error(`${EXTENSION_ID} is not loaded in this extension host`);
  return ext;
}

/** The folder the workbench opened (examples/sample-guest), or that folder's path if none is open. */
export function sampleWorkspace(): vscode.WorkspaceFolder | undefined {
  const want = path.join(REPO, 'examples', 'sample-guest');
  return vscode.workspace.workspaceFolders?.find((f) => f.uri.fsPath === want) ?? vscode.workspace.workspaceFolders?.[0];
}

/** Resolve with the first value `event` fires that `pick` accepts, or fail after `ms`. */
export function nextEvent<T, R>(event: vscode.Event<T>, pick: (e: T) => R | undefined, ms: number, what: string): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const sub = event((e) => {
      const r = pick(e);
      if (r === undefined) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(r);
    });
  });
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
