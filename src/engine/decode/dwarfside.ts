/**
 * What the decoder needs when no code map can answer: vmlinux's symbols and DWARF, and a
 * module linked for lookups. A bundle of its own when bundled (dist/decode-dwarf.js), loaded
 * by resolve.ts at first need, so a decode that code maps answer does not load (or even
 * read) the DWARF readers.
 */
import * as fs from 'node:fs';
import { Dwarf } from '../../symbols/dwarf/dwarf';
import { ElfFile } from '../../symbols/elf';
import type { Image } from '../../symbols/imageset';
import { linkModule, placeApart } from '../../symbols/kolink';
import { SymbolTable } from '../../symbols/symtab';
import type { SourceSet } from '../sources';
import { sourceInfo, symbolTable } from '../vmlinux';

export function openVmlinux(vmlinux: string): { elf: ElfFile; source: SourceSet } {
  const elf = ElfFile.open(vmlinux);
  return { elf, source: sourceInfo(elf, symbolTable(elf, vmlinux), vmlinux, {}) };
}

/** A module's image, its sections placed apart from `base` on. */
export function linkForLookup(name: string, file: string, base: bigint): Image {
  const bytes = fs.readFileSync(file);
  const { placement } = placeApart(file, bytes, base);
  const elf = linkModule(file, bytes, placement).elf;
  const ranges = [...placement].map(([sec, start]) => ({ start, end: start + BigInt(elf.sections.find((s) => s.name === sec)?.size ?? 0) }));
  return { name, kind: 'module', file, elf, symbols: SymbolTable.fromElf(elf), dwarf: Dwarf.open(elf), ranges };
}
