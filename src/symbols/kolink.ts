/**
 * A loaded kernel module's .ko (ET_REL) linked in memory at the addresses the kernel gave
 * its sections, so the ELF, symbol-table and DWARF readers made for vmlinux work on it
 * unchanged: allocated sections get their runtime sh_addr, .symtab values become
 * addresses, and the debug sections' relocations are applied to a copy of the bytes.
 *
 * Sections the kernel did not place (.init.text after init memory is freed, .exit.text in a
 * kernel without module unloading) keep address 0, and their symbols are turned into
 * undefined ones (st_shndx = SHN_UNDEF) in the copy. A symbol of such a section has no
 * address at all; left as a section offset it would be a small number that name lookups
 * return as if it were a place to break at, and that `func+off` names would claim for
 * real-mode or NULL-page addresses. SymbolTable and ElfFile.symbols() skip undefined
 * entries, so those names are simply not found. The sections also lose SHF_ALLOC in the
 * copy, as the loader's never-loaded ones do, so ElfFile.readVirtual does not serve their
 * bytes at address 0. Their DWARF (a freed init function's low_pc, its line rows) is still
 * relocated against address 0 as gdb and drgn do: nothing the kernel runs lies in the first
 * pages, and `placed` says which ranges are real.
 */
import { ElfError, ElfFile, SHT_NOBITS, SHT_SYMTAB } from './elf';
import { applyRela, machineName, put32, relocatableMachine, wordsOf, type RelaJob, type SymbolValues } from './korelocs';

export interface PlacedSection {
  name: string;
  /** The section header's index. */
  index: number;
  address: bigint;
  size: number;
}

export interface LinkedModule {
  /** The linked copy: section addresses, symbol values and DWARF are runtime addresses. */
  elf: ElfFile;
  /** Allocated sections that got an address, in section order. */
  placed: PlacedSection[];
  /**
   * Allocated, non-empty sections with no runtime address (freed init code, exit code not
   * kept). Not .modinfo and __versions: no kernel loads those.
   */
  unplaced: string[];
  /** What was skipped (unknown relocation types, placements naming no section), for the user. */
  warnings: string[];
}

/** Section name → the runtime address the kernel gave it (/sys/module/NAME/sections/*). */
export type SectionPlacement = ReadonlyMap<string, bigint>;

const ET_REL = 1;
const SHT_RELA = 4;
const SHT_REL = 9;
const SHT_SYMTAB_SHNDX = 18;
const SHF_ALLOC = 0x2n;
const SHF_COMPRESSED = 0x800n;
const SHN_LORESERVE = 0xff00;
const SHN_XINDEX = 0xffff;
const SYM = 24;
const RELA = 24;
const SHDR = 64;

/**
 * Sections a .ko marks allocated that the module loader never loads: it clears their
 * SHF_ALLOC itself (rewrite_section_headers and setup_load_info in kernel/module/main.c).
 */
const NEVER_LOADED = new Set(['.modinfo', '__versions']);

/**
 * Link `bytes` (the .ko's contents; left untouched) at `placement`. `file` names the module
 * in errors. Throws ElfError for a file that is not a 64-bit little-endian ET_REL of a
 * supported arch, or whose symbol or relocation tables are cut short or point outside it.
 */
