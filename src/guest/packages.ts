/** Installing Debian packages the tools need, with progress, only when they are missing. */
import { spawnSync } from 'node:child_process';
import { errors } from '../util/errors';
import { runStreaming } from './run';

export function missingPackages(pkgs: string[]): string[] {
  return pkgs.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
}

export function packageVersion(pkg: string): string {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

/** The source package version an installed binary package was built from, or undefined. */
export function sourceVersion(pkg: string): string | undefined {
  const r = spawnSync('dpkg-query', ['-W', '-f=${source:Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

export async function ensurePackages(pkgs: string[], say: (m: string) => void): Promise<void> {
  const missing = missingPackages(pkgs);
  if (missing.length === 0) return;
  const root = process.getuid?.() === 0;
  const sudo = !root && spawnSync('sudo', ['-n', 'true']).status === 0;
  if (!root && !sudo) {
    throw errors.guestBuild(`these Debian packages are missing: ${missing.join(' ')}. Install them with: sudo apt-get install ${missing.join(' ')}`);
  }
  const prefix = root ? [] : ['sudo', '-n'];
  say(`Installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runStreaming([...prefix, 'apt-get', 'update', '-q'], { env, say, label: 'apt-get update' });
  await runStreaming([...prefix, 'apt-get', 'install', '-y', '-q', '--no-install-recommends', ...missing], { env, say, label: 'apt-get install' });
  const still = missingPackages(missing);
  if (still.length) throw errors.guestBuild(`apt-get did not install: ${still.join(' ')}`);
}
