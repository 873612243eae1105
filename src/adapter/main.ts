/**
 * Standalone debug adapter: DAP over stdio (dist/adapter-main.js, which dist/adapter.js loads:
 * see entry.ts). The adapter itself is dist/adapter-lib.js, the bundle the extension host
 * loads too, so the package carries it once. When the client goes away (stdin closes, or a
 * signal), QEMU goes with us; setpriv's pdeathsig covers SIGKILL.
 */
import type { QemuKernelSession, SessionOptions } from './session';

const lib = require(`${__dirname}/adapter-lib.js`) as { QemuKernelSession: new (opts: SessionOptions) => QemuKernelSession };
const session = new lib.QemuKernelSession({ onDisconnected: () => setTimeout(() => process.exit(0), 50) });
process.stdin.on('end', () => process.exit(0));
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => process.exit(0));
session.start(process.stdin, process.stdout);
