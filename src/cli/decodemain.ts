/**
 * `qkd decode` on its own, bundled as dist/cli-decode.js: decoding a log needs the symbol
 * readers only, and a cold start should not load the engine's run control, the adapter and
 * the QEMU code first (see qkd.ts).
 */
import { decodeCommand } from './decode';
import { runCli } from './run';
import { wantsHelp } from './usage';

runCli(async () => (wantsHelp('decode', process.argv.slice(3)) ? 0 : decodeCommand(process.argv.slice(3))));
