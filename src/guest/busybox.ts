/**
 * The target's static busybox for the sample guest's initramfs.
 *
 * x86_64 uses the host's own /bin/busybox (busybox-static). Other arches take the same Debian
 * busybox release, pinned to the host package's source version so the cache key (which holds
 * that version) describes what is inside:
 * - `deb`: Debian's busybox-static for the target arch (arm64), downloaded with apt;
 * - `source`: Debian's busybox source package, cross-built statically with Debian's own
 *   `static` configuration (riscv64, which bookworm does not ship as a release architecture).
 *
 * apt runs with a private sources list and state under the guest's cache folder, so the host's
 * apt configuration is never changed (no `dpkg --add-architecture`, no deb-src lines) and the
 * downloads are still verified against Debian's signed Release files.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { errors } from '../util/errors';
import { sourceVersion } from './packages';
import { GuestRecipe } from './recipes';
import { runStreaming } from './run';

export const HOST_BUSYBOX = '/bin/busybox';
const MIRROR = 'http://deb.debian.org/debian';
const SECURITY_MIRROR = 'http://deb.debian.org/debian-security';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
/** e_machine of each Debian architecture we fetch busybox for, to catch a wrong binary early. */
const ELF_MACHINE: Record<string, number> = { arm64: 183, riscv64: 243 };

export interface TargetBusybox {
  data: Buffer;
  /** Where it came from, for guest.json and the progress log. */
  origin: string;
}

type Say = (m: string) => void;

/** Debian's codename for the host (bookworm); the private sources list follows the host's release. */
function debianCodename(): string {
  try {
    const m = /^VERSION_CODENAME=(\w+)$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1];
  } catch {
    // Fall through to the error below.
  }
  throw errors.guestBuild('cannot tell the Debian release: /etc/os-release has no VERSION_CODENAME (the sample guests need Debian 12 or later)');
}

/** A debian version without a binNMU suffix: 1:1.35.0-4+deb12u1+b1 → 1:1.35.0-4+deb12u1. */
export function withoutBinNmu(version: string): string {
  return version.replace(/\+b\d+$/, '');
}

/** The versions `apt-cache madison` lists for one package, newest first. */
export function madisonVersions(output: string): string[] {
  return output
    .split('\n')
    .map((l) => l.split('|').map((f) => f.trim()))
    .filter((f) => f.length >= 3 && f[1] !== '')
    .map((f) => f[1]);
}

/** The Debian flags for building busybox for `debArch`, as debian/rules passes them (-O2 dropped for -Os). */
export function debianBuildFlags(debArch: string): { cflags: string; ldflags: string } {
  const get = (what: string): string => {
    const r = spawnSync('dpkg-buildflags', ['--get', what], { encoding: 'utf8', env: { ...process.env, DEB_HOST_ARCH: debArch, DEB_BUILD_MAINT_OPTIONS: 'hardening=+all' } });
    if (r.status !== 0) throw errors.guestBuild(`dpkg-buildflags --get ${what} failed (is dpkg-dev installed?): ${r.stderr}`);
    return r.stdout.trim();
  };
  // -ffile-prefix-map names the build folder; it only makes the binary reproducible, so drop it.
  const cflags = `${get('CFLAGS')} ${get('CPPFLAGS')}`
    .split(/\s+/)
    .filter((f) => f && f !== '-O2' && !f.startsWith('-ffile-prefix-map='))
    .join(' ');
  return { cflags, ldflags: `${cflags} ${get('LDFLAGS')}`.trim() };
}

class PrivateApt {
  readonly root: string;
  private readonly opts: string[];

