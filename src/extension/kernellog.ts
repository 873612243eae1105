/**
 * Kernel logs in the editor and the terminal. A `.log`, `.txt` or dmesg file that reads like
 * the kernel's console opens as `linux-kernel-log`; the first such document starts the
 * kernel-log language server (dist/lsp.js, through dist/lspclient.js, loaded only then, so
 * activation stays small). The server decodes with, in order: the running debug session's
 * vmlinux and module folders, the `qemuKernel.symbols` setting, the last session's, or a
 * kernel build tree open in the workspace. Code references in any terminal (the Guest
 * Console above all) are links, resolved by the same server.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import vscode = require('vscode');
import type { SymbolsEventBody } from '../adapter/events';
import { codeRefs, looksLikeKernelLog, type CodeRef } from '../kernel/logrefs';
import type { ResolveParams, SymbolsOptions } from '../lsp/protocol';
import type { KernelLogClient } from './lspclient';

export const KERNEL_LOG_LANGUAGE = 'linux-kernel-log';
const OPEN_REFERENCE = 'qemuKernel.openCodeReference';

interface RefLink extends vscode.TerminalLink {
  text: string;
}

export class KernelLogs implements vscode.Disposable {
  private client?: Promise<KernelLogClient | undefined>;
  private output?: vscode.OutputChannel;
  /** Running sessions' symbols, by session id, in the order they started. */
  private readonly sessions = new Map<string, SymbolsOptions>();
  private lastSession?: SymbolsOptions;
  /** Documents switched to the kernel-log language once: a user who switches one back is not overruled. */
  private readonly switched = new Set<string>();
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly dist: string) {
    this.subs.push(
      vscode.workspace.onDidOpenTextDocument((d) => this.opened(d)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('qemuKernel.symbols')) this.symbolsChanged();
      }),
      vscode.window.registerTerminalLinkProvider(this.linkProvider()),
      vscode.commands.registerCommand(OPEN_REFERENCE, (text?: string) => this.openReference(text)),
    );
    for (const d of vscode.workspace.textDocuments) this.opened(d);
  }

  sessionSymbols(session: vscode.DebugSession, body: SymbolsEventBody): void {
    const o = { vmlinux: body.vmlinux, modules: body.moduleDirs };
    this.sessions.delete(session.id);
    this.sessions.set(session.id, o);
    this.lastSession = o;
    this.symbolsChanged();
  }

  sessionEnded(session: vscode.DebugSession): void {
    if (this.sessions.delete(session.id)) this.symbolsChanged();
  }

  /**
   * Open the source line of a code reference (`kernel_clone+0x1a/0x200`, `func+0x12/0x1c
   * [mod]`); without one, ask for it. Resolves with the file and 1-based line opened, or
   * undefined (and a message saying why).
   */
  async openReference(text?: string): Promise<{ path: string; line: number } | undefined> {
    text ??= await vscode.window.showInputBox({ title: 'Open Code Reference', prompt: 'A code reference as the kernel prints it', placeHolder: 'kernel_clone+0x1a/0x200, or func+0x12/0x1c [module]' });
    if (!text) return undefined;
    const ref = codeRefs(` ${text.trim()}`)[0];
    if (!ref) {
      void vscode.window.showWarningMessage(`"${text}" is not a code reference: write it as the kernel prints one, function+0xoffset/0xsize, with [module] after it for a module.`);
      return undefined;
    }
    const client = await this.ensureClient();
    if (!client) return undefined;
    const p: ResolveParams = { func: ref.func, offset: ref.offset.toString(16), module: ref.module };
    const r = await client.resolve(p);
    const name = `${ref.func}+0x${p.offset}${ref.module ? ` [${ref.module}]` : ''}`;
    if ('error' in r) {
      void vscode.window.showWarningMessage(`${name}: ${r.error}.`);
      return undefined;
    }
    if (!fs.existsSync(r.path)) {
      void vscode.window.showWarningMessage(`${name} is at ${r.path}:${r.line}, which is not on this machine (the kernel was built elsewhere). Open the tree it was built from at that path.`);
      return undefined;
    }
    const line = Math.max(0, r.line - 1);
    await vscode.window.showTextDocument(vscode.Uri.file(r.path), { selection: new vscode.Range(line, 0, line, 0) });
    return r;
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    void this.client?.then((c) => c?.dispose());
    this.output?.dispose();
  }

  private linkProvider(): vscode.TerminalLinkProvider {
    const provider: vscode.TerminalLinkProvider<RefLink> = {
      provideTerminalLinks: (ctx) => terminalLinks(ctx.line),
      handleTerminalLink: (link) => void this.openReference(link.text),
    };
    // The API's registration takes the base link type; the links it hands back are ours.
    return provider as unknown as vscode.TerminalLinkProvider;
  }

  private opened(doc: vscode.TextDocument): void {
    if (doc.languageId === KERNEL_LOG_LANGUAGE) {
      void this.ensureClient();
      return;
    }
    if (doc.uri.scheme !== 'file' || (doc.languageId !== 'log' && doc.languageId !== 'plaintext')) return;
    const key = doc.uri.toString();
    if (this.switched.has(key)) return;
    if (!looksLikeKernelLog(doc.getText(new vscode.Range(0, 0, 200, 0)))) return;
    this.switched.add(key);
    void vscode.languages.setTextDocumentLanguage(doc, KERNEL_LOG_LANGUAGE);
  }

  private ensureClient(): Promise<KernelLogClient | undefined> {
    this.client ??= (async () => {
      const mod = require(path.join(this.dist, 'lspclient.js')) as typeof import('./lspclient');
      this.output ??= vscode.window.createOutputChannel('Kernel Log Language Server');
      return mod.startKernelLogClient(path.join(this.dist, 'lsp.js'), this.symbols(), this.output);
    })().catch((e: unknown) => {
      void vscode.window.showErrorMessage(`The kernel-log language server did not start: ${e instanceof Error ? e.message : String(e)}`);
      this.client = undefined;
      return undefined;
    });
    return this.client;
  }

  private symbolsChanged(): void {
    void this.client?.then((c) => c?.setSymbols(this.symbols()));
  }

  private symbols(): SymbolsOptions | undefined {
    return [...this.sessions.values()].pop() ?? settingSymbols() ?? this.lastSession ?? workspaceTree();
  }
}