export function linkModule(file: string, bytes: Buffer, placement: SectionPlacement): LinkedModule {
  // Header and section names only: the copy below is what gets patched and read.
  const sections = ElfFile.fromBuffer(file, bytes).sections;
  if (bytes.readUInt16LE(16) !== ET_REL) throw new ElfError(file, 'not a relocatable object (ET_REL); a kernel module .ko was expected');
  const machine = bytes.readUInt16LE(18);
  if (!relocatableMachine(machine)) throw new ElfError(file, `${machineName(machine)} modules are not supported (x86_64, aarch64 and riscv64 are)`);
  // Unpooled, so it starts on an aligned boundary and the relocation tables can be read as words.
  const out = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(out);
  const shoff = Number(bytes.readBigUInt64LE(40));
  const warnings: string[] = [];

  const n = sections.length;
  const addrLo = new Uint32Array(n);
  const addrHi = new Uint32Array(n);
  /** 1: placed; 2: allocated in the file but given no address; 0: not allocated. */
  const state = new Uint8Array(n);
  const placed: PlacedSection[] = [];
  const unplaced: string[] = [];
  const used = new Set<string>();
  for (let i = 1; i < n; i++) {
    const s = sections[i];
    if ((s.flags & SHF_ALLOC) === 0n) continue;
    const address = used.has(s.name) || NEVER_LOADED.has(s.name) ? undefined : placement.get(s.name);
    if (address === undefined) {
      state[i] = 2;
      // SHF_ALLOC is in sh_flags' low byte.
      out[shoff + i * SHDR + 8] &= ~0x2;
      if (used.has(s.name)) warnings.push(`${s.name}: more than one section has this name; only the first was placed`);
      else if (s.size > 0 && !NEVER_LOADED.has(s.name) && !unplaced.includes(s.name)) unplaced.push(s.name);
      continue;
    }
    used.add(s.name);
    state[i] = 1;
    out.writeBigUInt64LE(BigInt.asUintN(64, address), shoff + i * SHDR + 16);
    addrLo[i] = Number(address & 0xffffffffn);
    addrHi[i] = Number((address >> 32n) & 0xffffffffn);
    placed.push({ name: s.name, index: i, address, size: s.size });
  }
  for (const name of placement.keys()) {
    if (!used.has(name)) warnings.push(`placement names ${name}, which is not a loadable section of the module; ignored`);
  }

  const symtabIndex = sections.findIndex((s) => s.type === SHT_SYMTAB);
  const syms = placeSymbols(file, out, sections, symtabIndex, { addrLo, addrHi, state });


  for (let i = 1; i < n; i++) {
    const r = sections[i];
    if (r.type !== SHT_RELA && r.type !== SHT_REL) continue;
    const targetIndex = out.readUInt32LE(shoff + i * SHDR + 44);
    const target = sections[targetIndex];
    if (!target || !(target.name.startsWith('.debug_') || target.name === '.eh_frame')) continue;
    if (r.type === SHT_REL) {
      warnings.push(`${r.name}: REL relocations (without addends) are not applied; ${target.name} may hold unrelocated addresses`);
      continue;
    }
    if (target.type === SHT_NOBITS) continue;
    if ((target.flags & SHF_COMPRESSED) !== 0n) {
      warnings.push(`${r.name}: ${target.name} is compressed (SHF_COMPRESSED); its relocations were not applied`);
      continue;
    }
    if (r.link !== symtabIndex) throw new ElfError(file, `${r.name} uses section ${r.link} as its symbol table, not .symtab (${symtabIndex})`);
    inFile(file, r.name, r.offset, r.size, bytes.length);
    inFile(file, target.name, target.offset, target.size, bytes.length);
    if (r.size % RELA !== 0) throw new ElfError(file, `${r.name} is 0x${r.size.toString(16)} bytes, not a whole number of ${RELA}-byte entries (truncated?)`);
    const job: RelaJob = {
      file,
      buf: out,
      relaName: r.name,
      relaOffset: r.offset,
      relaSize: r.size,
      targetName: target.name,
      targetOffset: target.offset,
      targetSize: target.size,
      targetAddrLo: addrLo[targetIndex],
      targetAddrHi: addrHi[targetIndex],
      syms,
    };
    const unknown = new Map<number, number>();
    applyRela(job, machine, unknown);
    for (const [type, count] of unknown) {
      warnings.push(`${r.name}: ${count} relocation(s) of type ${type}, unknown for ${machineName(machine)}, were skipped; ${target.name} may hold unrelocated values`);
    }
  }

  return { elf: ElfFile.fromBuffer(file, out), placed, unplaced, warnings };
}

interface SectionStates {
  addrLo: Uint32Array;
  addrHi: Uint32Array;
  state: Uint8Array;
}

/**
 * Rewrite .symtab in `out`: a value in a placed section becomes section address + offset,
 * a symbol of an unplaced allocated section becomes undefined (see the file comment), and
 * the rest (absolute, common, undefined, or in a debug section) stay. Returns every
 * symbol's value for relocation, taken before the rewrite: unplaced code relocates
 * against address 0.
 */
