/**
 * The sample guest's userspace stage, built on top of a cached kernel: the sample module
 * (examples/sample-module), generated benchmark modules and the ioctl tool, compiled with
 * kbuild against the guest's own tree, and the initramfs that carries them next to busybox.
 *
 * It has its own cache folder inside the guest's, `modules-<key>`, keyed by the module
 * sources and the init script, so changing either rebuilds this stage in a minute instead
 * of the kernel in twenty. The modules are built in that folder from a copy of the sources:
 * nothing is written into the clone, and their DWARF names files that stay where they are.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errors } from '../util/errors';
import { CpioEntry } from './cpio';
import { buildInitramfs, INIT_SCRIPT } from './initramfs';
import { GuestRecipe } from './recipes';
import { runStreaming } from './run';

/** Bump when this stage's steps change in a way the sources and init script do not capture. */
const USERSPACE_STAGE_VERSION = 1;
export const SAMPLE_MODULE = 'qkd_sample';
export const BENCH_COUNT = 20;
/** Where the initramfs puts the ioctl tool; busybox has no applet that issues an ioctl. */
export const CTL_GUEST_PATH = '/bin/qkd_sample_ctl';
/** The files of examples/sample-module the build uses (the README is left out of the key). */
const SOURCE_FILES = ['Kbuild', 'Makefile', 'qkd_sample.c', 'qkd_sample.h', 'qkd_sample_ctl.c', 'bench/qkd_bench.c.in'];
const BENCH_TEMPLATE = 'bench/qkd_bench.c.in';
const STAGE_FILE = 'stage.json';

export interface GuestModules {
  /** The folder kbuild built them in (M=): a copy of examples/sample-module plus the generated bench sources. */
  dir: string;
  /** qkd_sample.ko on the host, with DWARF; the guest loads a byte-identical copy. */
  sample: string;
  /** qkd_bench_01.ko … on the host, in order. */
  bench: string[];
  /** The kernel release (include/config/kernel.release), as `uname -r` prints it in the guest. */
  release: string;
  /** The same .ko files inside the guest: /lib/modules/<release>/extra. */
  guestDir: string;
  /** qkd_sample_ctl inside the guest (`qkd_sample_ctl add N | count | reset`). */
  ctl: string;
}

export interface UserspaceStage {
  initrd: string;
  /** Absent when the sample module's sources are not there (an installed .vsix has none). */
  modules?: GuestModules;
  /** The tree's vmlinux-gdb.py (gdb's lx- commands), when `make scripts_gdb` made it. */
  gdbScripts?: string;
}

/** The module sources by relative path, and the folder they were read from. */
export interface ModuleSources {
  from: string;
  files: Record<string, string>;
}

/**
 * examples/sample-module of the clone this code runs from: from dist/ (the bundles) or
 * out/src/guest/ (the compiled tests), whichever ancestor has it.
 */
export function findSampleModule(start: string = __dirname): string | undefined {
  let dir = start;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'examples', 'sample-module');
    if (fs.existsSync(path.join(candidate, 'qkd_sample.c'))) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}

export function readModuleSources(from: string): ModuleSources {
  const files: Record<string, string> = {};
  for (const f of SOURCE_FILES) {
    try {
      files[f] = fs.readFileSync(path.join(from, f), 'utf8');
    } catch {
      throw errors.guestBuild(`${path.join(from, f)} is missing; the sample module's sources are incomplete`);
    }
  }
  return { from, files };
}

export function moduleSources(): ModuleSources | undefined {
  const from = findSampleModule();
  return from ? readModuleSources(from) : undefined;
}

/** This stage's cache key: what goes into the initramfs besides busybox, which the kernel stage's key covers. */
export function userspaceKey(sources: ModuleSources | undefined): string {
  const h = crypto.createHash('sha256');
  // Not `from`: the same sources in another clone give the same modules.
  h.update(JSON.stringify({ USERSPACE_STAGE_VERSION, init: INIT_SCRIPT, bench: BENCH_COUNT, sources: sources?.files ?? null }));
  return h.digest('hex').slice(0, 16);
}

export function userspaceDir(guestDir: string, sources: ModuleSources | undefined): string {
  return path.join(guestDir, `modules-${userspaceKey(sources)}`);
}

export function benchModuleNames(count: number = BENCH_COUNT): string[] {
  return Array.from({ length: count }, (_, i) => `qkd_bench_${String(i + 1).padStart(2, '0')}`);
}

/** One bench module from the template: @NN@ is the two-digit number, @N@ the plain one (01 would be octal in C). */
export function benchSource(template: string, n: number): string {
  return template.replaceAll('@NN@', String(n).padStart(2, '0')).replaceAll('@N@', String(n));
}

