#!/usr/bin/env node
/**
 * A stand-in "VS Code executable" for @vscode/test-electron's runTests: it takes the arguments
 * test-electron gives Code (--extensionDevelopmentPath=…, --extensionTestsPath=…,
 * --user-data-dir=…, --extensions-dir=…, a folder), serves the real workbench from code-server
 * to headless Chromium with those as the page's payload, and exits with the tests' result.
 *
 * The web workbench runs extension tests only with code-server's smoke-test driver enabled; it
 * reports the end by calling window.codeAutomationExit(code) (as microsoft/vscode-test-web
 * relies on), which this script provides through playwright's exposeFunction.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import type { Browser } from 'playwright-core';
import {
  E2E_RESULTS,
  VIEWPORT,
  closeChromium,
  codeServerInstall,
  launchChromium,
  prepareProfile,
  startCodeServer,
  waitForWorkbench,
  workbenchUrl,
  type CodeServer,
} from './workbench';

interface Args {
  folder?: string;
  devPaths: string[];
  testsPath?: string;
  userDataDir?: string;
  extensionsDir?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { devPaths: [] };
  for (const arg of argv) {
    const m = /^--([^=]+)=(.*)$/.exec(arg);
    if (!m) {
      if (!arg.startsWith('--')) a.folder = path.resolve(arg);
      continue;
    }
    const [, key, value] = m;
    if (key === 'extensionDevelopmentPath') a.devPaths.push(path.resolve(value));
    else if (key === 'extensionTestsPath') a.testsPath = path.resolve(value);
    else if (key === 'user-data-dir') a.userDataDir = path.resolve(value);
    else if (key === 'extensions-dir') a.extensionsDir = path.resolve(value);
  }
  return a;
}

const say = (m: string): void => void process.stdout.write(`[launcher] ${m}\n`);

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (!args.testsPath || args.devPaths.length === 0) throw new Error('expected --extensionTestsPath=… and --extensionDevelopmentPath=…');
  const install = codeServerInstall();
  if (typeof install === 'string') throw new Error(install);
  const timeoutMs = Number(process.env.QKD_LAUNCHER_TIMEOUT_MS ?? 600000);
  const root = path.join(E2E_RESULTS, 'exthost');
  fs.mkdirSync(root, { recursive: true });
  const profile = prepareProfile({
    userDataDir: args.userDataDir ?? path.join(root, 'profile', 'user-data'),
    extensionsDir: args.extensionsDir ?? path.join(root, 'profile', 'extensions'),
  });

  let server: CodeServer | undefined;
  let browser: Browser | undefined;
  const cleanup = async (): Promise<void> => {
    await closeChromium(browser);
    browser = undefined;
    await server?.stop();
    server = undefined;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => void cleanup().then(() => process.exit(1)));
  }

  try {
    server = await startCodeServer(install, {
      profile,
      logFile: path.join(root, 'code-server.log'),
      args: ['--vscode-option', 'enable-smoke-test-driver'],
    });
    say(`code-server ${server.url} (pid ${server.pid})`);
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: VIEWPORT });
    let onExit!: (code: number) => void;
    const exited = new Promise<number>((resolve) => (onExit = resolve));
    await page.exposeFunction('codeAutomationExit', (code: number) => onExit(code));
    // Everything the workbench logs (the extension host's console included) goes to a file;
    // test/vscode/index.ts hands the outer run its own formatted report.
    const workbenchLog = fs.openSync(path.join(root, 'workbench.log'), 'w');
    await page.exposeFunction('codeAutomationLog', (type: string, parts: unknown[]) => {
      fs.writeSync(workbenchLog, `${type}: ${util.format(...parts)}\n`);
    });
    // The workbench reads the payload's paths as URIs of the remote (code-server) side.
    const host = new URL(server.url).host;
    const remote = (p: string): string => `vscode-remote://${host}${p}`;
    const payload: Array<[string, string]> = [
      ...args.devPaths.map((p): [string, string] => ['extensionDevelopmentPath', remote(p)]),
      ['extensionTestsPath', remote(args.testsPath)],
    ];
    await page.goto(workbenchUrl(server.url, args.folder ?? path.dirname(args.testsPath), payload));
    await waitForWorkbench(page);
    say('workbench up; extension tests running');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<number>((resolve) => (timer = setTimeout(() => resolve(-1), timeoutMs)))]);
    clearTimeout(timer);
    await page.screenshot({ path: path.join(root, 'final.png') }).catch(() => undefined);
    if (code === -1) say(`the extension tests did not finish within ${timeoutMs} ms`);
    if (code !== 0) say(`the workbench's log: ${path.join(root, 'workbench.log')}`);
    return code === 0 ? 0 : 1;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`[launcher] ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  },
);
