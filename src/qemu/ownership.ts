/**
 * Who owns a QEMU and its socket directory, so neither outlives the process that started it.
 *
 * A QEMU runs under `setpriv --pdeathsig SIGKILL`: the kernel kills it when its parent dies.
 * That leaves a window: a parent killed after fork() but before setpriv's prctl() has run
 * leaves a child that is already reparented, and a death signal set after that never comes.
 * So the child checks, after the prctl and before exec'ing QEMU, that its parent is still the
 * process that spawned it (`guardedArgv`).
 *
 * A SIGKILLed adapter cannot remove its socket directory either. Each directory records its
 * owner (pid, the pid's start time so that a reused pid does not pass for it, and the host's
 * boot id for /tmp kept across reboots), and the next start removes those whose owner is gone
 * (`sweepStaleRunDirs`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const RUN_DIR_PREFIX = 'qkd-';
/** What mkdtemp makes of the prefix: six random characters. */
const RUN_DIR_NAME = /^qkd-[A-Za-z0-9]{6}$/;
/** A directory being made: it gets its owner record before its real name (makeOwnedDir). */
const NEW_DIR_PREFIX = 'qkd-new-';
const NEW_DIR_NAME = /^qkd-new-[A-Za-z0-9]{6}$/;
export const OWNER_FILE = 'owner';
/**
 * A directory with no owner record, made by an older version, is only removed once it is
 * this old: its owner cannot be told apart from a live one.
 */
export const UNOWNED_STALE_MS = 24 * 3600_000;
/** One being made takes microseconds; a minute means its maker died at it. */
export const UNFINISHED_STALE_MS = 60_000;
/** The guard's exit status when the spawner died before the death signal was armed. */
export const ORPHANED_EXIT = 125;

export interface Owner {
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks from boot to the process's start. */
  start: string;
  boot: string;
}

/**
 * argv for spawn: `setpriv --pdeathsig SIGKILL -- sh -c GUARD` and then `argv`. The shell
 * exec's the command, so the child's pid is QEMU's; it exits at once when its parent is no
 * longer `parentPid` (the parent died before the death signal was armed).
 */
export function guardedArgv(argv: readonly string[], parentPid = process.pid): string[] {
  const guard = `[ "$PPID" = "$1" ] || exit ${ORPHANED_EXIT}; shift; exec "$@"`;
  return ['--pdeathsig', 'SIGKILL', '--', '/bin/sh', '-c', guard, 'qkd-guard', String(parentPid), ...argv];
}

function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** A process's start time, or undefined when it does not exist (or is a zombie: dead already). */
export function processStart(pid: number): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

export function currentOwner(): Owner | undefined {
  const start = processStart(process.pid);
  return start === undefined ? undefined : { pid: process.pid, start, boot: bootId() };
}

/** Record this process as the directory's owner (written aside and renamed: never seen half-written). */
export function writeOwner(dir: string, owner: Owner | undefined = currentOwner()): void {
  if (!owner) return;
  const tmp = path.join(dir, `${OWNER_FILE}.tmp`);
  fs.writeFileSync(tmp, `${owner.pid} ${owner.start} ${owner.boot}\n`, { mode: 0o600 });
  fs.renameSync(tmp, path.join(dir, OWNER_FILE));
}

export function readOwner(dir: string): Owner | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const m = /^(\d+) (\d+) (\S+)\s*$/.exec(text);
  return m ? { pid: Number(m[1]), start: m[2], boot: m[3] } : undefined;
}

export function ownerAlive(owner: Owner): boolean {
  if (owner.boot !== bootId()) return false;
  return processStart(owner.pid) === owner.start;
}

/**
 * A new 0700 directory `qkd-XXXXXX` under `base` that names its owner from the moment it has
 * that name: it is made as `qkd-new-XXXXXX`, given the record, then renamed. (A rename never
 * replaces another's directory: those hold a record, and only an empty one can be replaced.)
 */
export function makeOwnedDir(base: string): string {
  for (;;) {
    const tmp = fs.mkdtempSync(path.join(base, NEW_DIR_PREFIX));
    fs.chmodSync(tmp, 0o700);
    try {
      writeOwner(tmp);
    } catch {
      // Unrecorded, it is only swept once it is old (UNOWNED_STALE_MS).
    }
    const dir = path.join(base, RUN_DIR_PREFIX + tmp.slice(-6));
    try {
      fs.renameSync(tmp, dir);
      return dir;
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
  }
}

/**
 * Remove the socket directories under `base` whose owner is gone; returns what was removed.
 * Only our own directories are looked at, and a failure to remove one is left for next time.
 */
export function sweepStaleRunDirs(base: string, now = Date.now()): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return [];
  }
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(RUN_DIR_PREFIX)) continue;
    const dir = path.join(base, name);
    try {
      const st = fs.lstatSync(dir);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      const owner = readOwner(dir);
      // Without a record, only names of makeOwnedDir's shapes: other tools' qkd-* dirs are not ours to judge.
      const age = now - st.mtimeMs;
      const stale = owner ? !ownerAlive(owner) : (RUN_DIR_NAME.test(name) && age > UNOWNED_STALE_MS) || (NEW_DIR_NAME.test(name) && age > UNFINISHED_STALE_MS);
      if (!stale) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // Raced with its owner or another sweeper; whoever is left removes it.
    }
  }
  return removed;
}