function placeSymbols(file: string, out: Buffer, sections: ElfFile['sections'], symtabIndex: number, p: SectionStates): SymbolValues {
  const symtab = sections[symtabIndex];
  if (!symtab) return { lo: new Uint32Array(1), hi: new Uint32Array(1) };
  inFile(file, symtab.name, symtab.offset, symtab.size, out.length);
  if (symtab.size % SYM !== 0) throw new ElfError(file, `${symtab.name} is 0x${symtab.size.toString(16)} bytes, not a whole number of ${SYM}-byte entries (truncated?)`);
  const count = symtab.size / SYM;
  // Section numbers past SHN_LORESERVE live in .symtab_shndx (only in huge objects).
  const xi = sections.findIndex((s) => s.type === SHT_SYMTAB_SHNDX && s.link === symtabIndex);
  const xindex = xi > 0 ? sections[xi] : undefined;
  if (xindex) inFile(file, xindex.name, xindex.offset, Math.min(xindex.size, count * 4), out.length);
  const lo = new Uint32Array(count);
  const hi = new Uint32Array(count);
  const words = wordsOf(out, symtab.offset, symtab.size);
  // Stores go through the word view when it is `out` itself (the usual case): in a cold
  // process, one typed-array store costs less than a call that stores four bytes.
  const inPlace = words.buffer === out.buffer;
  const { state: states, addrLo, addrHi } = p;
  const nsec = sections.length;
  for (let i = 1; i < count; i++) {
    // st_name, then st_info, st_other and st_shndx in one word, st_value, st_size.
    const w = i * 6;
    let vLo = words[w + 2];
    let vHi = words[w + 3];
    let shndx = words[w + 1] >>> 16;
    if (shndx === SHN_XINDEX && xindex && i * 4 + 4 <= xindex.size) shndx = out.readUInt32LE(xindex.offset + i * 4);
    else if (shndx >= SHN_LORESERVE) shndx = 0;
    if (shndx >= nsec) throw new ElfError(file, `${symtab.name} entry ${i} is in section ${shndx}, which does not exist (corrupt file?)`);
    lo[i] = vLo;
    hi[i] = vHi;
    const state = states[shndx];
    if (state === 1) {
      vLo += addrLo[shndx];
      vHi = (vHi + addrHi[shndx] + (vLo >= 0x1_0000_0000 ? 1 : 0)) >>> 0;
      vLo >>>= 0;
      lo[i] = vLo;
      hi[i] = vHi;
      if (inPlace) {
        words[w + 2] = vLo;
        words[w + 3] = vHi;
      } else {
        put32(out, symtab.offset + i * SYM + 8, vLo);
        put32(out, symtab.offset + i * SYM + 12, vHi);
      }
    } else if (state === 2) {
      // st_shndx = SHN_UNDEF; st_info and st_other, in the same word, stay.
      if (inPlace) words[w + 1] &= 0xffff;
      else out.writeUInt16LE(0, symtab.offset + i * SYM + 6);
    }
  }
  return { lo, hi };
}

function inFile(file: string, name: string, offset: number, size: number, fileSize: number): void {
  if (!(offset >= 0 && size >= 0 && offset + size <= fileSize)) {
    throw new ElfError(file, `${name} (0x${size.toString(16)} bytes at file offset 0x${offset.toString(16)}) runs past the end of the file (size 0x${fileSize.toString(16)}; truncated?)`);
  }
}

/**
 * Addresses for a module's allocated sections, from `base` on, each page-aligned and apart,
 * as no loader would but as a lookup needs: a function in .text.unlikely is not mistaken for
 * .text's code at the same offset. Returns the placement and the first address after it.
 */
export function placeApart(file: string, bytes: Buffer, base: bigint): { placement: Map<string, bigint>; end: bigint } {
  const placement = new Map<string, bigint>();
  let at = base;
  for (const s of ElfFile.fromBuffer(file, bytes).sections) {
    if ((s.flags & 0x2n) === 0n || s.size === 0 || placement.has(s.name)) continue;
    placement.set(s.name, at);
    at = (at + BigInt(s.size) + 0xfffn) & ~0xfffn;
  }
  return { placement, end: at };
}
