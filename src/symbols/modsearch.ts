/**
 * Finding a loaded module's file on the host: which folders to look in, and one walk of them
 * per session that indexes every module file by module name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type ModuleCompression = 'gz' | 'xz' | 'zst';

export interface ModuleCandidate {
  path: string;
  /** From the file name; readModuleFile checks the magic bytes agree. */
  compression?: ModuleCompression;
  /** A `.ko.debug` (objcopy --only-keep-debug): DWARF and symbols, but its code and data sections are empty (NOBITS). */
  debugOnly: boolean;
}

/** foo.ko, foo.ko.debug, each optionally .gz/.xz/.zst; `(.+)` is the module name as kbuild spells the file. */
const MODULE_FILE = /^(.+)\.ko(\.debug)?(?:\.(gz|xz|zst))?$/;

/** The kernel treats '-' and '_' in module names as the same (kbuild turns file names' '-' into '_'). */
export function normalizeModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

/** The module a file name belongs to, or undefined when it is not a module file. */
export function parseModuleFileName(file: string): { name: string; debugOnly: boolean; compression?: ModuleCompression } | undefined {
  const m = MODULE_FILE.exec(path.basename(file));
  if (!m) return undefined;
  return { name: m[1], debugOnly: m[2] !== undefined, ...(m[3] ? { compression: m[3] as ModuleCompression } : {}) };
}

export interface ModuleDirsInput {
  /** The user's `modulePaths`, searched first and in their order. */
  modulePaths?: string[];
  /** The vmlinux: its folder is searched when it is a kernel build tree (where in-tree modules are built). */
  vmlinux?: string;
  /** More folders after the build tree, e.g. the sample module's build folder. */
  extra?: string[];
  /** The guest's kernel release (uname -r), for the distribution's module folders. */
  release?: string;
}

/**
 * The folders to search, in order: modulePaths, the kernel build tree beside vmlinux, `extra`,
 * then /lib/modules/<release> and its debug twin. Missing folders are left out, and one folder
 * reached by two names (/lib is a symlink to /usr/lib on merged-/usr hosts) is kept once.
 */