  constructor(work: string, private readonly debArch: string, kind: 'deb' | 'deb-src') {
    this.root = path.join(work, 'apt');
    const codename = debianCodename();
    const arch = kind === 'deb' ? `arch=${debArch} ` : '';
    const line = (uri: string, suite: string): string => `${kind} [${arch}signed-by=${KEYRING}] ${uri} ${suite} main`;
    for (const d of ['lists/partial', 'cache/archives/partial', 'sources.list.d']) fs.mkdirSync(path.join(this.root, d), { recursive: true });
    const sources = path.join(this.root, 'sources.list');
    fs.writeFileSync(sources, [line(MIRROR, codename), line(MIRROR, `${codename}-updates`), line(SECURITY_MIRROR, `${codename}-security`)].join('\n') + '\n');
    this.opts = [
      `-oDir::Etc::SourceList=${sources}`,
      `-oDir::Etc::SourceParts=${path.join(this.root, 'sources.list.d')}`,
      `-oDir::State::Lists=${path.join(this.root, 'lists')}`,
      `-oDir::Cache=${path.join(this.root, 'cache')}`,
      // Binary indexes for the target arch only (deb-src lines fetch no binary indexes).
      ...(kind === 'deb' ? [`-oAPT::Architectures::=${debArch}`] : []),
      '-oAcquire::Languages=none',
      // The state lives in the user's cache, which apt's _apt sandbox user cannot enter.
      `-oAPT::Sandbox::User=${os.userInfo().username}`,
    ];
    if (!fs.existsSync(KEYRING)) throw errors.guestBuild(`${KEYRING} is missing; install debian-archive-keyring`);
  }

  async update(say: Say, logFile: string): Promise<void> {
    await runStreaming(['apt-get', ...this.opts, '-q', 'update'], { say, label: `apt-get update (private lists for ${this.debArch} busybox)`, logFile });
  }

