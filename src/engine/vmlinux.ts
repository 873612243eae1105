/**
 * A vmlinux's source-level symbols: symbol table, DWARF and the local source tree. Kept
 * apart from the adapter's backend (which launches QEMU and connects the debugger) and from
 * the arch descriptions, so `qkd where` loads none of the engine, RSP, QEMU or register code.
 */
import * as path from 'node:path';
import type { SourceOptions } from '../config/types';
import { Dwarf } from '../symbols/dwarf/dwarf';
import { ElfFile } from '../symbols/elf';
import { openIndex, type SymbolIndex } from '../symbols/index/client';
import { SymbolTable } from '../symbols/symtab';
import { errors } from '../util/errors';
import type { Image } from '../symbols/imageset';
import { Relocation } from '../symbols/relocation';
import { SourceSet } from './sources';
import { SourceMapper } from './sourcemap';

export type { SourceOptions };

/**
 * The symbol table of an open vmlinux, read from the file as it is needed (so the file must
 * stay open while it is used); a stripped one is refused (and closed).
 */
export function symbolTable(elf: ElfFile, vmlinux: string): SymbolTable {
  const symbols = SymbolTable.inFile(elf);
  if (symbols.size === 0) {
    elf.close();
    throw errors.notElf('vmlinux', vmlinux, 'it has no symbol table; was it stripped?');
  }
  return symbols;
}

/**
 * Source-level symbols: DWARF when the vmlinux has it, with the local tree found for paths.
 * `wrapIndex` lets the adapter hold the function index back (see adapter/indexgate.ts).
 */
export function sourceInfo(elf: ElfFile, symbols: SymbolTable, vmlinux: string, o: SourceOptions, extraRoots: string[] = [], wrapIndex?: (i: SymbolIndex) => SymbolIndex): SourceSet {
  const dwarf = Dwarf.open(elf);
  const roots = [o.source, o.cwd, path.dirname(path.resolve(vmlinux)), ...extraRoots].filter((r): r is string => !!r);
  const index = dwarf ? openIndex(path.resolve(vmlinux), dwarf) : undefined;
  const kernel: Image = { name: 'vmlinux', kind: 'kernel', file: vmlinux, elf, symbols, dwarf, ranges: [], relocation: Relocation.ofSections(elf.sections) };
  // A module's paths are its own build folder's; sourceMap entries apply to them as well.
  const moduleMapper = (): SourceMapper => new SourceMapper({ sourceMap: o.sourceMap, localRoots: roots });
  return new SourceSet(kernel, new SourceMapper({ sourceMap: o.sourceMap, localRoots: roots }), index && wrapIndex ? wrapIndex(index) : index, moduleMapper);
}
