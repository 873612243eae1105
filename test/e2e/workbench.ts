/**
 * The real VS Code workbench for the E2E tier: code-server (installed outside the clone by
 * scripts/e2e-setup.sh) served to Debian's Chromium, driven through playwright-core.
 * Shared by the workbench test and by the launcher that runs test/vscode/ in its extension host.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO, RESULTS } from '../support/env';

export const E2E_RESULTS = path.join(RESULTS, 'e2e');
export const CHROMIUM = process.env.QKD_CHROMIUM ?? '/usr/bin/chromium';
export const SAMPLE_WORKSPACE = path.join(REPO, 'examples', 'sample-guest');
/** package.json publisher.name, as the workbench identifies the extension. */
export const EXTENSION_ID = 'qemu-kernel-debug.qemu-kernel-debug';

export interface CodeServerInstall {
  dir: string;
  node: string;
  entry: string;
}

/** The cached code-server that scripts/e2e-setup.sh installed, or the reason there is none. */
export function codeServerInstall(): CodeServerInstall | string {
  // The script owns the pinned versions, so it is asked where the cache is rather than repeating them.
  const dir = process.env.QKD_E2E_DIR || execFileSync('bash', [path.join(REPO, 'scripts', 'e2e-setup.sh'), '--dir-only'], { encoding: 'utf8' }).trim();
  const node = path.join(dir, 'node-home', 'bin', 'node');
  const entry = path.join(dir, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  if (!fs.existsSync(path.join(dir, '.complete')) || !fs.existsSync(node) || !fs.existsSync(entry)) {
    return `code-server is not installed in ${dir} (run: bash scripts/e2e-setup.sh)`;
  }
  return { dir, node, entry };
}

export function chromiumMissing(): string | undefined {
  return fs.existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium, or run: bash scripts/e2e-setup.sh)`;
}

/**
 * User settings that keep the workbench quiet and readable by the tests: the DOM terminal
 * renderer (canvas/WebGL rows cannot be read), header actions always shown (no hover needed),
 * and no welcome page, chat panel, git or extension prompts over the views.
 */
export const TEST_SETTINGS: Record<string, unknown> = {
  'terminal.integrated.gpuAcceleration': 'off',
  // Screenshots stay small and legible without the minimap's noise.
  'editor.minimap.enabled': false,
  'workbench.view.alwaysShowHeaderActions': true,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'chat.disableAIFeatures': true,
  'git.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
  'extensions.ignoreRecommendations': true,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'security.workspace.trust.enabled': false,
};

export interface Profile {
  userDataDir: string;
  extensionsDir: string;
}

/** Create the profile's directories and write the test settings as its user settings. */
export function prepareProfile(profile: Profile, settings: Record<string, unknown> = TEST_SETTINGS): Profile {
  fs.mkdirSync(path.join(profile.userDataDir, 'User'), { recursive: true });
  fs.mkdirSync(profile.extensionsDir, { recursive: true });
  fs.writeFileSync(path.join(profile.userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  return profile;
}

/** A new, empty profile under `root` (which is emptied first). */
export function freshProfile(root: string): Profile {
  fs.rmSync(root, { recursive: true, force: true });
  return prepareProfile({ userDataDir: path.join(root, 'user-data'), extensionsDir: path.join(root, 'extensions') });
}

/**
 * Install the repo as a user extension by linking it into the extensions directory, as a
 * .vsix install would place it: the workbench then runs it as a user has it, not as an
 * "Extension Development Host".
 */
export function linkExtension(extensionsDir: string): void {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
  fs.symlinkSync(REPO, path.join(extensionsDir, `${EXTENSION_ID}-${pkg.version}`));
}

export interface CodeServer {
  url: string;
  /** code-server's pid, which is also its process group. */
  pid: number;
  log: string;
  stop(): Promise<void>;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}

/** Send `sig` to a whole process group, then SIGKILL whatever is left after a grace period. */
export async function killGroup(pgid: number, graceMs = 5000): Promise<void> {
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return;
  }
  if (await until(() => !groupAlive(pgid), graceMs)) return;
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    return;
  }
  await until(() => !groupAlive(pgid), graceMs);
}

export interface StartOptions {
  profile: Profile;
  logFile: string;
  /** Extra code-server arguments, e.g. --vscode-option enable-smoke-test-driver. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * Start code-server on a free loopback port in a process group of its own: it leaves helpers
 * (pty host, extension hosts, file watchers) running unless the whole group is stopped.
 */
export function startCodeServer(install: CodeServerInstall, opts: StartOptions): Promise<CodeServer> {
  const { profile } = opts;
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const log = fs.openSync(opts.logFile, 'w');
  const argv = [
    install.node,
    install.entry,
    // Its own config file: code-server otherwise reads (and first writes) one in ~/.config.
    '--config', path.join(profile.userDataDir, 'config.yaml'),
    '--bind-addr', '127.0.0.1:0',
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--user-data-dir', profile.userDataDir,
    '--extensions-dir', profile.extensionsDir,
    ...(opts.args ?? []),
  ];
  // pdeathsig: should the test process die without cleaning up, code-server goes with it.
  const child = spawn('setpriv', ['--pdeathsig', 'SIGTERM', '--', ...argv], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  const pid = child.pid;
  return new Promise<CodeServer>((resolve, reject) => {
    if (pid === undefined) {
      reject(new Error('code-server did not start'));
      return;
    }
    let out = '';
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`code-server printed no listening address within ${opts.timeoutMs ?? 60000} ms; see ${opts.logFile}`)), opts.timeoutMs ?? 60000);
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void killGroup(pid).then(() => reject(e));
    };
    const onData = (d: Buffer): void => {
      fs.writeSync(log, d);
      if (settled) return;
      out += d.toString('utf8');
      const m = /HTTP server listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (!m) return;
      settled = true;
      clearTimeout(timer);
      resolve({ url: m[1], pid, log: opts.logFile, stop: () => killGroup(pid) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => fail(e));
    child.on('exit', (code, signal) => {
      fail(new Error(`code-server exited (${signal ?? code}) before listening; see ${opts.logFile}`));
      fs.closeSync(log);
    });
  });
}

export const VIEWPORT = { width: 1280, height: 800 };

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives each launch a fresh temporary profile.
    args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage', '--no-first-run'],
  });
}

/** Close Chromium; playwright kills its process group if closing hangs. */
export async function closeChromium(browser: Browser | undefined): Promise<void> {
  if (!browser) return;
  await Promise.race([browser.close().catch(() => undefined), new Promise((r) => setTimeout(r, 10000))]);
}

/** pids of every process below `root`, from /proc's parent links. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name is parenthesised and may contain spaces; the ppid follows the state.
    const m = /\) \S (\d+)/.exec(stat.slice(stat.lastIndexOf(')')));
    if (!m) continue;
    const ppid = Number(m[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** The QEMU processes started below `root` (others' QEMUs on this machine are not ours to count). */
export function qemuBelow(root: number): number[] {
  return descendants(root).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('qemu-system');
    } catch {
      return false;
    }
  });
}

/** Run a command by its palette title, as a user would: F1, type, Enter. */
export async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input[type="text"]').first();
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  // The palette filters asynchronously and also offers "similar commands": Enter only once
  // the focused row is exactly this command.
  const exact = new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  await page.locator('.quick-input-list .monaco-list-row.focused .label-name', { hasText: exact }).first().waitFor();
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden' });
}

export function workbenchUrl(base: string, folder: string, payload?: Array<[string, string]>): string {
  const q = [`folder=${encodeURIComponent(folder)}`];
  if (payload) q.push(`payload=${encodeURIComponent(JSON.stringify(payload))}`);
  return `${base}/?${q.join('&')}`;
}

/**
 * The extension host has started and the workbench has registered every extension's
 * contributions. Until then no debugger is known, so F5 has no binding and reaches the browser,
 * which reloads the page: a user never presses F5 within a second of the window opening, but a
 * test on a busy machine does. The remote extension host logs this line only after the
 * workbench has handled the extension points (debuggers among them).
 */
export async function waitForExtensionHost(userDataDir: string, timeoutMs = 90000): Promise<void> {
  const logs = path.join(userDataDir, 'logs');
  const ready = (): boolean => {
    for (const session of fs.existsSync(logs) ? fs.readdirSync(logs) : []) {
      const f = path.join(logs, session, 'exthost1', 'remoteexthost.log');
      if (fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes('Eager extensions activated')) return true;
    }
    return false;
  };
  if (!(await until(ready, timeoutMs))) throw new Error(`the extension host did not report "Eager extensions activated" within ${timeoutMs} ms; see ${logs}`);
}

/**
 * What the page shows when a step fails: notifications, dialogs, the focused element and how
 * often the page loaded, so a failure on a CI machine can be understood from its output alone.
 */
export async function describePage(page: Page, loads: number): Promise<string> {
  const texts = async (sel: string): Promise<string[]> => (await page.locator(sel).allInnerTexts().catch(() => [])).map((t) => t.replace(/\s+/g, ' ').trim()).filter(Boolean);
  // A string, evaluated in the page: the tests compile without the DOM library.
  const focused = await page
    .evaluate<string>(`(() => { const e = document.activeElement; return e ? e.tagName.toLowerCase() + '.' + [...e.classList].join('.') + ' "' + (e.getAttribute('aria-label') || '') + '"' : 'none'; })()`)
    .catch((e: unknown) => `unknown (${String(e)})`);
  return [
    `page loads: ${loads}`,
    `focused: ${focused}`,
    `notifications: ${JSON.stringify(await texts('.notifications-toasts .notification-list-item-message'))}`,
    `dialogs: ${JSON.stringify(await texts('.monaco-dialog-box'))}`,
    `debug toolbar: ${await page.locator('.debug-toolbar').count()}`,
    `status bar: ${JSON.stringify((await texts('.part.statusbar .statusbar-item')).slice(0, 12))}`,
  ].join('\n');
}

/** The tail of every log of a code-server profile that mentions an error, for a failure message. */
export function logTails(userDataDir: string, lines = 15): string {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.name.endsWith('.log')) {
        const text = fs.readFileSync(f, 'utf8').trimEnd().split('\n');
        if (/\[error\]|QEMU Kernel|remoteexthost/.test(f + text.join('\n'))) out.push(`--- ${path.relative(userDataDir, f)}\n${text.slice(-lines).join('\n')}`);
      }
    }
  };
  walk(path.join(userDataDir, 'logs'));
  return out.join('\n');
}

/** The workbench is up: its parts are laid out and the explorer lists the folder. */
export async function waitForWorkbench(page: Page, timeoutMs = 90000): Promise<void> {
  await page.locator('.monaco-workbench .part.statusbar').waitFor({ timeout: timeoutMs });
  await page.locator('.monaco-workbench .part.activitybar, .monaco-workbench .part.sidebar').first().waitFor({ timeout: timeoutMs });
}
