/**
 * `qkd where`: resolve breakpoint locations offline, with no guest, the way the debugger
 * would (function names and file:line), like gdb's `info line`: functions resolve to their
 * out-of-line copies, and `--inlined` adds the inlined ones (which waits for the whole
 * function index). Handy for checking a
 * vmlinux's debug info and sourceMap before booting, and the benchmarks time it.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { supportedMachine } from '../arch/facts';
import { ElfFile } from '../symbols/elf';
import { errors } from '../util/errors';
import type { CodeLocation } from '../engine/sourceinfo';
import { requireSourceTree } from '../config/files';
import { sourceInfo, symbolTable } from '../engine/vmlinux';
import { writeStdout } from './run';

export async function whereCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { vmlinux: { type: 'string' }, source: { type: 'string' }, json: { type: 'boolean' }, inlined: { type: 'boolean' } },
  });
  if (!values.vmlinux) throw errors.missingField('vmlinux', 'Pass --vmlinux FILE (the ELF vmlinux with debug info).');
  if (!positionals.length) throw errors.unsupported('Give at least one location: a function name or FILE:LINE.');
  const vmlinux = path.resolve(values.vmlinux);
  // Timed from here, the way an adapter meets a vmlinux cold: open, symbols, DWARF, resolve.
  const t0 = process.hrtime.bigint();
  const elf = ElfFile.open(vmlinux);
  if (!supportedMachine(elf.machine)) {
    elf.close();
    throw errors.notElf('vmlinux', vmlinux, 'its ELF machine is not one qkd supports');
  }
  try {
    if (values.source) requireSourceTree(values.source);
  } catch (e) {
    elf.close();
    throw e;
  }
  const symbols = symbolTable(elf, vmlinux);
  const info = sourceInfo(elf, symbols, vmlinux, { source: values.source, cwd: process.cwd() });
  const results: Array<{ location: string; line?: number; ms: number; addresses: Array<{ address: string; function: string; file?: string; line?: number }> }> = [];
  for (const loc of positionals) {
    const m = /^(.+):(\d+)$/.exec(loc);
    let found: CodeLocation[];
    let line: number | undefined;
    if (m) {
      const file = path.resolve(values.source ?? process.cwd(), m[1]);
      const r = await info.lineLocations(file, Number(m[2]));
      found = r?.locations ?? [];
      line = r?.line;
    } else found = values.inlined ? await info.functionLocations(loc) : info.functionEntries(loc);
    results.push({
      location: loc,
      line,
      ms: Number(process.hrtime.bigint() - t0) / 1e6,
      addresses: found.map((f) => ({ address: `0x${f.address.toString(16)}`, function: f.function, file: f.location?.path, line: f.location?.line })),
    });
  }
  // No index close: the process ends once this is printed, and its worker (unref'd) with it,
  // which is quicker than waiting for the worker to finish a batch and end by itself.
  elf.close();
  if (values.json) writeStdout(JSON.stringify(results, null, 2) + '\n');
  else {
    for (const r of results) {
      if (!r.addresses.length) writeStdout(`${r.location}: no code found\n`);
      for (const a of r.addresses) writeStdout(`${r.location}: ${a.address} in ${a.function}${a.file ? ` at ${a.file}:${a.line}` : ''}\n`);
    }
  }
  return results.every((r) => r.addresses.length > 0) ? 0 : 1;
}
