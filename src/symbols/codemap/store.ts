/**
 * Where code maps live: the user's cache folder (0700), one file per vmlinux, named by its
 * path, size, mtime and inode so a rebuilt kernel gets a new map (the header checks size and
 * mtime again). Writing is atomic (a temporary file renamed), and a lock file holding the
 * builder's pid keeps two builders of one map from running at once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Dwarf } from '../dwarf/dwarf';
import { ElfError, ElfFile } from '../elf';
import { linkModule, placeApart } from '../kolink';
import { buildCodeMap, type CodeMapStats } from './build';
import { CodeMap } from './format';

const ET_REL = 1;

/** Maps kept at most; the least recently written go first (a distribution kernel's map is tens of MB). */
const KEPT = 32;

function dir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'qemu-kernel-debug', 'codemap');
}

interface Source {
  file: string;
  size: number;
  mtimeMs: number;
}

function source(vmlinux: string): Source & { ino: number } {
  const real = fs.realpathSync(vmlinux);
  const st = fs.statSync(real);
  return { file: real, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}

function nameOf(s: Source & { ino: number }): { prefix: string; file: string } {
  const prefix = fnv1a(s.file);
  return { prefix, file: path.join(dir(), `${prefix}-${s.size}-${Math.round(s.mtimeMs)}-${s.ino}.qmap`) };
}

/** A name for a path (FNV-1a, 64 bits): node:crypto would cost a decode's start more than its whole lookup. */
function fnv1a(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(text, 'utf8')) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h.toString(16).padStart(16, '0');
}

/** The map file of this vmlinux as it is now (whether or not it exists yet). */
export function codeMapFile(vmlinux: string): string {
  return nameOf(source(vmlinux)).file;
}

/** This vmlinux's code map when one has been built for it as it is now. */
export function openCodeMap(vmlinux: string): CodeMap | undefined {
  try {
    const s = source(vmlinux);
    return CodeMap.open(nameOf(s).file, s);
  } catch {
    return undefined;
  }
}

/** Whether a builder holds this map's lock (a live pid in it). */
export function codeMapBuilding(vmlinux: string): boolean {
  const lock = `${codeMapFile(vmlinux)}.lock`;
  try {
    const pid = Number(fs.readFileSync(lock, 'utf8'));
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) return true;
    fs.rmSync(lock, { force: true });
  } catch {
    // No lock.
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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
  fs.mkdirSync(dir(), { recursive: true, mode: 0o700 });
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
    .readdirSync(dir())
    .filter((f) => f.endsWith('.qmap'))
    .map((f) => path.join(dir(), f));
  for (const f of maps) if (f !== keep && path.basename(f).startsWith(`${prefix}-`)) fs.rmSync(f, { force: true });
  const rest = maps.filter((f) => fs.existsSync(f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  for (const f of rest.slice(KEPT)) fs.rmSync(f, { force: true });
}
