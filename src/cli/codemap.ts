/**
 * `qkd index`: build the code map of a vmlinux or a module (src/symbols/codemap/), which
 * `qkd decode` then answers from. `qkd decode` starts this in the background by itself the
 * first time it decodes against files with no map; the command is there to build them ahead
 * (after a kernel build, say) and to see their state.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { codeMapBuilding, codeMapFile, openCodeMap } from '../symbols/codemap/store';
import { writeCodeMap, type WrittenMap } from '../symbols/codemap/write';
import { DwarfError } from '../symbols/dwarf/reader';
import { ElfError } from '../symbols/elf';
import { ErrorCode, errors, messageOf, UserError } from '../util/errors';
import { writeStdout } from './run';

export async function indexCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      vmlinux: { type: 'string', multiple: true },
      module: { type: 'string', multiple: true },
      arch: { type: 'string' },
      quiet: { type: 'boolean' },
      status: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const files = [...(values.vmlinux ?? []), ...(values.module ?? [])];
  if (!files.length) {
    // Loaded only here: the guest builder brings node:child_process and its streams.
    const { cachedGuest } = require('../guest/build') as typeof import('../guest/build');
    const guest = cachedGuest(values.arch ?? 'x86_64');
    if (!guest) throw errors.missingField('vmlinux', 'Pass --vmlinux FILE (an ELF vmlinux with debug info), or build the sample guest first (qkd guest build).');
    files.push(guest.vmlinux);
    if (guest.modules?.sample) files.push(guest.modules.sample);
  }
  for (const f of files) {
    const field = f.endsWith('.ko') ? 'module' : 'vmlinux';
    if (!fs.existsSync(f)) throw errors.fileNotFound(field, f, field === 'module' ? 'Pass --module with a kernel module (.ko) built with debug info.' : 'Pass --vmlinux with an ELF vmlinux built with debug info.');
  }
  if (values.status) {
    const states = files.map((f) => {
      const map = openCodeMap(f);
      map?.close();
      return { file: f, state: map ? 'built' : codeMapBuilding(f) ? 'building' : 'none', map: codeMapFile(f) };
    });
    writeStdout(values.json ? `${JSON.stringify(states.length === 1 ? states[0] : states)}\n` : states.map((s) => `${s.state}: ${s.file} (${s.map})\n`).join(''));
    return states.every((s) => s.state === 'built') ? 0 : 3;
  }
  let code = 0;
  const done: WrittenMap[] = [];
  for (const f of files) {
    let map: WrittenMap | undefined;
    try {
      map = writeCodeMap(f);
    } catch (e) {
      // A file that is no ELF, or one without DWARF, is the user's to change: say which, exit 1.
      if (e instanceof ElfError || e instanceof DwarfError) throw new UserError(ErrorCode.NotElf, `qkd index: ${messageOf(e)}`, f.endsWith('.ko') ? 'module' : 'vmlinux');
      throw e;
    }
    if (!map) {
      if (!values.quiet) process.stderr.write(`qkd index: another process is building the code map of ${f}\n`);
      code = 3;
      continue;
    }
    done.push(map);
    if (!values.quiet && !values.json) {
      writeStdout(`${f}: ${map.records} records, ${map.units} units${map.unreadable ? ` (${map.unreadable} unreadable, answered from DWARF)` : ''}, ${(map.bytes / 2 ** 20).toFixed(1)} MB in ${(map.ms / 1000).toFixed(1)} s → ${map.file}\n`);
    }
  }
  if (values.json) writeStdout(`${JSON.stringify(done.length === 1 ? done[0] : done)}\n`);
  return code;
}