export function defaultModuleDirs(o: ModuleDirsInput): string[] {
  const wanted: string[] = [...(o.modulePaths ?? [])];
  if (o.vmlinux) {
    const tree = path.dirname(path.resolve(o.vmlinux));
    // Only a build tree: a vmlinux kept in $HOME or /boot must not make us walk all of it.
    if (isKernelBuildTree(tree)) wanted.push(tree);
  }
  wanted.push(...(o.extra ?? []));
  // The release is read from guest memory: one that is not a plain name ('..', a path) must not pick a folder.
  if (o.release && /^[\w+~-][\w.+~-]*$/.test(o.release)) {
    wanted.push(`/lib/modules/${o.release}`, `/usr/lib/modules/${o.release}`, `/usr/lib/debug/lib/modules/${o.release}`);
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const dir of wanted) {
    let real: string;
    try {
      real = fs.realpathSync.native(path.resolve(dir));
      if (!fs.statSync(real).isDirectory()) continue;
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(path.resolve(dir));
  }
  return out;
}

/** A kernel build tree (in-tree or O=) has a Makefile next to its .config, modules.order or Module.symvers. */
function isKernelBuildTree(dir: string): boolean {
  const has = (f: string): boolean => fs.existsSync(path.join(dir, f));
  return has('Makefile') && (has('.config') || has('modules.order') || has('Module.symvers'));
}

/** Version-control folders: huge in a kernel git checkout and never hold a built module. */
const SKIP_DIRS = new Set(['.git', '.hg', '.svn']);
/** Parallel readdirs: on a cold disk cache they overlap the I/O waits; beyond ~16 nothing more is gained. */
const WALK_CONCURRENCY = 16;
const DEFAULT_MAX_ENTRIES = 2_000_000;

export interface ModuleIndexOptions {
  /** Stop the walk after this many directory entries in all, so a modulePaths of '/' cannot run for minutes. */
  maxEntries?: number;
}

/** What the walk saw, for logs and benchmarks. */
export interface ModuleIndexStats {
  entries: number;
  directories: number;
  moduleFiles: number;
  ms: number;
}

/**
 * Every module file under the search folders, walked once and reused for every module the guest
 * loads. Symlinked directories are never entered: /lib/modules/<r>/build and source point at whole
 * kernel trees, and a tree's own symlinks can loop. Symlinked files are kept.
 */
export class ModuleFileIndex {
  private byName?: Map<string, ModuleCandidate[]>;
  private walking?: Promise<void>;
  /** Bumped by invalidate, so a background walk begun before it cannot install its stale result. */
  private generation = 0;
  private notes = new Map<string, string>();
  private lastStats: ModuleIndexStats = { entries: 0, directories: 0, moduleFiles: 0, ms: 0 };
  private readonly maxEntries: number;

  constructor(private readonly dirs: readonly string[], options: ModuleIndexOptions = {}) {
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  /**
   * Every file of module `name`, in search order ('-' and '_' match each other). Unless prepare()
   * has finished, the first call walks the folders synchronously: about 0.2 s for a whole kernel
   * build tree with a warm disk cache.
   */
  find(name: string): ModuleCandidate[] {
    if (!this.byName) {
      const t0 = Date.now();
      const budget = newBudget(this.maxEntries);
      const roots = this.dirs.map((dir): WalkState | Error => {
        try {
          const real = fs.realpathSync.native(dir);
          const st = listedModules(real, budget) ?? newWalk(budget);
          if (!st.listed) walkSync(real, st);
          return st;
        } catch (e) {
          return e as Error;
        }
      });
      this.install(this.generation, roots, budget, t0);
    }
    return [...((this.byName as Map<string, ModuleCandidate[]>).get(normalizeModuleName(name)) ?? [])];
  }

  /** Walk the folders without blocking (parallel readdirs), so that later finds answer at once. */
  prepare(): Promise<void> {
    if (this.byName) return Promise.resolve();
    const gen = this.generation;
    this.walking ??= (async (): Promise<void> => {
      const t0 = Date.now();
      const budget = newBudget(this.maxEntries);
      const roots: (WalkState | Error)[] = [];
      // One root after another, so the entry budget runs out in search order.
      for (const dir of this.dirs) {
        try {
          const real = await fs.promises.realpath(dir);
          const st = listedModules(real, budget) ?? newWalk(budget);
          if (!st.listed) await walkAsync(real, st);
          roots.push(st);
        } catch (e) {
          roots.push(e as Error);
        }
      }
      this.install(gen, roots, budget, t0);
    })();
    return this.walking;
  }

  /** The folders searched, each with what went wrong in it if anything did: for "no symbols for X: searched …". */
  searched(): string[] {
    return this.dirs.map((d) => (this.notes.has(d) ? `${d} (${this.notes.get(d)})` : d));
  }

  /** What the walk saw (zeros before it), for logs and benchmarks. */
  stats(): ModuleIndexStats {
    return { ...this.lastStats };
  }

  /** Forget the walk, so the next find sees files built since (a module rebuilt into a new folder). */
  invalidate(): void {
    this.byName = undefined;
    this.walking = undefined;
    this.generation++;
  }

  /** Index the roots' files, earlier folders first; a walk finished after invalidate or after another walk is dropped. */
  private install(gen: number, roots: (WalkState | Error)[], budget: WalkBudget, t0: number): void {
    if (gen !== this.generation || this.byName) return;
    const map = new Map<string, ModuleCandidate[]>();
    const notes = new Map<string, string>();
    const seenFiles = new Set<string>();
    roots.forEach((st, i) => {
      const dir = this.dirs[i];
      if (st instanceof Error) {
        notes.set(dir, `cannot open: ${(st as NodeJS.ErrnoException).code ?? st.message}`);
        return;
      }
      if (st.truncated) notes.set(dir, `stopped after ${budget.entries} entries; name the module's folder in modulePaths`);
      else if (st.unreadable) notes.set(dir, `${st.unreadable} unreadable folder${st.unreadable === 1 ? '' : 's'} skipped`);
      // Sorted within a folder: readdir order is the file system's, and parallel walks finish in any order.
      for (const file of st.found.sort()) {
        // Nested or repeated folders reach the same file twice; its first place counts.
        if (seenFiles.has(file)) continue;
        seenFiles.add(file);
        const parsed = parseModuleFileName(file);
        if (!parsed) continue;
        const key = normalizeModuleName(parsed.name);
        const list = map.get(key) ?? [];
        list.push({ path: file, debugOnly: parsed.debugOnly, ...(parsed.compression ? { compression: parsed.compression } : {}) });
        map.set(key, list);
      }
    });
    this.byName = map;
    this.notes = notes;
    this.lastStats = { entries: budget.entries, directories: budget.directories, moduleFiles: seenFiles.size, ms: Date.now() - t0 };
  }
}

/** Shared by all roots of one walk. */
interface WalkBudget {
  entries: number;
  directories: number;
  left: number;
}

/** One root's walk. */
interface WalkState {
  budget: WalkBudget;
  found: string[];
  unreadable: number;
  truncated: boolean;
  /** Found from the tree's modules.order, with no walk. */
  listed?: boolean;
}

/**
 * A kernel build tree lists every module it built in modules.order (`.ko` paths up to 6.1,
 * `.o` from 6.2), and so does an external module's build folder (M=, absolute paths):
 * reading it costs nothing next to walking a tree's ~90,000 entries, which hold no module it
 * does not list. Undefined for any other folder.
 */
function listedModules(root: string, budget: WalkBudget): WalkState | undefined {
  if (!isKernelBuildTree(root)) return undefined;
  let order: string;
  try {
    order = fs.readFileSync(path.join(root, 'modules.order'), 'utf8');
  } catch {
    return undefined;
  }
  const st: WalkState = { ...newWalk(budget), listed: true };
  for (const line of order.split('\n')) {
    const rel = line.trim().replace(/\.o$/, '.ko');
    if (!rel.endsWith('.ko')) continue;
    // Relative in a kernel tree; absolute in an external module's (M=) build folder.
    const file = path.resolve(root, rel);
    budget.entries++;
    if (fs.existsSync(file)) st.found.push(file);
  }
  return st;
}

function newBudget(maxEntries: number): WalkBudget {
  return { entries: 0, directories: 0, left: maxEntries };
}

function newWalk(budget: WalkBudget): WalkState {
  return { budget, found: [], unreadable: 0, truncated: false };
}

type EntryType = Pick<fs.Dirent, 'isDirectory' | 'isFile' | 'isSymbolicLink'>;

/** One entry: a module file goes into `found`, a real (not symlinked) folder into `queue`. */
function take(st: WalkState, dir: string, name: string, type: EntryType, queue: string[]): void {
  if (type.isDirectory()) {
    if (!SKIP_DIRS.has(name)) queue.push(join(dir, name));
  } else if ((type.isFile() || type.isSymbolicLink()) && name.includes('.ko') && MODULE_FILE.test(name)) {
    st.found.push(join(dir, name));
  }
}

/** One folder's entries into the walk; returns the names readdir could not type, for the caller to lstat. */
function takeEntries(st: WalkState, dir: string, entries: fs.Dirent[], queue: string[]): string[] {
  st.budget.directories++;
  const untyped: string[] = [];
  for (const e of entries) {
    if (st.budget.left-- <= 0) {
      st.truncated = true;
      break;
    }
    st.budget.entries++;
    // Some file systems leave the type unknown in readdir (DT_UNKNOWN); lstat says, without following a link.
    if (e.isFile() || e.isDirectory() || e.isSymbolicLink() || e.isFIFO() || e.isSocket() || e.isCharacterDevice() || e.isBlockDevice()) take(st, dir, e.name, e, queue);
    else untyped.push(e.name);
  }
  return untyped;
}

function join(dir: string, name: string): string {
  // Not path.join: this runs for every entry of a 90,000-file tree, and dir is already absolute and clean.
  return dir.endsWith(path.sep) ? dir + name : dir + path.sep + name;
}

function walkSync(root: string, st: WalkState): void {
  const queue = [root];
  while (queue.length > 0 && !st.truncated) {
    const dir = queue.pop() as string;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      // A folder we may not read (a root-only subfolder) is skipped, not fatal.
      st.unreadable++;
      continue;
    }
    for (const name of takeEntries(st, dir, entries, queue)) {
      try {
        take(st, dir, name, fs.lstatSync(join(dir, name)), queue);
      } catch {
        // Gone since readdir.
      }
    }
  }
}

async function walkAsync(root: string, st: WalkState): Promise<void> {
  const queue = [root];
  let active = 0;
  const visit = async (dir: string): Promise<void> => {
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch {
      st.unreadable++;
      return;
    }
    for (const name of takeEntries(st, dir, entries, queue)) {
      const type = await fs.promises.lstat(join(dir, name)).catch(() => undefined);
      if (type) take(st, dir, name, type, queue);
    }
  };
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (active < WALK_CONCURRENCY && queue.length > 0 && !st.truncated) {
        active++;
        void visit(queue.pop() as string).finally(() => {
          active--;
          pump();
        });
      }
      if (active === 0 && (queue.length === 0 || st.truncated)) resolve();
    };
    pump();
  });
}
