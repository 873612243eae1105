/**
 * `qkd guest build`: the sample guest (Linux 6.1 from Debian's linux-source-6.1 plus a busybox
 * initramfs), built once into a cache outside the clone keyed by everything that goes into it.
 * The kernel is built in place in its cache folder because DWARF records that path: `source`
 * in the result is the tree the vmlinux refers to.
 *
 * Two stages, each cached on its own: the kernel (guest.json, keyed by guestKey), then the
 * userspace stage in a folder inside it (modules.ts: the sample modules and the initramfs
 * that boots, keyed by their sources and the init script).
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errors } from '../util/errors';
import { targetBusybox } from './busybox';
import { buildInitramfs, INIT_SETUP, INIT_SHELL } from './initramfs';
import { buildUserspace, GuestModules, moduleSources, readUserspace, UserspaceStage, userspaceDir } from './modules';
import { ensurePackages, packageVersion } from './packages';
import { disabledOptions, GuestRecipe, RECIPES, requiredOptions } from './recipes';
import { runStreaming } from './run';

export interface GuestPaths {
  arch: string;
  kernel: string;
  vmlinux: string;
  initrd: string;
  source: string;
  /** Where the initramfs's busybox came from (a Debian package or source version). */
  busybox?: string;
  /** The sample modules, built against `source` and packed into `initrd` (not loaded at boot). */
  modules?: GuestModules;
  /** `source`/vmlinux-gdb.py, gdb's lx- commands for this kernel. */
  gdbScripts?: string;
}

/** Bump when the build steps change in a way the other inputs do not capture. */
const BUILDER_VERSION = 1;
const SOURCE_TARBALL = '/usr/src/linux-source-6.1.tar.xz';

export function guestCacheRoot(): string {
  const base = process.env.QKD_CACHE_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'qemu-kernel-debug');
  return path.join(base, 'guests');
}

/** The names Debian and the kernel use for the same arches, as getArch accepts them. */
const RECIPE_ALIASES: Record<string, string> = { amd64: 'x86_64', x86: 'x86_64', arm64: 'aarch64', riscv: 'riscv64' };

export function recipeFor(arch: string): GuestRecipe {
  const r = RECIPES[RECIPE_ALIASES[arch] ?? arch];
  if (!r) throw errors.unknownArch(arch, Object.keys(RECIPES));
  return r;
}

/**
 * The init script as it was when the kernel key first hashed it. The kernel no longer
 * depends on it (the userspace stage's key holds the init script now), but this text stays
 * in the kernel key so that guests already built, 10-20 minutes each, keep their folders.
 */
const KERNEL_KEY_INIT_SCRIPT = INIT_SETUP + INIT_SHELL;

/** What the kernel stage's key hashes besides the recipe: the versions of the tools that build it. */
export interface KernelKeyInputs {
  linux: string;
  busybox: string;
  /** The first line of `gcc --version` of the compiler that builds the kernel. */
  gcc: string;
}

/** The kernel stage's cache key from explicit inputs (guestKey reads them from the host). */
export function kernelStageKey(recipe: GuestRecipe, inputs: KernelKeyInputs): string {
  const h = crypto.createHash('sha256');
  // A cross guest's busybox is the same Debian busybox release as the host's busybox-static
  // (busybox.ts pins it), so that version is the input for every arch; recipe.busybox says how.
  h.update(JSON.stringify({ BUILDER_VERSION, recipe, linux: inputs.linux, busybox: inputs.busybox, gcc: inputs.gcc, init: KERNEL_KEY_INIT_SCRIPT }));
  return h.digest('hex').slice(0, 16);
}