/** modules.dep as busybox modprobe reads it: one `path: deps` line per module, paths relative to the release folder. */
export function modulesDep(names: string[]): string {
  return names.map((n) => `extra/${n}.ko:\n`).join('');
}

/** The stage recorded in `dir`, if every file it names is still there. */
export function readUserspace(dir: string): UserspaceStage | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(dir, STAGE_FILE), 'utf8')) as UserspaceStage;
    const files = [s.initrd, ...(s.modules ? [s.modules.sample, ...s.modules.bench] : [])];
    if (files.every((f) => fs.existsSync(f))) return s;
  } catch {
    // Not built yet, or interrupted before the result was written.
  }
  return undefined;
}

export interface UserspaceBuild {
  recipe: GuestRecipe;
  /** The guest's cache folder, which holds the kernel tree. */
  guestDir: string;
  tree: string;
  busybox: Buffer;
  say: (m: string) => void;
}

export async function buildUserspace(b: UserspaceBuild): Promise<UserspaceStage> {
  const t0 = Date.now();
  const sources = moduleSources();
  const dir = userspaceDir(b.guestDir, sources);
  const cached = readUserspace(dir);
  if (cached) return cached;
  // A folder without a result is an interrupted build: start it again from nothing.
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, 'build.log');
  const { recipe, tree, say } = b;
  const jobs = `-j${Math.max(1, os.cpus().length)}`;
  const cross = recipe.crossCompile ? [`CROSS_COMPILE=${recipe.crossCompile}`] : [];
  const make = (args: string[], label: string): Promise<void> => runStreaming(['make', `ARCH=${recipe.kernelArch}`, ...cross, ...args], { cwd: tree, say, label, logFile });
  const inTree = (f: string): string => path.join(tree, f);

  const prep: string[] = [];
  // `make <image>` builds neither: kbuild needs Module.symvers to check an external module's
  // symbols and scripts/module.lds to link it. `make modules` makes both (the tree has no modules of its own).
  const needModules = sources !== undefined && !(fs.existsSync(inTree('Module.symvers')) && fs.existsSync(inTree('scripts/module.lds')));
  // The ioctl tool is built with nolibc, which takes its kernel definitions from `make headers`.
  const needHeaders = sources !== undefined && !fs.existsSync(inTree('usr/include/linux/ioctl.h'));
  const needGdb = !fs.existsSync(inTree('vmlinux-gdb.py'));
  if (needModules) prep.push('make modules');
  if (needGdb) prep.push('make scripts_gdb');
  if (needHeaders) prep.push('make headers');
  if (prep.length) {
    say(`[modules 1/3] Preparing the kernel tree: ${prep.join(', ')} (under a minute each; log: ${logFile})`);
    if (needModules) await make([jobs, 'modules'], 'make modules');
    if (needGdb) await make(['scripts_gdb'], 'make scripts_gdb');
    if (needHeaders) await make([jobs, 'headers'], 'make headers');
  } else say('[modules 1/3] Kernel tree already prepared for out-of-tree modules');
  const gdbScripts = fs.existsSync(inTree('vmlinux-gdb.py')) ? inTree('vmlinux-gdb.py') : undefined;

  let modules: GuestModules | undefined;
  let extra: CpioEntry[] = [];
  if (sources) {
    say(`[modules 2/3] Building ${SAMPLE_MODULE}, ${BENCH_COUNT} bench modules and qkd_sample_ctl from ${sources.from}`);
    const built = await buildModules(b, dir, sources, make, jobs, logFile);
    modules = built.modules;
    extra = built.entries;
  } else say('[modules 2/3] No examples/sample-module next to this build of qkd (an installed extension has none); the initramfs gets no modules');

  say('[modules 3/3] Building the initramfs');
  const initrd = path.join(dir, 'initramfs.cpio');
  fs.writeFileSync(initrd, buildInitramfs(b.busybox, extra));
  const result: UserspaceStage = { initrd, modules, gdbScripts };
  fs.writeFileSync(path.join(dir, STAGE_FILE), JSON.stringify(result, null, 2));
  say(`      userspace stage done after ${Math.round((Date.now() - t0) / 1000)}s: ${dir}`);
  return result;
}

