/**
 * The `initramfs` launch field: a gen_init_cpio list made into a newc archive, kept in the
 * user's cache folder and made again only when the list or a file it names changes. A change
 * is told by content: each source file's SHA-256 is kept with its size, mtime and inode, and
 * read again only when one of those moved (as git's index does), so an unchanged list of large
 * files is checked with a stat per file.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, UserError } from '../util/errors';
import { parseCpioList, type ListProblem } from './cpiolist';
import { writeListArchive } from './cpiolistwrite';

/** Part of every archive's key: bump when the writer's bytes change. */
const WRITER_VERSION = 1;
/** Archives kept; the least recently made go first. */
const KEPT = 16;

export interface ListArchive {
  /** The newc archive to pass as the initrd. */
  file: string;
  /** False when the archive for this list and these files was already there. */
  rebuilt: boolean;
  /** Warnings (an error throws). */
  problems: ListProblem[];
}

export function initramfsCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'qemu-kernel-debug', 'initramfs');
}

/** `listFile:line:column: message`, as compilers print a problem. */
export function problemLine(listFile: string, p: ListProblem): string {
  return `${listFile}:${p.line}:${p.column}: ${p.severity}: ${p.message}`;
}

/** The archive for `listFile`, made if needed. A list with errors throws a UserError naming the field, file, line and column. */
export function initramfsFromList(listFile: string, env: Record<string, string | undefined> = process.env): ListArchive {
  const list = path.resolve(listFile);
  let text: string;
  try {
    text = fs.readFileSync(list, 'utf8');
  } catch (e) {
    throw new UserError(ErrorCode.FileNotFound, `Launch config field 'initramfs': the list '${list}' cannot be read (${(e as NodeJS.ErrnoException).code ?? e}). Point it at a gen_init_cpio list file.`, 'initramfs');
  }
  const parsed = parseCpioList(text, { baseDir: path.dirname(list), env });
  const errors = parsed.problems.filter((p) => p.severity === 'error');
  if (errors.length) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    throw new UserError(ErrorCode.InvalidField, `Launch config field 'initramfs': ${problemLine(list, errors[0])}${more}. The format is the kernel's usr/gen_init_cpio list: file NAME LOCATION MODE UID GID, dir NAME MODE UID GID, nod NAME MODE UID GID b|c MAJ MIN, slink NAME TARGET MODE UID GID, pipe/sock NAME MODE UID GID.`, 'initramfs');
  }
  const dir = initramfsCacheDir();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hashes = new HashCache(path.join(dir, 'hashes.json'));
  const key = createHash('sha256').update(`qkd-initramfs-${WRITER_VERSION}\0${text}\0`);
  for (const [name, value] of [...parsed.variables].sort()) key.update(`${name}=${value ?? ''}\0`);
  for (const e of parsed.entries) if (e.type === 'file') key.update(`${e.source}\0${hashes.of(e.source)}\0`);
  hashes.save();
  const file = path.join(dir, `${key.digest('hex').slice(0, 32)}.cpio`);
  if (fs.existsSync(file)) return { file, rebuilt: false, problems: parsed.problems };
  // Directories and nodes get time 0, files their own mtime (gen_init_cpio -t 0 gives the same bytes).
  const bytes = writeListArchive(parsed.entries, 0);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, bytes, { mode: 0o600 });
  fs.renameSync(tmp, file);
  prune(dir, file);
  return { file, rebuilt: true, problems: parsed.problems };
}

interface Known {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/** Content hashes by path, trusted while the file's size, mtime and inode stay as they were. */
class HashCache {
  private readonly known: Record<string, Known>;
  private changed = false;

  constructor(private readonly file: string) {
    let known: Record<string, Known> = {};
    try {
      known = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Known>;
    } catch {
      // None yet, or unreadable: hashes are made again.
    }
    this.known = known;
  }

  of(source: string): string {
    const st = fs.statSync(source);
    const k = this.known[source];
    if (k && k.size === st.size && k.mtimeMs === st.mtimeMs && k.ino === st.ino) return k.sha256;
    const sha256 = createHash('sha256').update(fs.readFileSync(source)).digest('hex');
    this.known[source] = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256 };
    this.changed = true;
    return sha256;
  }

  save(): void {
    if (!this.changed) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.known), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}

function prune(dir: string, keep: string): void {
  const archives = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpio'))
    .map((f) => path.join(dir, f))
    .filter((f) => f !== keep)
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  for (const f of archives.slice(KEPT - 1)) fs.rmSync(f, { force: true });
}
