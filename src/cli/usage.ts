/**
 * qkd's usage text, and `qkd COMMAND --help` (every bundle's entry asks wantsHelp first, so
 * `--help` never boots a guest). Text only: the light bundles (where, decode) carry it too.
 */
export const USAGE = `usage: qkd <command> [options]

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
  decode [--vmlinux FILE] [--modules DIR]... [--no-index] [LOG]...
                                          decode a kernel log's Oops, WARN or BUG like the kernel's
                                          scripts/decode_stacktrace.sh: each func+0x1a/0x200 [mod]
                                          becomes its source line and inlined calls (default: the
                                          x86_64 sample guest's vmlinux and modules; stdin without LOG)
  index [--vmlinux FILE] [--module FILE.ko]... [--status] [--json] [--quiet]
                                          build the code maps qkd decode answers from (every address's
                                          line and inlined calls, and the code symbols, in one file per
                                          vmlinux or module under ~/.cache/qemu-kernel-debug/codemap);
                                          qkd decode builds them in the background after its first
                                          decode (qkd decode --no-index neither uses nor builds them);
                                          --status: built, building or none (exit 0 when all built, 3 if not)
  initramfs [--json] LIST                 make (or find unchanged) the newc archive of a gen_init_cpio
                                          list, as the initramfs launch field does, and print its path
                                          (--json: {"file","rebuilt","ms","problems"})
  where --vmlinux FILE [--source DIR] [--inlined] [--json] LOCATION...
                                          resolve breakpoint locations (FUNC or FILE:LINE) offline, like
                                          gdb's 'info line', with no guest; --inlined adds inlined
                                          copies and compiler clones of FUNC

launch options (default: the sample guest):
  --kernel FILE  --vmlinux FILE  --initrd FILE  --initramfs LIST  --append TEXT  --arch x86_64
  --memory 512M  --smp N  --accel auto|kvm|tcg  --kaslr auto|true|false  --qemu PATH  --console-log FILE  --rsp-log FILE
  --module-path DIR (repeatable: where modules' .ko files are searched first; the guest loads
  the sample guest's modules at boot with --append 'qkd.load=qkd_sample')
`;

/** The usage lines of one command (and the launch options, for the commands that take them). */
export function commandUsage(command: string): string | undefined {
  const lines = USAGE.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`  ${command} `) || l === `  ${command}`);
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && /^ {10,}\S/.test(lines[end])) end++;
  const own = lines.slice(start, end).map((l) => l.slice(2));
  const launch = /\[launch options\]/.test(lines[start]) ? USAGE.slice(USAGE.indexOf('launch options (default')) : '';
  return `usage: qkd ${own.join('\n')}\n${launch ? `\n${launch}` : ''}`;
}

/** Print a command's usage when its arguments ask for it (--help, -h) and say so. */
export function wantsHelp(command: string | undefined, args: readonly string[]): boolean {
  if (!command || !args.some((a) => a === '--help' || a === '-h')) return false;
  const usage = commandUsage(command);
  if (!usage) return false;
  process.stdout.write(usage);
  return true;
}