async function buildModules(
  b: UserspaceBuild,
  dir: string,
  sources: ModuleSources,
  make: (args: string[], label: string) => Promise<void>,
  jobs: string,
  logFile: string,
): Promise<{ modules: GuestModules; entries: CpioEntry[] }> {
  const { recipe, tree, say } = b;
  const bench = benchModuleNames();
  for (const [name, text] of Object.entries(sources.files)) {
    if (name === BENCH_TEMPLATE) continue;
    fs.writeFileSync(path.join(dir, name), text);
  }
  bench.forEach((name, i) => fs.writeFileSync(path.join(dir, `${name}.c`), benchSource(sources.files[BENCH_TEMPLATE], i + 1)));
  // The user's Kbuild builds qkd_sample alone; the copy here also lists the generated modules.
  fs.appendFileSync(path.join(dir, 'Kbuild'), `\n# Added by the guest builder: the module-load benchmark's modules.\n${bench.map((n) => `obj-m += ${n}.o`).join('\n')}\n`);
  await make([jobs, `M=${dir}`, 'modules'], `make M=${dir} modules`);

  const release = fs.readFileSync(path.join(tree, 'include/config/kernel.release'), 'utf8').trim();
  const names = [SAMPLE_MODULE, ...bench];
  const kos = names.map((n) => path.join(dir, `${n}.ko`));
  for (const ko of kos) {
    if (!fs.existsSync(ko)) throw errors.guestBuild(`kbuild finished but ${ko} is missing; see ${logFile}`);
    // The kernel refuses a module whose vermagic differs from its own; catch that here, not at insmod.
    if (!fs.readFileSync(ko).includes(`vermagic=${release} `)) throw errors.guestBuild(`${ko} was not built for kernel ${release} (its vermagic differs)`);
  }

  const ctl = path.join(dir, 'qkd_sample_ctl');
  await buildCtl(recipe, tree, dir, ctl, say, logFile);

  const guestDir = `/lib/modules/${release}/extra`;
  const rel = guestDir.slice(1);
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'lib' },
    { kind: 'dir', path: 'lib/modules' },
    { kind: 'dir', path: `lib/modules/${release}` },
    { kind: 'dir', path: rel },
    ...names.map((n, i): CpioEntry => ({ kind: 'file', path: `${rel}/${n}.ko`, data: fs.readFileSync(kos[i]) })),
    { kind: 'file', path: `lib/modules/${release}/modules.dep`, data: Buffer.from(modulesDep(names)) },
    { kind: 'file', path: CTL_GUEST_PATH.slice(1), data: fs.readFileSync(ctl), mode: 0o755 },
  ];
  return { modules: { dir, sample: kos[0], bench: kos.slice(1), release, guestDir, ctl: CTL_GUEST_PATH }, entries };
}

/**
 * qkd_sample_ctl, static with the tree's nolibc: the cross compilers come without a C
 * library for the target (aarch64 has none installed), and nolibc needs only the kernel's
 * headers. -nostdinc keeps the host's /usr/include (x86_64 headers) out of a cross build.
 */
async function buildCtl(recipe: GuestRecipe, tree: string, dir: string, out: string, say: (m: string) => void, logFile: string): Promise<void> {
  const cc = `${recipe.crossCompile ?? ''}gcc`;
  const gccInclude = spawnSync(cc, ['-print-file-name=include'], { encoding: 'utf8' }).stdout?.trim();
  if (!gccInclude) throw errors.guestBuild(`${cc} -print-file-name=include gave nothing; is ${cc} installed?`);
  const nolibc = path.join(tree, 'tools/include/nolibc');
  await runStreaming(
    [
      cc,
      '-Os',
      '-Wall',
      '-static',
      '-nostdlib',
      '-nostdinc',
      '-isystem',
      gccInclude,
      '-fno-asynchronous-unwind-tables',
      '-fno-stack-protector',
      '-include',
      path.join(nolibc, 'nolibc.h'),
      '-I',
      nolibc,
      '-I',
      path.join(tree, 'usr/include'),
      '-o',
      out,
      'qkd_sample_ctl.c',
      '-lgcc',
    ],
    { cwd: dir, say, label: 'compile qkd_sample_ctl', logFile },
  );
}

/**
 * The sample modules' build folders for a sample guest's vmlinux (`<guest>/linux-source-6.1/
 * vmlinux`), found from the path alone: a debug session asks at every start, and computing
 * the cache key would run dpkg-query and gcc.
 */
export function sampleModuleDirsFor(vmlinux: string): string[] {
  const guestDir = path.dirname(path.dirname(path.resolve(vmlinux)));
  let names: string[];
  try {
    names = fs.readdirSync(guestDir).filter((n) => n.startsWith('modules-'));
  } catch {
    return [];
  }
  return names.map((n) => readUserspace(path.join(guestDir, n))?.modules?.dir).filter((d): d is string => d !== undefined);
}