  query(args: string[]): string {
    const r = spawnSync(args[0], [...this.opts, ...args.slice(1)], { encoding: 'utf8' });
    if (r.status !== 0) throw errors.guestBuild(`${args.join(' ')} failed: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async run(args: string[], cwd: string, say: Say, logFile: string): Promise<void> {
    await runStreaming([args[0], ...this.opts, ...args.slice(1)], { cwd, say, label: args.join(' '), logFile });
  }

  /** The lists are tens of MB and only needed once. */
  dispose(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

function checkElf(data: Buffer, debArch: string, what: string): void {
  const want = ELF_MACHINE[debArch];
  const isElf = data.length > 20 && data.readUInt32BE(0) === 0x7f454c46;
  if (!isElf || (want !== undefined && data.readUInt16LE(18) !== want))
    throw errors.guestBuild(`${what} is not an ELF for ${debArch} (e_machine ${isElf ? data.readUInt16LE(18) : 'none'}, expected ${want})`);
}

/** busybox-static for `debArch` from Debian's mirror, the build of the host's busybox source version. */
async function fromDeb(debArch: string, work: string, srcVersion: string, say: Say, logFile: string): Promise<TargetBusybox> {
  const apt = new PrivateApt(work, debArch, 'deb');
  await apt.update(say, logFile);
  const pkg = `busybox-static:${debArch}`;
  const versions = madisonVersions(apt.query(['apt-cache', 'madison', pkg]));
  const version = versions.find((v) => withoutBinNmu(v) === srcVersion);
  if (!version) throw errors.guestBuild(`Debian's mirror has no ${pkg} built from busybox ${srcVersion} (the host's busybox-static); it has: ${versions.join(', ') || 'none'}`);
  const debs = path.join(work, 'deb');
  fs.rmSync(debs, { recursive: true, force: true });
  fs.mkdirSync(debs, { recursive: true });
  await apt.run(['apt-get', '-q', 'download', `${pkg}=${version}`], debs, say, logFile);
  const deb = fs.readdirSync(debs).find((f) => f.endsWith('.deb'));
  if (!deb) throw errors.guestBuild(`apt-get download ${pkg}=${version} left no .deb in ${debs}`);
  const extracted = path.join(work, 'extracted');
  fs.rmSync(extracted, { recursive: true, force: true });
  await runStreaming(['dpkg-deb', '-x', path.join(debs, deb), extracted], { say, label: 'dpkg-deb -x', logFile });
  const data = fs.readFileSync(path.join(extracted, 'bin', 'busybox'));
  checkElf(data, debArch, `bin/busybox in ${deb}`);
  apt.dispose();
  for (const d of [debs, extracted]) fs.rmSync(d, { recursive: true, force: true });
  return { data, origin: `Debian ${pkg} ${version}` };
}

/** Debian's busybox source at the host's version, cross-built with Debian's static config. */
async function fromSource(recipe: GuestRecipe, debArch: string, work: string, srcVersion: string, say: Say, logFile: string): Promise<TargetBusybox> {
  const cross = recipe.crossCompile;
  if (!cross) throw errors.guestBuild(`recipe ${recipe.arch} builds busybox from source but has no crossCompile prefix`);
  const apt = new PrivateApt(work, debArch, 'deb-src');
  await apt.update(say, logFile);
  const srcDir = path.join(work, 'source');
  fs.rmSync(srcDir, { recursive: true, force: true });
  fs.mkdirSync(srcDir, { recursive: true });
  await apt.run(['apt-get', '-q', 'source', '--download-only', `busybox=${srcVersion}`], srcDir, say, logFile);
  const dsc = fs.readdirSync(srcDir).find((f) => f.endsWith('.dsc'));
  if (!dsc) throw errors.guestBuild(`apt-get source busybox=${srcVersion} left no .dsc in ${srcDir}`);
  const tree = path.join(srcDir, 'busybox');
  // apt checked the files against the signed Sources index; dpkg-source checks them against
  // the .dsc again and applies Debian's patches.
  await runStreaming(['dpkg-source', '-x', dsc, tree], { cwd: srcDir, say, label: 'dpkg-source -x busybox', logFile });

  // debian/rules' static flavour: the OS overrides, then the flavour's config, through oldconfig.
  const out = path.join(tree, 'b', 'static');
  fs.mkdirSync(out, { recursive: true });
  const config = ['debian/config/os/linux', 'debian/config/pkg/static'].map((f) => fs.readFileSync(path.join(tree, f), 'utf8')).join('');
  fs.writeFileSync(path.join(out, '.config'), config);
  const env = { ...process.env, CROSS_COMPILE: cross, KCONFIG_NOTIMESTAMP: '1' };
  await runStreaming(['sh', '-c', 'yes "" | make -C "$1" -f "$2/Makefile" KBUILD_SRC="$2" silentoldconfig', 'sh', out, tree], { env, say, label: 'busybox oldconfig', logFile });
  const flags = debianBuildFlags(debArch);
  const jobs = String(Math.max(1, os.cpus().length));
  say(`      cross-compiling busybox ${srcVersion} for ${debArch} (about 1-3 minutes)`);
  await runStreaming(
    ['make', `-j${jobs}`, '-C', out, 'all', 'SKIP_STRIP=y', `BB_EXTRA_VERSION=Debian ${srcVersion}`, `CONFIG_EXTRA_CFLAGS=${flags.cflags}`, `CONFIG_EXTRA_LDFLAGS=${flags.ldflags}`],
    { env, say, label: 'make busybox', logFile },
  );
  const binary = path.join(out, 'busybox');
  await runStreaming([`${cross}strip`, binary], { say, label: 'strip busybox', logFile });
  const data = fs.readFileSync(binary);
  checkElf(data, debArch, binary);
  const cfg = fs.readFileSync(path.join(out, '.config'), 'utf8');
  if (!/^CONFIG_STATIC=y$/m.test(cfg)) throw errors.guestBuild(`busybox's config lost CONFIG_STATIC=y; see ${logFile}`);
  apt.dispose();
  fs.rmSync(srcDir, { recursive: true, force: true });
  return { data, origin: `Debian busybox source ${srcVersion}, cross-built static for ${debArch} with ${cross}gcc` };
}

/**
 * The busybox binary for the recipe's arch. Cross results are kept in `<dir>/busybox/` so a
 * build resumed after a failed kernel compile does not fetch or compile it again.
 */
export async function targetBusybox(recipe: GuestRecipe, dir: string, say: Say, logFile: string): Promise<TargetBusybox> {
  const how = recipe.busybox;
  if (!how) return { data: fs.readFileSync(HOST_BUSYBOX), origin: `host ${HOST_BUSYBOX} (Debian busybox-static)` };
  const work = path.join(dir, 'busybox');
  const done = path.join(work, 'busybox');
  const originFile = path.join(work, 'origin.txt');
  if (fs.existsSync(done) && fs.existsSync(originFile)) return { data: fs.readFileSync(done), origin: fs.readFileSync(originFile, 'utf8').trim() };
  fs.mkdirSync(work, { recursive: true });
  const srcVersion = sourceVersion('busybox-static');
  if (!srcVersion) throw errors.guestBuild('busybox-static is not installed on the host; its version picks the busybox for every guest. Install it with: apt-get install busybox-static');
  const result = how.kind === 'deb' ? await fromDeb(how.debArch, work, srcVersion, say, logFile) : await fromSource(recipe, how.debArch, work, srcVersion, say, logFile);
  fs.writeFileSync(done, result.data, { mode: 0o755 });
  fs.writeFileSync(originFile, result.origin + '\n');
  return result;
}