/** The kernel stage's cache key: every input that changes the kernel. */
export function guestKey(recipe: GuestRecipe): string {
  // The compiler that builds the kernel: the host gcc, or the cross gcc for other arches.
  const gcc = spawnSync(`${recipe.crossCompile ?? ''}gcc`, ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'unknown';
  return kernelStageKey(recipe, { linux: packageVersion('linux-source-6.1'), busybox: packageVersion('busybox-static'), gcc });
}

function resultFile(dir: string): string {
  return path.join(dir, 'guest.json');
}

function guestDir(recipe: GuestRecipe): string {
  return path.join(guestCacheRoot(), `${recipe.arch}-${guestKey(recipe)}`);
}

function readCached(dir: string): GuestPaths | undefined {
  try {
    const g = JSON.parse(fs.readFileSync(resultFile(dir), 'utf8')) as GuestPaths;
    if ([g.kernel, g.vmlinux, g.initrd].every((f) => fs.existsSync(f))) return g;
  } catch {
    // Not built yet.
  }
  return undefined;
}

/** The guest as both stages left it: the userspace stage's initramfs replaces the kernel stage's. */
function withUserspace(kernel: GuestPaths, stage: UserspaceStage): GuestPaths {
  return { ...kernel, initrd: stage.initrd, modules: stage.modules, gdbScripts: stage.gdbScripts };
}

function readComplete(dir: string): GuestPaths | undefined {
  const kernel = readCached(dir);
  const stage = kernel && readUserspace(userspaceDir(dir, moduleSources()));
  return kernel && stage ? withUserspace(kernel, stage) : undefined;
}

/** Return the cached guest if both stages are complete, without building anything. */
export function cachedGuest(arch: string): GuestPaths | undefined {
  return readComplete(guestDir(recipeFor(arch)));
}

export async function buildGuest(arch: string, say: (m: string) => void): Promise<GuestPaths> {
  const recipe = recipeFor(arch);
  await ensurePackages(recipe.packages, say);
  const dir = guestDir(recipe);
  const cached = readComplete(dir);
  if (cached) {
    say(`Sample ${arch} guest is cached in ${dir}`);
    return cached;
  }
  fs.mkdirSync(dir, { recursive: true });
  const release = acquireLock(dir);
  try {
    const kernel = readCached(dir);
    if (kernel) say(`Sample ${arch} kernel is cached in ${dir}; building the userspace stage`);
    return await userspace(recipe, dir, kernel ?? (await build(recipe, dir, say)), say);
  } finally {
    release();
  }
}

async function userspace(recipe: GuestRecipe, dir: string, kernel: GuestPaths, say: (m: string) => void): Promise<GuestPaths> {
  // Cached after the kernel stage (cross arches) or the host's own binary: no download here.
  const busybox = await targetBusybox(recipe, dir, say, path.join(dir, 'build.log'));
  const stage = await buildUserspace({ recipe, guestDir: dir, tree: kernel.source, busybox: busybox.data, say });
  const g = withUserspace(kernel, stage);
  say(`Sample ${recipe.arch} guest ready: kernel ${g.kernel}, initramfs ${g.initrd}`);
  return g;
}

async function build(recipe: GuestRecipe, dir: string, say: (m: string) => void): Promise<GuestPaths> {
  const t0 = Date.now();
  const elapsed = (): string => `${Math.round((Date.now() - t0) / 1000)}s`;
  const logFile = path.join(dir, 'build.log');
  const tree = path.join(dir, 'linux-source-6.1');
  const jobs = String(Math.max(1, os.cpus().length));
  const make = (args: string[], label: string, onLine?: (l: string) => string | undefined): Promise<void> =>
    runStreaming(['make', `ARCH=${recipe.kernelArch}`, ...(recipe.crossCompile ? [`CROSS_COMPILE=${recipe.crossCompile}`] : []), ...args], { cwd: tree, say, label, logFile, onLine });

  if (!fs.existsSync(path.join(tree, 'Makefile'))) {
    say(`[1/6] Unpacking ${SOURCE_TARBALL} (about 20 s)`);
    fs.rmSync(tree, { recursive: true, force: true });
    await runStreaming(['tar', '-xf', SOURCE_TARBALL, '-C', dir], { say, label: 'unpack kernel source', logFile });
  } else say('[1/6] Kernel source already unpacked (resuming an earlier build)');

  // Before the long kernel compile, so a download or cross-compile problem shows at once.
  say(`[2/6] Getting busybox for ${recipe.arch}${recipe.busybox ? ` (${recipe.busybox.kind === 'deb' ? 'Debian package' : 'cross-built from Debian source'})` : ''}`);
  const busybox = await targetBusybox(recipe, dir, say, logFile);
  say(`      busybox: ${busybox.origin}`);

  say('[3/6] Configuring: tinyconfig + sample-guest fragment');
  const fragment = path.join(dir, 'qkd.config');
  fs.writeFileSync(fragment, recipe.fragment);
  await make(['tinyconfig'], 'make tinyconfig');
  await runStreaming(['scripts/kconfig/merge_config.sh', '-m', '.config', fragment], { cwd: tree, say, label: 'merge config fragment', logFile, env: { ...process.env, ARCH: recipe.kernelArch } });
  await make(['olddefconfig'], 'make olddefconfig');
  const config = fs.readFileSync(path.join(tree, '.config'), 'utf8');
  const lost = requiredOptions(recipe.fragment).filter((o) => !config.includes(`\n${o}\n`));
  if (lost.length) throw errors.guestBuild(`these options did not survive olddefconfig (a dependency is missing): ${lost.join(', ')}`);
  const forced = disabledOptions(recipe.fragment).filter((o) => new RegExp(`^${o}=[ym]$`, 'm').test(config));
  if (forced.length) throw errors.guestBuild(`these options are still on after olddefconfig (something selects them): ${forced.join(', ')}`);

  say(`[4/6] Compiling Linux with ${jobs} jobs (5-10 minutes on 2 cores; log: ${logFile})`);
  let objects = 0;
  let lastSaid = Date.now();
  await make([`-j${jobs}`, recipe.makeTarget], `make ${recipe.makeTarget}`, (line) => {
    const m = /^\s+(CC|AS|LD|AR)\s+(\S+)/.exec(line);
    if (!m) return undefined;
    objects++;
    if (Date.now() - lastSaid < 15_000) return undefined;
    lastSaid = Date.now();
    return `      ${elapsed()}: ${objects} steps done, now ${m[1]} ${m[2]}`;
  });

  // Kept so guest.json boots by itself; the userspace stage builds the initramfs the guest uses.
  say('[5/6] Building the busybox initramfs (without modules)');
  const initrd = path.join(dir, 'initramfs.cpio');
  fs.writeFileSync(initrd, buildInitramfs(busybox.data));

  const result: GuestPaths = { arch: recipe.arch, kernel: path.join(tree, recipe.image), vmlinux: path.join(tree, 'vmlinux'), initrd, source: tree, busybox: busybox.origin };
  for (const f of [result.kernel, result.vmlinux]) if (!fs.existsSync(f)) throw errors.guestBuild(`make finished but ${f} is missing; see ${logFile}`);
  fs.writeFileSync(resultFile(dir), JSON.stringify(result, null, 2));
  say(`[6/6] Sample ${recipe.arch} kernel ready after ${elapsed()}: ${dir}`);
  return result;
}

/** One builder per cache folder; a lock left by a dead process is taken over. */
function acquireLock(dir: string): () => void {
  const lock = path.join(dir, 'build.lock');
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lock, { force: true });
    } catch {
      const pid = Number(fs.readFileSync(lock, 'utf8'));
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = pid !== process.pid;
      } catch {
        alive = false;
      }
      if (alive) throw errors.guestBuild(`another build (pid ${pid}) is running in ${dir}; wait for it to finish`);
      fs.rmSync(lock, { force: true });
    }
  }
}
