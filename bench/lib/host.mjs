// The bench's stand-in for VS Code's extension host: one process that runs each session's
// adapter inside itself, beside the DAP client's end, as the extension host does. Sessions
// arrive over IPC, one at a time; the figures go back the same way. It ends with the bench.
import { hostedSession } from './dap.mjs';

process.on('message', async (opts) => {
  try {
    process.send({ ok: true, r: await hostedSession(opts) });
  } catch (e) {
    process.send({ ok: false, error: e instanceof Error ? e.message : String(e) });
  }
});
process.on('disconnect', () => process.exit(0));
