/**
 * Initramfs lists (the kernel's gen_init_cpio format, the `initramfs` launch field) in the
 * editor: the same reader the launch uses puts each problem on its line and column (a wrong
 * field count, a bad mode, a source file that is not there, a type it does not know), and
 * completion offers the six line types with their fields as a snippet.
 */
import * as path from 'node:path';
import vscode = require('vscode');
import { LIST_FIELDS, LIST_TYPES, parseCpioList } from '../guest/cpiolist';

export const LIST_LANGUAGE = 'initramfs-list';

export class InitramfsLists implements vscode.Disposable {
  private readonly diagnostics = vscode.languages.createDiagnosticCollection(LIST_LANGUAGE);
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor() {
    const check = (d: vscode.TextDocument): void => this.check(d);
    this.subscriptions.push(
      this.diagnostics,
      vscode.workspace.onDidOpenTextDocument(check),
      vscode.workspace.onDidChangeTextDocument((e) => check(e.document)),
      vscode.workspace.onDidCloseTextDocument((d) => this.diagnostics.delete(d.uri)),
      // A file the list names may appear or go while the list stays open.
      vscode.workspace.onDidSaveTextDocument(() => vscode.workspace.textDocuments.forEach(check)),
      vscode.languages.registerCompletionItemProvider(LIST_LANGUAGE, { provideCompletionItems: (d, p) => completions(d, p) }),
    );
    for (const d of vscode.workspace.textDocuments) check(d);
  }

  private check(doc: vscode.TextDocument): void {
    if (doc.languageId !== LIST_LANGUAGE) return;
    const baseDir = doc.uri.scheme === 'file' ? path.dirname(doc.uri.fsPath) : process.cwd();
    const { problems } = parseCpioList(doc.getText(), { baseDir });
    this.diagnostics.set(
      doc.uri,
      problems.map((p) => {
        const range = new vscode.Range(p.line - 1, p.column - 1, p.line - 1, p.endColumn - 1);
        const d = new vscode.Diagnostic(range, p.message, p.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning);
        d.source = 'initramfs list';
        return d;
      }),
    );
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
  }
}

/** The line types, at a line's first word, each a snippet of its fields with the usual defaults. */
function completions(doc: vscode.TextDocument, pos: vscode.Position): vscode.CompletionItem[] {
  const before = doc.lineAt(pos.line).text.slice(0, pos.character);
  if (!/^[ \t]*\w*$/.test(before)) return [];
  const defaults: Record<string, string> = { mode: '0755', uid: '0', gid: '0', dev_type: 'c', maj: '5', min: '1' };
  return LIST_TYPES.map((type) => {
    const item = new vscode.CompletionItem(type, vscode.CompletionItemKind.Keyword);
    const fields = LIST_FIELDS[type];
    item.detail = `${type} ${fields.map((f) => `<${f}>`).join(' ')}${type === 'file' ? ' [<hard link>...]' : ''}`;
    item.insertText = new vscode.SnippetString(`${type} ${fields.map((f, i) => `\${${i + 1}:${defaults[f] ?? f}}`).join(' ')}`);
    return item;
  });
}
