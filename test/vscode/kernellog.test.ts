/**
 * Kernel logs in the real editor: a console log holding a real WARN and Oops from the x86_64
 * sample guest (its module's failures on demand) opens as a kernel log by its content, the
 * language server puts a diagnostic on each report, links the faulting RIP to the marked
 * line of the module's source, hovers with the source line and with `Code:`'s disassembly,
 * and its Decode report action inserts the decoded trace. The Guest Console's links go
 * through Open Code Reference, checked against addr2line.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { GuestPaths } from '../../src/guest/build';
import { terminalLinks } from '../../src/extension/kernellog';
import { RESULTS, sampleGuest } from '../support/env';
import { markerLine } from '../support/handover';
import { oopsLog } from '../support/oopslog';
import { nextEvent } from './util';

const LANGUAGE = 'linux-kernel-log';

function hoverText(hovers: vscode.Hover[]): string {
  return hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
}

async function until<T>(what: string, ms: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('kernel logs in the editor', function () {
  this.timeout(400_000);
  let g: GuestPaths;
  let modDir = '';
  let source = '';
  let logFile = '';
  let uri: vscode.Uri;
  let lines: string[] = [];
  let doc: vscode.TextDocument;

  before(async function () {
    g = sampleGuest(this, 'x86_64');
    assert.ok(g.modules?.sample);
    modDir = path.dirname(g.modules.sample);
    source = path.join(modDir, 'qkd_sample.c');
    // A copy: an edit this test makes (Decode report) must never reach the shared capture.
    logFile = path.join(RESULTS, 'e2e', 'exthost', 'guest.log');
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    fs.copyFileSync(await oopsLog(g), logFile);
    lines = fs.readFileSync(logFile, 'utf8').split('\n');
    uri = vscode.Uri.file(logFile);
    await vscode.workspace.getConfiguration('qemuKernel').update('symbols', { vmlinux: g.vmlinux, modules: [modDir] }, vscode.ConfigurationTarget.Global);
  });

  after(async () => {
    // Unsaved edits are dropped, not saved, whatever a failed test left behind.
    for (const e of vscode.window.visibleTextEditors) {
      if (!e.document.isDirty) continue;
      await vscode.window.showTextDocument(e.document);
      await vscode.commands.executeCommand('workbench.action.files.revert');
    }
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.workspace.getConfiguration('qemuKernel').update('symbols', undefined, vscode.ConfigurationTarget.Global);
  });

  it('opens a .log that reads like the kernel console as a kernel log, with a diagnostic on each report', async () => {
    const diagnostics = nextEvent(vscode.languages.onDidChangeDiagnostics, (e) => (e.uris.some((u) => u.fsPath === logFile) && vscode.languages.getDiagnostics(uri).length > 0 ? vscode.languages.getDiagnostics(uri) : undefined), 60_000, 'diagnostics');
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri));
    doc = await until('the kernel-log language', 20_000, () => vscode.workspace.textDocuments.find((d) => d.uri.fsPath === logFile && d.languageId === LANGUAGE));
    const d = await diagnostics;
    assert.deepEqual(
      d.map((x) => [x.code, x.severity]),
      [
        ['warn', vscode.DiagnosticSeverity.Warning],
        ['oops', vscode.DiagnosticSeverity.Error],
      ],
    );
    assert.match(d[0].message, /^WARNING: CPU: \d+ PID: \d+ at \S+qkd_sample\.c:\d+ qkd_sample_fault_warn\+0x[0-9a-f]+\/0x[0-9a-f]+ \[qkd_sample\]$/);
    assert.equal(d[1].message, 'BUG: kernel NULL pointer dereference, address: 0000000000000000');
    assert.equal(lines[d[1].range.start.line].endsWith(d[1].message), true);
  });

  it('links RIP: qkd_sample_fault_null+… to the marked line of qkd_sample.c, and the link opens there', async () => {
    const rip = lines.findIndex((l) => /RIP: 0010:qkd_sample_fault_null\+/.test(l));
    assert.ok(rip >= 0, 'a RIP line in the log');
    const links = await vscode.commands.executeCommand<vscode.DocumentLink[]>('vscode.executeLinkProvider', uri);
    const link = links.find((k) => k.range.start.line === rip);
    assert.ok(link?.target, `a link on line ${rip + 1}: ${lines[rip]}`);
    const want = markerLine(source, 'fault-null');
    assert.equal(link.target.fsPath, source);
    assert.equal(link.target.fragment, `L${want}`);
    assert.equal(lines[rip].slice(link.range.start.character, link.range.end.character).replace(/\+.*/, ''), 'qkd_sample_fault_null');
    // Every frame of the WARN's and the Oops' call traces that is in vmlinux links too.
    assert.ok(links.length >= 20, `${links.length} links`);
    await vscode.commands.executeCommand('vscode.open', link.target);
    const editor = await until('the source editor', 10_000, () => (vscode.window.activeTextEditor?.document.uri.fsPath === source ? vscode.window.activeTextEditor : undefined));
    assert.equal(editor.selection.active.line + 1, want);
    assert.match(editor.document.lineAt(want - 1).text, /qkd-test: fault-null/);
  });

  it('hovers a frame with its source line, and Code: with its disassembly, the faulting instruction marked', async () => {
    const rip = lines.findIndex((l) => /RIP: 0010:qkd_sample_fault_null\+/.test(l));
    const col = lines[rip].indexOf('qkd_sample_fault_null') + 3;
    const frame = hoverText(await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', uri, new vscode.Position(rip, col)));
    const want = markerLine(source, 'fault-null');
    assert.ok(frame.includes(`${source}:${want}`), frame);
    assert.ok(frame.includes(fs.readFileSync(source, 'utf8').split('\n')[want - 1].trim()), frame);
    const code = lines.findIndex((l, i) => i > rip && /Code: .*<[0-9a-f]{2}>/.test(l));
    assert.ok(code > rip, 'a Code: line after RIP');
    const asm = hoverText(await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', uri, new vscode.Position(code, 10)));
    const off = /qkd_sample_fault_null\+0x([0-9a-f]+)/.exec(lines[rip])?.[1];
    assert.match(asm, new RegExp(`^=> qkd_sample_fault_null\\+0x${off}:\\s+mov\\w* \\(%rax\\), %eax$`, 'm'));
  });

  it('Decode report inserts the decoded trace below the Oops; the file on disk is untouched', async () => {
    const before = fs.readFileSync(logFile, 'utf8');
    const oops = vscode.languages.getDiagnostics(uri).find((x) => x.code === 'oops');
    assert.ok(oops);
    await vscode.window.showTextDocument(doc);
    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', uri, oops.range);
    const decode = actions.find((a) => a.title === 'Decode report');
    assert.ok(decode?.edit, actions.map((a) => a.title).join(', '));
    assert.ok(await vscode.workspace.applyEdit(decode.edit));
    const text = doc.getText();
    const start = text.indexOf('--- decoded (qemu-kernel-debug) ---');
    assert.ok(start > 0);
    assert.equal(doc.positionAt(start).line, oops.range.end.line + 1);
    const decoded = text.slice(start, text.indexOf('--- end decoded ---'));
    // decode_stacktrace.sh's form: the reference becomes `func (file:line)`.
    assert.match(decoded, new RegExp(`RIP: 0010:qkd_sample_fault_null \\(\\S*qkd_sample\\.c:${markerLine(source, 'fault-null')}\\) qkd_sample$`, 'm'));
    await vscode.commands.executeCommand('workbench.action.files.revert');
    assert.equal(doc.getText(), before);
    assert.equal(fs.readFileSync(logFile, 'utf8'), before);
  });

  it("the Guest Console's links: each code reference in a line is one, and opening kernel_clone+0x0 lands on addr2line's line", async () => {
    const warnLine = lines.find((l) => /WARNING: CPU: .* qkd_sample_fault_warn\+/.test(l)) ?? '';
    const links = terminalLinks(warnLine);
    assert.equal(links.length, 1);
    assert.match(links[0].text, /^qkd_sample_fault_warn\+0x[0-9a-f]+\/0x[0-9a-f]+ \[qkd_sample\]$/);
    assert.equal(warnLine.slice(links[0].startIndex, links[0].startIndex + links[0].length), links[0].text);
    const opened = await vscode.commands.executeCommand<{ path: string; line: number } | undefined>('qemuKernel.openCodeReference', 'kernel_clone+0x0/0x3d0');
    assert.ok(opened);
    const addr = /^([0-9a-f]+) T kernel_clone$/m.exec(execFileSync('nm', [g.vmlinux], { encoding: 'utf8', maxBuffer: 1 << 28 }))?.[1];
    assert.ok(addr);
    const [file, line] = execFileSync('addr2line', ['-e', g.vmlinux, addr], { encoding: 'utf8' }).trim().split(':');
    assert.equal(path.resolve(opened.path), path.resolve(file));
    assert.equal(opened.line, Number(line));
    assert.equal(vscode.window.activeTextEditor?.document.uri.fsPath, path.resolve(file));
    assert.equal(vscode.window.activeTextEditor?.selection.active.line, Number(line) - 1);
  });
});
