/**
 * `qkd initramfs LIST`: the archive the `initramfs` launch field would boot, made (or found
 * unchanged) and its path printed, for use with another QEMU command line or to check a list.
 */
import { parseArgs } from 'node:util';
import { initramfsFromList, problemLine } from '../guest/initramfslist';
import { errors } from '../util/errors';
import { writeStdout } from './run';

export async function initramfsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } } });
  if (positionals.length !== 1) throw errors.missingField('initramfs', 'Give one list file: qkd initramfs path/to/initramfs.list');
  const t0 = performance.now();
  const made = initramfsFromList(positionals[0]);
  const ms = performance.now() - t0;
  if (values.json) writeStdout(`${JSON.stringify({ file: made.file, rebuilt: made.rebuilt, ms, problems: made.problems })}\n`);
  else {
    for (const p of made.problems) process.stderr.write(`${problemLine(positionals[0], p)}\n`);
    writeStdout(`${made.file}\n`);
  }
  return 0;
}
