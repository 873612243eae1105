/**
 * Where code maps live: the user's cache folder (0700), one file per vmlinux, named by its
 * path, size, mtime and inode so a rebuilt kernel gets a new map (the header checks size and
 * mtime again). Writing is atomic (a temporary file renamed), and a lock file holding the
 * builder's pid keeps two builders of one map from running at once.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodeMap } from './format';

/** Where maps are kept: the user's cache folder. */
export function codeMapDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'qemu-kernel-debug', 'codemap');
}

export interface Source {
  file: string;
  size: number;
  mtimeMs: number;
}

export function source(vmlinux: string): Source & { ino: number } {
  const real = fs.realpathSync(vmlinux);
  const st = fs.statSync(real);
  return { file: real, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}

export function nameOf(s: Source & { ino: number }): { prefix: string; file: string } {
  const prefix = fnv1a(s.file);
  return { prefix, file: path.join(codeMapDir(), `${prefix}-${s.size}-${Math.round(s.mtimeMs)}-${s.ino}.qmap`) };
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

