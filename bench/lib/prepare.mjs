// Gets a fresh machine ready for the selected measures, saying what it does on stderr.
// Only what a selected measure needs is fetched: the Debian vmlinux is ~860 MB to download.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { commandExists, GNU_TIME, say } from './proc.mjs';

const DEBIAN_PKG = '^linux-image-6\\.1\\.0-[0-9]+-amd64-dbg$';

/**
 * needs: { guest, debian, gdb, qemu, vsce } booleans. Returns { guest, debianVmlinux }.
 * Throws with the command to run when something can't be installed from here. With
 * { fetch: false } (--smoke, run by the tests) no package is installed and dist/ isn't built:
 * whatever is missing is an error that names the command. (The sample guest still comes from
 * `qkd guest build`, which answers from its cache at once; the test skips when it isn't built.)
 */
export function prepare(repo, needs, { fetch = true } = {}) {
  const run = (cmd, args, what) => {
    if (!fetch) throw new Error(`${what.replace(/: .*/, '')}; not fetched under --smoke (run: ${cmd === process.execPath ? 'node' : cmd} ${args.join(' ')})`);
    say(what);
    // The child's stdout is progress too; the bench's own stdout is kept for the results.
    const r = spawnSync(cmd, args, { cwd: repo, stdio: ['ignore', 2, 2] });
    if (r.status !== 0) throw new Error(`${what} failed: ${cmd} ${args.join(' ')} exited ${r.status}`);
  };

  if (!fs.existsSync(path.join(repo, 'node_modules', '@vscode', 'debugadapter-testsupport'))) {
    run('npm', ['ci', '--no-audit', '--no-fund'], 'node_modules is missing: installing npm packages (npm ci)');
  } else say('npm packages: present');

  const missing = [];
  if (needs.gdb && !commandExists('gdb')) missing.push('gdb');
  if (needs.qemu && !commandExists('qemu-system-x86_64')) missing.push('qemu-system-x86_64');
  if ((needs.gdb || needs.debian) && !fs.existsSync(GNU_TIME)) missing.push(`${GNU_TIME} (GNU time)`);
  // The same installer the README's commands use: apt packages for QEMU, gdb and GNU time.
  if (missing.length) run('bash', ['scripts/setup.sh'], `${missing.join(', ')} missing: installing packages (bash scripts/setup.sh)`);
  else say('gdb, QEMU and GNU time: present');
  if (needs.gdb) say(`gdb: ${execFileSync('gdb', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`);
  if (needs.qemu) say(`QEMU: ${execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`);

  for (const f of ['adapter.js', 'adapter-inline.js', 'adapter-lib.js', 'cli.js', 'extension.js']) {
    if (!fs.existsSync(path.join(repo, 'dist', f))) {
      run(process.execPath, ['scripts/build.mjs'], `dist/${f} is missing: building dist/ (node scripts/build.mjs)`);
      break;
    }
  }

  const out = {};
  if (needs.guest) {
    say('sample guest: building it or taking it from the cache (node dist/cli.js guest build; the first build takes 5-10 minutes)');
    const r = spawnSync(process.execPath, [path.join(repo, 'dist', 'cli.js'), 'guest', 'build', '--json'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 2] });
    if (r.status !== 0) throw new Error(`building the sample guest failed (exit ${r.status})`);
    out.guest = JSON.parse(r.stdout);
    say(`sample guest: ${out.guest.kernel}`);
  }
  if (needs.debian) out.debianVmlinux = debianVmlinux(repo);
  return out;
}

function debianVmlinux(repo) {
  const listed = () => spawnSync('apt-cache', ['search', '--names-only', DEBIAN_PKG], { encoding: 'utf8' }).stdout.trim() !== '';
  if (!commandExists('apt-cache')) throw new Error("P1/P2 need Debian's linux-image-6.1.0-*-amd64-dbg package, fetched with apt: this machine has no apt-cache");
  if (!listed()) {
    if (process.getuid?.() === 0) {
      say("Debian vmlinux: apt's lists name no linux-image-6.1.0-*-amd64-dbg package; running apt-get update");
      const r = spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 2, 2] });
      if (r.status !== 0) throw new Error('apt-get update failed');
    }
    if (!listed()) throw new Error("apt's lists name no linux-image-6.1.0-*-amd64-dbg package: run `sudo apt-get update` (on Debian 12, with the main component), then npm run bench again");
  }
  say("Debian vmlinux: fetching it or taking it from the cache (bench/fetch-debian-vmlinux.sh; about 860 MB to download, once)");
  const r = spawnSync('bash', [path.join(repo, 'bench', 'fetch-debian-vmlinux.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 2] });
  if (r.status !== 0) throw new Error(`fetching Debian's vmlinux failed (exit ${r.status})`);
  const v = r.stdout.trim();
  say(`Debian vmlinux: ${v}`);
  return v;
}
