// The module and kernel rows' stand-in for VS Code's extension host, as bench/lib/host.mjs is for
// P3–P6b and the soak: one process that runs each session's adapter inside itself, beside
// the DAP client's end. Sessions arrive over IPC, one at a time; results go back the same
// way. It ends with the bench. Imported without an IPC channel (--smoke) it does nothing.
import { oursModuleLoads, oursBoot, oursAttach } from './modours.mjs';
import { oursKernel } from './kours.mjs';

const KINDS = { m1a: oursModuleLoads, m1b: oursBoot, m2: oursAttach, k: oursKernel };

if (process.send) {
  process.on('message', async (opts) => {
    try {
      const run = KINDS[opts.kind];
      if (!run) throw new Error(`unknown module session kind ${opts.kind}`);
      process.send({ ok: true, r: await run(opts) });
    } catch (e) {
      process.send({ ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
