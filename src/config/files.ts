/**
 * Checks of the files and directories a configuration names. Kept free of the arch tables so
 * `qkd where` can use them without loading the rest of the config module.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errors } from '../util/errors';

/** A `${...}` left in a path means VS Code (or the client) did not substitute it; saying so beats "does not exist". */
function refuseVariable(field: string, value: string): void {
  if (value.includes('${')) throw errors.invalidField(field, `('${value}') has a variable that was not substituted`, 'Use a variable VS Code knows (e.g. ${workspaceFolder}) or write the path out.');
}

function statOf(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/** An existing regular file (symlinks followed), as an absolute path. */
export function requireFile(field: string, file: string | undefined, fix: string): string {
  if (!file) throw errors.missingField(field, fix);
  refuseVariable(field, file);
  const abs = path.resolve(file);
  const st = statOf(abs);
  if (!st) throw errors.fileNotFound(field, abs, fix);
  if (st.isDirectory()) throw errors.invalidField(field, `('${abs}') is a directory, not a file`, fix);
  if (!st.isFile()) throw errors.invalidField(field, `('${abs}') is not a regular file`, fix);
  return abs;
}

/** An existing directory, as an absolute path. */
export function requireDirectory(field: string, dir: string, fix: string): string {
  refuseVariable(field, dir);
  const abs = path.resolve(dir);
  const st = statOf(abs);
  if (!st) throw errors.fileNotFound(field, abs, fix);
  if (!st.isDirectory()) throw errors.invalidField(field, `('${abs}') is not a directory`, fix);
  return abs;
}

/**
 * A file we will create or append to: it is not a directory, and its directory exists or can
 * be made (its nearest existing ancestor is a directory we may write). Nothing is created
 * here: the editor runs this check too, before any session.
 */
export function requireWritableFile(field: string, file: string, fix: string): string {
  refuseVariable(field, file);
  const abs = path.resolve(file);
  const st = statOf(abs);
  if (st?.isDirectory()) throw errors.invalidField(field, `('${abs}') is a directory, not a file`, fix);
  if (st) {
    if (!writable(abs)) throw errors.invalidField(field, `('${abs}') is not writable`, fix);
    return abs;
  }
  let dir = path.dirname(abs);
  let dst = statOf(dir);
  while (!dst && path.dirname(dir) !== dir) {
    dir = path.dirname(dir);
    dst = statOf(dir);
  }
  if (!dst?.isDirectory()) throw errors.invalidField(field, `('${abs}') cannot be created: '${dir}' is not a directory`, fix);
  if (!writable(dir)) throw errors.invalidField(field, `('${abs}') cannot be created: '${dir}' is not writable`, fix);
  return abs;
}

function writable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Find an executable by name on PATH (or check an explicit path). */
export function findExecutable(name: string): string | undefined {
  const isExec = (p: string): boolean => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes('/')) return isExec(name) ? path.resolve(name) : undefined;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExec(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** What the first bytes of a would-be vmlinux say. */
export type ElfHeader = { machine: number } | { problem: string };

/** e_machine of a 64-bit little-endian ELF file, or why it is not one. */
export function readElfHeader(file: string): ElfHeader {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const h = Buffer.alloc(20);
    if (fs.readSync(fd, h, 0, 20, 0) < 20) return { problem: 'not an ELF file: it is shorter than an ELF header' };
    if (h.readUInt32BE(0) !== 0x7f454c46) return { problem: 'not an ELF file: it does not start with \\x7fELF' };
    if (h[4] !== 2 || h[5] !== 1) return { problem: 'not a 64-bit little-endian ELF file' };
    return { machine: h.readUInt16LE(18) };
  } catch (e) {
    return { problem: `it cannot be read: ${(e as Error).message}` };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** e_machine of an ELF file, or undefined when it is not a 64-bit little-endian ELF. */
export function elfMachine(file: string): number | undefined {
  const h = readElfHeader(file);
  return 'machine' in h ? h.machine : undefined;
}

/** `source`: the kernel tree the vmlinux was built from, a directory. */
export function requireModuleDir(field: string, dir: string): string {
  return requireDirectory(field, dir, 'Point it at a folder where your modules are built (their .ko files are searched for recursively), or remove the entry.');
}

export function requireSourceTree(source: string): string {
  return requireDirectory('source', source, 'Point it at the kernel source tree the vmlinux was built from, or remove it.');
}
