/**
 * Standalone debug adapter: DAP over stdio (dist/adapter-main.js, which dist/adapter.js loads:
 * see entry.ts). When the client goes away (stdin closes, or a signal), QEMU goes with us;
 * setpriv's pdeathsig covers SIGKILL.
 */
import { QemuKernelSession } from './session';

const session = new QemuKernelSession({ onDisconnected: () => setTimeout(() => process.exit(0), 50) });
process.stdin.on('end', () => process.exit(0));
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => process.exit(0));
session.start(process.stdin, process.stdout);
