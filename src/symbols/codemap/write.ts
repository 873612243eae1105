/**
 * Writing code maps (see store.ts for where they live): build one from a vmlinux or a module
 * and put it in place atomically, under a lock that keeps two builders of one map apart.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Dwarf } from '../dwarf/dwarf';
import { ElfError, ElfFile } from '../elf';
import { linkModule, placeApart } from '../kolink';
import { buildCodeMap, type CodeMapStats } from './build';
import { codeMapBuilding, codeMapDir, nameOf, source } from './store';

const ET_REL = 1;

/** Maps kept at most; the least recently written go first (a distribution kernel's map is tens of MB). */
const KEPT = 32;

export interface WrittenMap extends CodeMapStats {
  file: string;
  ms: number;
}

/**
 * Build this vmlinux's map and write it, unless another process is building it (undefined
 * then). Older maps of the same path, and the oldest beyond KEPT, are removed.
 */
export function writeCodeMap(vmlinux: string): WrittenMap | undefined {
  const t0 = performance.now();
  const s = source(vmlinux);
  const { prefix, file } = nameOf(s);
  fs.mkdirSync(codeMapDir(), { recursive: true, mode: 0o700 });
  const lock = `${file}.lock`;
  if (codeMapBuilding(vmlinux)) return undefined;
  try {
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
  } catch {
    return undefined;
  }
  try {
    const elf = openLinked(s.file);
    try {
      const dwarf = Dwarf.open(elf);
      if (!dwarf) throw new ElfError(vmlinux, 'has no DWARF (.debug_info): build it with debug info (CONFIG_DEBUG_INFO)');
      const { bytes, stats } = buildCodeMap(dwarf, s, elf.symbols());
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, bytes, { mode: 0o600 });
      fs.renameSync(tmp, file);
      prune(prefix, file);
      return { ...stats, file, ms: performance.now() - t0 };
    } finally {
      elf.close();
    }
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/**
 * Where a module's map places its sections (any address would do: its symbols are in the map
 * too, so a lookup never needs the .ko's own layout).
 */
export const MODULE_MAP_BASE = 0xffff_ff00_0000_0000n;

/** vmlinux as it is; a module (ET_REL) with its sections placed apart and its relocations applied. */
function openLinked(file: string): ElfFile {
  const head = Buffer.alloc(18);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, 18, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.readUInt16LE(16) !== ET_REL) return ElfFile.open(file);
  const bytes = fs.readFileSync(file);
  return linkModule(file, bytes, placeApart(file, bytes, MODULE_MAP_BASE).placement).elf;
}

function prune(prefix: string, keep: string): void {
  const maps = fs
    .readdirSync(codeMapDir())
    .filter((f) => f.endsWith('.qmap'))
    .map((f) => path.join(codeMapDir(), f));
  for (const f of maps) if (f !== keep && path.basename(f).startsWith(`${prefix}-`)) fs.rmSync(f, { force: true });
  const rest = maps.filter((f) => fs.existsSync(f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  for (const f of rest.slice(KEPT)) fs.rmSync(f, { force: true });
}
