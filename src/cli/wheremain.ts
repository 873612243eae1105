/**
 * `qkd where` on its own, bundled as dist/cli-where.js: resolving a breakpoint offline needs
 * the symbol readers only, and a cold start should not load and compile the engine, the
 * adapter and the QEMU code (nor the child_process and net modules they pull in) first.
 */
import { runCli } from './run';
import { wantsHelp } from './usage';
import { whereCommand } from './where';

runCli(async () => (wantsHelp('where', process.argv.slice(3)) ? 0 : whereCommand(process.argv.slice(3))));
