/**
 * `qkd decode`: a kernel log (an Oops, a WARN, a BUG, a panic) with every code reference
 * decoded to its source line and inlined calls, line for line as the kernel's
 * scripts/decode_stacktrace.sh prints it, through the debugger's own symbol readers (no
 * addr2line, nm or gdb needed). Reads the files named, or stdin.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { Decoder } from '../engine/decode/resolve';
import { decodeLog } from '../engine/decode/stacktrace';
import { codeMapBuilding } from '../symbols/codemap/store';
import { ErrorCode, errors, messageOf, UserError } from '../util/errors';
import { writeStdout } from './run';

export async function decodeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { vmlinux: { type: 'string' }, modules: { type: 'string', multiple: true }, arch: { type: 'string' }, 'no-index': { type: 'boolean' } },
  });
  let vmlinux = values.vmlinux;
  let modules = values.modules ?? [];
  if (!vmlinux) {
    // The sample guest's kernel, when it is built: what the README's examples decode.
    // Loaded only here, from a bundle of its own when bundled (dist/cli-guest.js): the guest
    // builder brings node:child_process and its streams, and a decode given --vmlinux needs none of it.
    const bundled = path.join(__dirname, 'cli-guest.js');
    // A computed name, which the bundler leaves to run time.
    const name = fs.existsSync(bundled) ? bundled : '../guest/build';
    const { cachedGuest } = require(name) as typeof import('../guest/build');
    const guest = cachedGuest(values.arch ?? 'x86_64');
    if (!guest) throw errors.missingField('vmlinux', 'Pass --vmlinux FILE (the ELF vmlinux the log came from, with debug info), or build the sample guest first (qkd guest build).');
    vmlinux = guest.vmlinux;
    if (!modules.length && guest.modules?.sample) modules = [path.dirname(guest.modules.sample)];
  }
  if (!fs.existsSync(vmlinux)) throw errors.fileNotFound('vmlinux', vmlinux, 'Pass --vmlinux with the ELF vmlinux the log came from.');
  for (const d of modules) if (!fs.existsSync(d)) throw errors.fileNotFound('modules', d, 'Pass --modules with a folder holding the .ko files.');
  const text = positionals.length ? positionals.map((f) => readLog(f)).join('\n') : fs.readFileSync(0, 'utf8');
  const useMap = !values['no-index'];
  const decoder = Decoder.open(path.resolve(vmlinux), modules.map((d) => path.resolve(d)), { codeMap: useMap });
  try {
    const out = decodeLog(text, decoder);
    for (const w of out.warnings) process.stderr.write(`${w}\n`);
    writeStdout(out.lines.map((l) => l + '\n').join(''));
    const unmapped = [...(decoder.codeMap ? [] : [path.resolve(vmlinux)]), ...decoder.unmappedModules()];
    if (useMap && unmapped.length) indexInBackground(unmapped);
  } finally {
    decoder.dispose();
  }
  return 0;
}

/**
 * The first decode against a vmlinux (or a module) reads its DWARF; later ones answer from
 * its code map, built here by `qkd index` in a process of its own at low priority, which ends
 * when the maps are written (seconds). Only from the bundled qkd, where dist/cli.js is beside
 * this code.
 */
function indexInBackground(files: string[]): void {
  const cli = path.join(__dirname, 'cli.js');
  const todo = files.filter((f) => !codeMapBuilding(f));
  if (process.env.QKD_NO_BACKGROUND_INDEX || !fs.existsSync(cli) || !todo.length) return;
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  try {
    // Loaded here: node:child_process brings node:net and the streams, a third of a decode's start.
    const { spawn } = require('node:child_process') as typeof import('node:child_process');
    const child = spawn(process.execPath, [cli, 'index', '--quiet', ...todo.flatMap((f) => [f.endsWith('.ko') ? '--module' : '--vmlinux', f])], { detached: true, stdio: 'ignore', env });
    child.on('error', () => undefined);
    if (child.pid) os.setPriority(child.pid, 10);
    child.unref();
  } catch {
    // No map then: the next decode reads the DWARF again, as this one did.
  }
}

function readLog(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a folder' : code === 'EACCES' ? 'is not readable by you' : `cannot be read (${code ?? messageOf(e)})`;
    throw new UserError(ErrorCode.FileNotFound, `qkd decode: the log '${file}' ${why}. Give a kernel log file, or pipe one in: qkd decode < console.log`, 'log');
  }
}
