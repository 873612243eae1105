/**
 * `qkd`: the command line, sharing the engine and the adapter with the editor. Bundled as
 * dist/cli-main.js, which dist/cli.js (cli/qkd.ts) loads for every command but `where`.
 */
import { bootCommand } from './boot';
import { DapError } from './dap';
import { debugCommand } from './debug';
import { indexCommand } from './codemap';
import { initramfsCommand } from './initramfs';
import { decodeCommand } from './decode';
import { guestCommand } from './guest';
import { runCli } from './run';
import { USAGE, wantsHelp } from './usage';
import { whereCommand } from './where';


async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (wantsHelp(command, rest)) return 0;
  switch (command) {
    case 'guest':
      return guestCommand(rest);
    case 'boot':
      return bootCommand(rest);
    case 'debug':
      return debugCommand(rest);
    case 'where':
      return whereCommand(rest);
    case 'decode':
      return decodeCommand(rest);
    case 'index':
      return indexCommand(rest);
    case 'initramfs':
      return initramfsCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`qkd: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

// Errors the adapter answered with are user-facing (bad config, no QEMU), like UserError.
runCli(() => main(process.argv.slice(2)), (err) => err instanceof DapError);
