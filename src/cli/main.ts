/**
 * `qkd`: the command line, sharing the engine and the adapter with the editor. Bundled as
 * dist/cli-main.js, which dist/cli.js (cli/qkd.ts) loads for every command but `where`.
 */
import { bootCommand } from './boot';
import { DapError } from './dap';
import { debugCommand } from './debug';
import { decodeCommand } from './decode';
import { guestCommand } from './guest';
import { runCli } from './run';
import { whereCommand } from './where';

const USAGE = `usage: qkd <command> [options]

commands:
  guest build [--arch ARCH] [--json]     build (or reuse from the cache) the sample guest;
                                          ARCH is x86_64 (default), aarch64 or riscv64
  boot [launch options]                   boot a kernel, console on this terminal (Ctrl-A x quits)
  debug [--break FUNC]... [--catch FILTERS] [--lsmod] [--ps] [--dmesg] [launch options] [--json]
                                          boot under the debugger, stop at FUNC (default kernel_clone;
                                          a module's function waits until the module loads), print
                                          where it stopped and the registers (--lsmod: and the loaded
                                          modules with their symbol files; --ps: and the kernel's tasks;
                                          --dmesg: and the kernel log read from guest memory), then end
                                          the guest; a panic, Oops, BUG or sanitizer report stops it
                                          too, at the faulting line (--catch: a comma-separated list of
                                          panic, oops, bug, warn, sanitizer, lockup, or none)
  decode [--vmlinux FILE] [--modules DIR]... [LOG]...
                                          decode a kernel log's Oops, WARN or BUG like the kernel's
                                          scripts/decode_stacktrace.sh: each func+0x1a/0x200 [mod]
                                          becomes its source line and inlined calls (default: the
                                          x86_64 sample guest's vmlinux and modules; stdin without LOG)
  where --vmlinux FILE [--source DIR] [--inlined] [--json] LOCATION...
                                          resolve breakpoint locations (FUNC or FILE:LINE) offline, like
                                          gdb's 'info line', with no guest; --inlined adds inlined
                                          copies and compiler clones of FUNC

launch options (default: the sample guest):
  --kernel FILE  --vmlinux FILE  --initrd FILE  --append TEXT  --arch x86_64
  --memory 512M  --smp N  --accel auto|kvm|tcg  --kaslr auto|true|false  --qemu PATH  --console-log FILE  --rsp-log FILE
  --module-path DIR (repeatable: where modules' .ko files are searched first; the guest loads
  the sample guest's modules at boot with --append 'qkd.load=qkd_sample')
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
