/**
 * dist/adapter-inline.js: loads the adapter (dist/adapter-lib.js) into the calling process,
 * as the extension host does for every session unless the user asks for a separate process.
 *
 * A DAP message to an adapter in its own process is a pipe write and a wakeup of that
 * process each way; a step over a line waits for two of them, ~0.3–0.5 ms each on our bench
 * machine, as long as QEMU takes for the step itself (bench/README.md, P4).
 *
 * The bundle is compiled eagerly, as the standalone adapter is (entry.ts): a step would
 * otherwise compile the code it runs on the way. The flag is put back at once, so code the
 * host loads later (other extensions) is compiled lazily, as before.
 */
import { setFlagsFromString } from 'node:v8';
import type { QemuKernelSession } from './session';

interface AdapterLib {
  createSession(): QemuKernelSession;
}

let lib: AdapterLib | undefined;

function load(): AdapterLib {
  if (lib) return lib;
  setFlagsFromString('--no-lazy');
  try {
    lib = require(`${__dirname}/adapter-lib.js`) as AdapterLib;
  } finally {
    setFlagsFromString('--lazy');
  }
  return lib;
}

/** A new session of the in-process adapter; the first call loads it (~20 ms of compiling). */
export function createSession(): QemuKernelSession {
  return load().createSession();
}
