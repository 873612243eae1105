/**
 * `qkd decode` on its own, bundled as dist/cli-decode.js: decoding a log needs the symbol
 * readers only, and a cold start should not load the engine's run control, the adapter and
 * the QEMU code first (see qkd.ts).
 */
import { indexCommand } from './codemap';
import { decodeCommand } from './decode';
import { runCli } from './run';
import { wantsHelp } from './usage';

const command = process.argv[2] === 'index' ? indexCommand : decodeCommand;
runCli(async () => (wantsHelp(process.argv[2], process.argv.slice(3)) ? 0 : command(process.argv.slice(3))));
