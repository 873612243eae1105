/**
 * dist/adapter-lib.js: the debug adapter as a library, for a host that runs it in its own
 * process (the extension host, through vscode.DebugAdapterInlineImplementation). It is loaded
 * through dist/adapter-inline.js, which compiles it eagerly (see inline.ts).
 */
import { QemuKernelSession } from './session';
import { liveIndexWorkers } from '../symbols/index/client';

/** liveIndexWorkers: for tests of the adapter in their own process, that no session leaves a worker behind. */
export { QemuKernelSession, liveIndexWorkers };

/** A session that speaks DAP as objects: handleMessage in, onDidSendMessage out. */
export function createSession(): QemuKernelSession {
  return new QemuKernelSession();
}
