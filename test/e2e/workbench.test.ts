/**
 * The user's path in the real workbench: code-server serves VS Code to headless Chromium, the
 * extension is installed from this repo, examples/sample-guest is opened, a function breakpoint
 * is added in the Breakpoints view and F5 boots the sample guest under a real QEMU. Each step
 * leaves a screenshot in test-results/e2e/. The tests run in order and share one session.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { requireBuilt, requireOrSkip, sampleGuest, waitForExit } from '../support/env';
import { markerLine } from '../support/handover';
import { oopsLog } from '../support/oopslog';
import {
  E2E_RESULTS,
  SAMPLE_WORKSPACE,
  VIEWPORT,
  chromiumMissing,
  closeChromium,
  codeServerInstall,
  describePage,
  freshProfile,
  launchChromium,
  linkExtension,
  logTails,
  qemuBelow,
  runCommand,
  startCodeServer,
  waitForExtensionHost,
  waitForWorkbench,
  workbenchUrl,
  type CodeServer,
} from './workbench';

/** TCG boot to kernel_clone takes seconds once the guest is cached; the margin is for a loaded machine. */
const STOP_TIMEOUT = 240000;
const UI_TIMEOUT = 30000;

describe('e2e: workbench', function () {
  this.timeout(STOP_TIMEOUT + 60000);
  let server: CodeServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let shots = 0;
  let qemuPids: number[] = [];
  let registersViewRip: string | undefined;
  let userDataDir = '';
  let loads = 0;

  async function shot(name: string): Promise<void> {
    await parkMouse();
    await page.screenshot({ path: path.join(E2E_RESULTS, `${String(++shots).padStart(2, '0')}-${name}.png`) });
  }

  const pane = (title: string): Locator => page.locator('.pane', { has: page.locator(`.pane-header[aria-label="${title} Section"]`) });
  const callStackRow = (fn: string): Locator => page.locator('.debug-call-stack .monaco-list-row[aria-label^="Stack Frame "]', { hasText: fn });

  /**
   * Trees render only the rows in view, and a pane shares the sidebar's height with the others.
   * To show rows further down (rip is the 17th register) the other Run and Debug panes are
   * collapsed, as a user would; `restorePanes` opens them again.
   */
  async function onlyPane(title: string): Promise<Locator> {
    const headers = page.locator('.part.sidebar .pane-header');
    for (const label of await headers.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''))) {
      if (label === `${title} Section`) continue;
      const header = page.locator(`.part.sidebar .pane-header[aria-label="${label}"]`);
      if ((await header.getAttribute('aria-expanded')) === 'true') {
        await header.click();
        await page.locator(`.part.sidebar .pane-header[aria-label="${label}"][aria-expanded="false"]`).waitFor();
      }
    }
    const p = await expandPane(title);
    await parkMouse();
    return p;
  }

  async function restorePanes(): Promise<void> {
    for (const label of await page.locator('.part.sidebar .pane-header[aria-expanded="false"]').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''))) {
      await page.locator(`.part.sidebar .pane-header[aria-label="${label}"]`).click();
      await page.locator(`.part.sidebar .pane-header[aria-label="${label}"][aria-expanded="true"]`).waitFor();
    }
    await parkMouse();
  }

  /** Rows move under a mouse left where it clicked, and their hovers would cover the screenshots. */
  async function parkMouse(): Promise<void> {
    // An empty stretch of the title bar: no hover, no debug hover over source text.
    await page.mouse.move(VIEWPORT.width - 300, 12);
  }

  async function expandPane(title: string): Promise<Locator> {
    const header = page.locator(`.pane-header[aria-label="${title} Section"]`);
    await header.waitFor({ timeout: UI_TIMEOUT });
    if ((await header.getAttribute('aria-expanded')) === 'false') await header.click();
    await page.locator(`.pane-header[aria-label="${title} Section"][aria-expanded="true"]`).waitFor({ timeout: UI_TIMEOUT });
    return pane(title);
  }

  before(async function () {
    this.timeout(180000);
    requireBuilt(this);
    sampleGuest(this);
    const install = codeServerInstall();
    requireOrSkip(this, typeof install !== 'string', String(install));
    const noChromium = chromiumMissing();
    requireOrSkip(this, noChromium === undefined, String(noChromium));
    if (typeof install === 'string') return;

    fs.mkdirSync(E2E_RESULTS, { recursive: true });
    for (const f of fs.readdirSync(E2E_RESULTS)) if (f.endsWith('.png')) fs.rmSync(path.join(E2E_RESULTS, f));
    const profile = freshProfile(path.join(E2E_RESULTS, 'workbench', 'profile'));
    linkExtension(profile.extensionsDir);
    server = await startCodeServer(install, { profile, logFile: path.join(E2E_RESULTS, 'workbench', 'code-server.log') });
    browser = await launchChromium();
    userDataDir = profile.userDataDir;
    page = await browser.newPage({ viewport: VIEWPORT });
    page.setDefaultTimeout(UI_TIMEOUT);
    page.on('load', () => loads++);
    await page.goto(workbenchUrl(server.url, SAMPLE_WORKSPACE));
    await waitForWorkbench(page);
    await waitForExtensionHost(userDataDir);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && browser) {
      await page.screenshot({ path: path.join(E2E_RESULTS, `failed-${String(shots + 1).padStart(2, '0')}.png`) }).catch(() => undefined);
      // The screenshot stays on the machine; CI keeps only the output, so describe the page there.
      console.error(`[e2e] at the failure:\n${await describePage(page, loads)}\n${logTails(userDataDir)}`);
    }
  });

  after(async () => {
    await closeChromium(browser);
    await server?.stop();
  });

  it('opens examples/sample-guest with the extension installed and its launch configuration listed', async () => {
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: '.vscode' }).waitFor();
    await runCommand(page, 'View: Show Run and Debug');
    // The Run and Debug view's configuration picker reads launch.json.
    await page.locator('.part.sidebar [aria-label="Debug Launch Configurations: Debug sample guest"]').waitFor();
    await shot('workbench');
  });

  it('F5 with no setup boots the sample guest and the Call Stack stops at kernel_clone', async () => {
    await page.keyboard.press('F5');
    await page.locator('.debug-toolbar').waitFor({ timeout: 60000 });
    await callStackRow('kernel_clone').first().waitFor({ timeout: STOP_TIMEOUT });
    const top = await page.locator('.debug-call-stack .monaco-list-row[aria-label^="Stack Frame "]').first().getAttribute('aria-label');
    assert.match(String(top), /^Stack Frame kernel_clone\b/, `top frame: ${top}`);
    await page.locator('.pane-header[aria-label="Call Stack Section"]', { hasText: /Paused on (function )?breakpoint/i }).waitFor();
    qemuPids = qemuBelow((server as CodeServer).pid);
    assert.ok(qemuPids.length > 0, 'no qemu-system process below code-server while stopped');
    // The screenshot is of the whole stop, scopes included, not of a half-drawn Variables pane.
    await page.locator('.debug-variables .monaco-list-row[aria-label="Scope Arguments"]').waitFor();
    await shot('stopped-at-kernel_clone');
  });

  it("put launch.json's breakAt kernel_clone in the Breakpoints view, where the user can remove it", async () => {
    const breakpoints = await expandPane('Breakpoints');
    await breakpoints.locator('.monaco-list-row', { hasText: 'kernel_clone' }).waitFor();
    await shot('function-breakpoint');
  });

  it("shows kernel_clone's parameter args in the Variables pane", async () => {
    const variables = await expandPane('Variables');
    const args = variables.locator('.monaco-list-row[aria-level="2"][aria-label^="args, value "]');
    await args.waitFor();
    assert.match(String(await args.getAttribute('aria-label')), /^args, value 0x[0-9a-f]+/, 'args has no pointer value');
    await shot('variables-args');
  });

  it('shows rip in the Registers view (qemuKernel.registers), with its value as the description', async () => {
    const view = await onlyPane('Registers').catch(() => undefined);
    assert.ok(view, 'no "Registers" view (qemuKernel.registers) in the Run and Debug view');
    // Registers sit in groups (General, Segment, …): open the first if it is closed.
    const group = view.locator('.monaco-list-row[aria-level="1"]').first();
    await group.waitFor();
    if ((await group.getAttribute('aria-expanded')) === 'false') await group.click();
    const rip = view.locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: /^rip$/ }) });
    await rip.waitFor();
    registersViewRip = await rip.locator('.label-description').innerText();
    assert.match(registersViewRip, /^0x[0-9a-f]+$/, `rip's description: ${registersViewRip}`);
    await shot('registers-view');
    await restorePanes();
  });

  it('opens CR0 in the Registers view into named bits: PG (paging) is set in a running kernel', async () => {
    const view = await onlyPane('Registers');
    const row = (label: RegExp, level: number): Locator => view.locator(`.monaco-list-row[aria-level="${level}"]`, { has: page.locator('.label-name', { hasText: label }) });
    const general = row(/^General$/, 1);
    if ((await general.getAttribute('aria-expanded')) === 'true') await general.click();
    const control = row(/^Control$/, 1);
    await control.waitFor();
    if ((await control.getAttribute('aria-expanded')) === 'false') await control.click();
    const cr0 = row(/^cr0$/, 2);
    await cr0.waitFor();
    // The collapsed row already lists the set bits after the value.
    assert.match(await cr0.locator('.label-description').innerText(), /^0x[0-9a-f]+ +\[ .*\bPG\b.* \]$/);
    if ((await cr0.getAttribute('aria-expanded')) === 'false') await cr0.click();
    const pg = row(/^PG$/, 3);
    await pg.waitFor();
    assert.match(await pg.locator('.label-description').innerText(), /^1 +\(bit 31\)$/);
    await shot('registers-cr0-decoded');
    await restorePanes();
  });

  it("shows rip in the Variables pane's Registers scope, with the Registers view's value", async () => {
    const variables = await onlyPane('Variables');
    const scope = variables.locator('.monaco-list-row[aria-label="Scope Registers"]');
    if ((await scope.getAttribute('aria-expanded')) === 'false') await scope.click();
    const rip = variables.locator('.monaco-list-row[aria-level="2"][aria-label^="rip, value "]');
    await rip.waitFor();
    const value = /^rip, value (0x[0-9a-f]+)/.exec(String(await rip.getAttribute('aria-label')))?.[1];
    assert.ok(value, `rip's row: ${await rip.getAttribute('aria-label')}`);
    if (registersViewRip) assert.equal(BigInt(value), BigInt(registersViewRip), 'the Registers view and the Variables pane disagree on rip');
    await shot('variables-registers');
    await restorePanes();
  });

  it('lists the kernel\'s tasks in the Kernel Tasks view: at the first clone, swapper/0 running on CPU 0', async () => {
    const view = await onlyPane('Kernel Tasks').catch(() => undefined);
    assert.ok(view, 'no "Kernel Tasks" view (qemuKernel.tasks) in the Run and Debug view');
    const row = view.locator('.monaco-list-row', { has: page.locator('.label-name', { hasText: /^0\s+\[swapper\/0\]$/ }) });
    await row.waitFor();
    assert.equal(await row.locator('.label-description').innerText(), 'running on CPU 0');
    await shot('kernel-tasks');
    // Picking the running task focuses its CPU's stack, which is where the session stopped.
    await row.click();
    await restorePanes();
    await callStackRow('kernel_clone').first().waitFor();
  });

  it('shows the boot log in the "Guest Console: Debug sample guest" terminal', async () => {
    await runCommand(page, 'QEMU Kernel: Show Guest Console');
    const panel = page.locator('.part.panel');
    await panel.locator('.action-label, .single-terminal-tab, .terminal-tabs-entry', { hasText: 'Guest Console: Debug sample guest' }).first().waitFor();
    const rows = panel.locator('.terminal-wrapper.active .xterm-rows');
    await rows.waitFor();
    // The guest is paused, so the log is complete; its first lines are above the viewport.
    await runCommand(page, 'Terminal: Scroll to Top');
    await rows.filter({ hasText: /Linux version 6\.1/ }).waitFor();
    await shot('guest-console');
  });

  it('Stop ends the session and leaves no QEMU behind', async () => {
    assert.ok(qemuPids.length > 0, 'no QEMU was seen while stopped');
    await page.locator('.debug-toolbar .action-label[aria-label^="Stop"]').click();
    await page.locator('.debug-toolbar').waitFor({ state: 'hidden', timeout: 60000 });
    for (const pid of qemuPids) assert.equal(await waitForExit(pid, 15000), true, `QEMU pid ${pid} outlived the session`);
    assert.deepEqual(qemuBelow((server as CodeServer).pid), [], 'a qemu-system process is still running below code-server');
    await callStackRow('kernel_clone').first().waitFor({ state: 'detached' });
    await shot('session-ended');
  });

  it("opens a console log with a real Oops as a kernel log, decoded with the ended session's kernel: the report in Problems, a hover on RIP's function, and Ctrl+click opens the faulting line", async function () {
    const g = sampleGuest(this);
    const log = path.join(E2E_RESULTS, 'workbench', 'guest.log');
    fs.copyFileSync(await oopsLog(g), log);
    const source = path.join(path.dirname(String(g.modules?.sample)), 'qkd_sample.c');
    const lines = fs.readFileSync(log, 'utf8').split('\n');
    const rip = lines.findIndex((l) => /RIP: 0010:qkd_sample_fault_null\+/.test(l));
    assert.ok(rip >= 0, 'a RIP line in the log');
    // Quick Open takes a path outside the workspace, as a user opening a saved log would: the
    // palette's box without its '>' is Quick Open.
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input[type="text"]').first();
    await input.waitFor({ state: 'visible' });
    await input.fill(log);
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'guest.log' }).first().waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.tabs-container .tab.active', { hasText: 'guest.log' }).waitFor();
    await page.locator('.statusbar-item', { hasText: 'Linux Kernel Console Log' }).first().waitFor();
    await runCommand(page, 'View: Focus Problems (Errors, Warnings, Infos)');
    await page.locator('.markers-panel .monaco-list-row', { hasText: 'BUG: kernel NULL pointer dereference, address: 0000000000000000' }).first().waitFor();
    await page.locator('.markers-panel .monaco-list-row', { hasText: /WARNING: CPU: \d+ PID: \d+ at / }).first().waitFor();
    await shot('kernel-log-problems');

    // Go to Line's box is the palette's own, turned to ':': it stays open until the line is given.
    await page.keyboard.press('F1');
    await input.fill(`:${rip + 1}`);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: `Go to line ${rip + 1}` }).first().waitFor();
    await page.keyboard.press('Enter');
    await input.waitFor({ state: 'hidden' });
    const line = page.locator('.monaco-editor .view-line', { hasText: 'RIP: 0010:qkd_sample_fault_null' }).first();
    await line.waitFor();
    // Point at the function's name: the token spans' widths give the characters' positions.
    const span = line.locator('span > span', { hasText: 'qkd_sample_fault_null' }).first();
    const box = await span.boundingBox();
    const text = await span.innerText();
    assert.ok(box && text.length > 0);
    const x = box.x + ((text.indexOf('qkd_sample_fault_null') + 4) * box.width) / text.length;
    const y = box.y + box.height / 2;
    await page.mouse.move(x, y);
    const want = markerLine(source, 'fault-null');
    const hover = page.locator('.monaco-hover:not(.hidden)', { hasText: `qkd_sample.c:${want}` }).first();
    await hover.waitFor();
    await page.screenshot({ path: path.join(E2E_RESULTS, `${String(++shots).padStart(2, '0')}-kernel-log-hover.png`) });

    await page.keyboard.down('Control');
    await page.mouse.click(x, y);
    await page.keyboard.up('Control');
    await page.locator('.tabs-container .tab.active', { hasText: 'qkd_sample.c' }).waitFor();
    await page.locator('.statusbar-item', { hasText: new RegExp(`^Ln ${want}, Col \\d+`) }).first().waitFor();
    await shot('kernel-log-link-opened');
  });
});