/** Links for a terminal line: each code reference, with its `[module]`. */
export function terminalLinks(line: string): RefLink[] {
  return codeRefs(line).map((r: CodeRef) => {
    const end = r.moduleEnd ?? r.end;
    return { startIndex: r.start, length: end - r.start, tooltip: 'Open the source line', text: line.slice(r.start, end) };
  });
}

/** The setting, its paths expanded: `${workspaceFolder}`, `${userHome}`, `~`, and relative to the first folder. */
function settingSymbols(): SymbolsOptions | undefined {
  const s = vscode.workspace.getConfiguration('qemuKernel').get<{ vmlinux?: unknown; modules?: unknown }>('symbols');
  if (!s || typeof s.vmlinux !== 'string' || s.vmlinux.trim() === '') return undefined;
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const expand = (p: string): string => {
    const e = p
      .replace(/\$\{workspaceFolder\}/g, folder ?? '')
      .replace(/\$\{userHome\}/g, os.homedir())
      .replace(/^~(?=\/|$)/, os.homedir());
    return path.isAbsolute(e) || !folder ? e : path.join(folder, e);
  };
  const modules = Array.isArray(s.modules) ? s.modules.filter((m): m is string => typeof m === 'string').map(expand) : [];
  return { vmlinux: expand(s.vmlinux), modules };
}

/** A kernel build tree opened as a workspace folder: its vmlinux, and the tree for modules. */
function workspaceTree(): SymbolsOptions | undefined {
  for (const f of vscode.workspace.workspaceFolders ?? []) {
    const vmlinux = path.join(f.uri.fsPath, 'vmlinux');
    if (fs.existsSync(vmlinux)) return { vmlinux, modules: [f.uri.fsPath] };
  }
  return undefined;
}
