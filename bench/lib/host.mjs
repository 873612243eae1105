// The bench's stand-in for VS Code's extension host: one process that runs each session's
// adapter inside itself, beside the DAP client's end, as the extension host does. Sessions
// arrive over IPC, one at a time; the figures go back the same way. It ends with the bench.
// Imported without an IPC channel (the bench's --smoke imports every module) it does nothing.
import { hostedSession } from './dap.mjs';
import { soakSession } from './soak.mjs';

const KINDS = { session: hostedSession, soak: soakSession };

if (process.send) {
  process.on('message', async (opts) => {
    try {
      const run = KINDS[opts.kind ?? 'session'];
      if (!run) throw new Error(`unknown session kind ${opts.kind}`);
      process.send({ ok: true, r: await run(opts) });
    } catch (e) {
      process.send({ ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
