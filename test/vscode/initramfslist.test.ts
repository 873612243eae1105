/**
 * Initramfs lists in the real editor: a file named initramfs.list opens in the list language,
 * each problem the launch would refuse is a diagnostic on its line and column, fixing the
 * line clears it, and completion at a line's start offers the six types as snippets.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';

async function until<T>(what: string, ms: number, probe: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('initramfs lists in the editor', function () {
  this.timeout(60_000);
  let dir = '';

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-list-editor-'));
    fs.writeFileSync(path.join(dir, 'init'), '#!/bin/sh\n');
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('puts each problem on its line and column, and clears it when the line is fixed', async () => {
    const file = path.join(dir, 'initramfs.list');
    fs.writeFileSync(file, ['dir /bin 0755 0 0', 'file /init init 0758 0 0', 'file /bin/sh nothere 0755 0 0', 'fiel /x init 0644 0 0', 'dir /etc 0755 0'].join('\n') + '\n');
    const doc = await vscode.workspace.openTextDocument(file);
    await vscode.window.showTextDocument(doc);
    assert.equal(doc.languageId, 'initramfs-list');
    const diags = await until('the list\'s diagnostics', 20_000, () => {
      const d = vscode.languages.getDiagnostics(doc.uri);
      return d.length >= 4 ? d : undefined;
    });
    const seen = diags.map((d) => `${d.range.start.line + 1}:${d.range.start.character + 1}-${d.range.end.character + 1} ${d.severity === vscode.DiagnosticSeverity.Error ? 'error' : 'warning'} ${d.message}`).sort();
    assert.deepEqual(seen, [
      "2:17-21 error mode '0758' is not an octal permission mode (such as 0755, 0644)",
      `3:14-21 error no such file (relative to ${dir})`,
      "4:1-5 error unknown type 'fiel': a line starts with file, dir, nod, slink, pipe, sock (or # for a comment)",
      '5:16-17 error dir needs 4 fields after it, this line has 3: dir <name> <mode> <uid> <gid>',
    ]);
    const edit = new vscode.WorkspaceEdit();
    edit.replace(doc.uri, new vscode.Range(1, 16, 1, 20), '0755');
    assert.ok(await vscode.workspace.applyEdit(edit));
    await until('the fixed line\'s diagnostic to go', 20_000, () => (vscode.languages.getDiagnostics(doc.uri).some((d) => d.range.start.line === 1) ? undefined : true));
    await vscode.commands.executeCommand('workbench.action.files.revert');
  });

  it('completes the six line types at a line\'s start, each a snippet of its fields', async () => {
    const file = path.join(dir, 'second.cpio.list');
    fs.writeFileSync(file, 'dir /bin 0755 0 0\n\n');
    const doc = await vscode.workspace.openTextDocument(file);
    assert.equal(doc.languageId, 'initramfs-list');
    const list = await vscode.commands.executeCommand<vscode.CompletionList>('vscode.executeCompletionItemProvider', doc.uri, new vscode.Position(1, 0));
    const ours = list.items.filter((i) => i.kind === vscode.CompletionItemKind.Keyword);
    assert.deepEqual(ours.map((i) => (typeof i.label === 'string' ? i.label : i.label.label)).sort(), ['dir', 'file', 'nod', 'pipe', 'slink', 'sock']);
    const nod = ours.find((i) => i.label === 'nod');
    assert.equal(nod?.detail, 'nod <name> <mode> <uid> <gid> <dev_type> <maj> <min>');
    assert.equal((nod?.insertText as vscode.SnippetString).value, 'nod ${1:name} ${2:0755} ${3:0} ${4:0} ${5:c} ${6:5} ${7:1}');
  });
});
