/** What the tests need from the machine, found once; missing parts skip with a reason, or fail in CI. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cachedGuest, GuestPaths } from '../../src/guest/build';

export const REPO = path.resolve(__dirname, '..', '..', '..');
export const ADAPTER = path.join(REPO, 'dist', 'adapter.js');
export const CLI = path.join(REPO, 'dist', 'cli.js');
export const RESULTS = path.join(REPO, 'test-results');

/** Skip the current test with a reason, except under CI where a missing prerequisite is a failure. */
export function requireOrSkip(ctx: Mocha.Context, ok: boolean, reason: string): void {
  if (ok) return;
  if (process.env.CI) throw new Error(`prerequisite missing in CI: ${reason}`);
  // eslint-disable-next-line no-console
  console.log(`      skipped: ${reason}`);
  ctx.skip();
}

export function sampleGuest(ctx: Mocha.Context, arch = 'x86_64'): GuestPaths {
  const g = cachedGuest(arch);
  requireOrSkip(ctx, g !== undefined, `the ${arch} sample guest is not built (run: node dist/cli.js guest build --arch ${arch})`);
  return g as GuestPaths;
}

export function requireBuilt(ctx: Mocha.Context): void {
  requireOrSkip(ctx, fs.existsSync(ADAPTER), 'dist/ is not built (run: npm run build)');
}

/** A per-test file under test-results/, for wire logs and console logs. */
export function artifact(ctx: Mocha.Context, suffix: string): string {
  fs.mkdirSync(RESULTS, { recursive: true });
  const title = (ctx.currentTest ?? ctx.test)?.fullTitle() ?? 'test';
  return path.join(RESULTS, `${title.replace(/[^\w.-]+/g, '_').slice(0, 80)}.${suffix}`);
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); it is dead for our purposes.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** Wait until `pid` is gone, checking its /proc entry; false after `ms`. */
export async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !processAlive(pid);
}
