/**
 * The kernel-log language server: one diagnostic per report block, every code reference
 * (`func+0x1a/0x200 [mod]`, `RIP: 0010:func+…`, `? func+…`) a link to its source line, a
 * hover with the inlined calls and the line itself, and a Decode report code action that
 * inserts the decoded trace below the block. Symbols come from the client's
 * initializationOptions (`vmlinux`, `modules`) and can be changed with the
 * `qemuKernel/symbols` notification (a debug session starting, the setting changing).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CodeActionKind, DiagnosticSeverity, TextDocuments, type Connection, type Diagnostic, type DocumentLink, type Hover } from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { codeRefs, type CodeRef } from '../kernel/logrefs';
import type { Decoder, Resolution } from '../engine/decode/resolve';
import { CODE_CACHE_WARM, requireCached } from '../util/codecache';
import { reportBlocks } from './blocks';
import { parseCodeLine, type CodeLine } from './codeline';
import type * as Decoding from './decoding';
import { RESOLVE_REQUEST, SYMBOLS_NOTIFICATION, type ResolveParams, type ResolveResult, type SymbolsOptions } from './protocol';

let decoding: typeof Decoding | undefined;

/** The decoder and disassembler (dist/lsp-decode.js), loaded at the first question that needs them. */
function load(): typeof Decoding {
  return (decoding ??= requireCached(path.join(__dirname, 'lsp-decode.js'), 1500) as typeof Decoding);
}

export function serveKernelLog(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  let opened: Decoder | undefined;
  let wanted: SymbolsOptions | undefined;
  let why = 'no vmlinux is known: start a debug session, or set qemuKernel.symbols';

  // vmlinux is opened at the first link or hover, not at initialize: diagnostics need no symbols.
  const useSymbols = (o: SymbolsOptions | undefined): void => {
    opened?.dispose();
    opened = undefined;
    wanted = o?.vmlinux ? o : undefined;
  };
  const decoderNow = (): Decoder | undefined => {
    if (opened || !wanted?.vmlinux) return opened;
    const o = wanted;
    wanted = undefined;
    if (!fs.existsSync(o.vmlinux as string)) why = `qemuKernel.symbols: vmlinux ${o.vmlinux} does not exist`;
    else {
      try {
        // A module named by its file is looked for in its folder, as a folder is.
        opened = load().Decoder.open(o.vmlinux as string, (o.modules ?? []).map((m) => (m.endsWith('.ko') ? path.dirname(m) : m)));
      } catch (e) {
        why = `qemuKernel.symbols: ${o.vmlinux} could not be read: ${(e as Error).message}`;
      }
    }
    return opened;
  };

  connection.onInitialize((p) => {
    useSymbols(p.initializationOptions as SymbolsOptions | undefined);
    return {
      capabilities: {
        textDocumentSync: 1,
        documentLinkProvider: { resolveProvider: false },
        hoverProvider: true,
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
      },
    };
  });
  connection.onNotification(SYMBOLS_NOTIFICATION, (o: SymbolsOptions) => {
    useSymbols(o);
    connection.languages.diagnostics.refresh();
  });

  let warm = false;
  documents.onDidChangeContent((e) => {
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: diagnostics(e.document) }).then(() => {
      // The start the editor waits on has run: its code can go to the code cache (dist/lsp.js).
      if (!warm) (process as NodeJS.EventEmitter).emit(CODE_CACHE_WARM);
      warm = true;
    });
  });

  connection.onDocumentLinks((p) => {
    const doc = documents.get(p.textDocument.uri);
    const decoder = decoderNow();
    if (!doc || !decoder) return [];
    const links: DocumentLink[] = [];
    const lines = doc.getText().split('\n');
    for (let i = 0; i < lines.length; i++) {
      for (const ref of codeRefs(lines[i])) {
        const r = decoder.resolve(ref);
        const at = typeof r === 'string' ? undefined : r.chain[0]?.location;
        if (!at) continue;
        links.push({ range: { start: { line: i, character: ref.start }, end: { line: i, character: ref.end } }, target: `${pathToFileURL(at.path).toString()}#L${at.line}`, tooltip: `${at.path}:${at.line}` });
      }
    }
    return links;
  });

  connection.onHover(async (p): Promise<Hover | null> => {
    const doc = documents.get(p.textDocument.uri);
    if (!doc) return null;
    const line = doc.getText({ start: { line: p.position.line, character: 0 }, end: { line: p.position.line + 1, character: 0 } });
    const code = parseCodeLine(line);
    if (code) return codeHover(doc, p.position.line, code);
    const ref = codeRefs(line).find((x) => p.position.character >= x.start && p.position.character <= (x.moduleEnd ?? x.end));
    if (!ref) return null;
    const decoder = decoderNow();
    if (!decoder) return { contents: { kind: 'markdown', value: `\`${ref.func}+0x${ref.offset.toString(16)}\`: ${why}.` } };
    const r = decoder.resolve(ref);
    return { contents: { kind: 'markdown', value: hoverText(ref, r) }, range: { start: { line: p.position.line, character: ref.start }, end: { line: p.position.line, character: ref.end } } };
  });

  connection.onRequest(RESOLVE_REQUEST, (p: ResolveParams): ResolveResult => {
    const decoder = decoderNow();
    if (!decoder) return { error: why };
    const r = decoder.resolve({ func: p.func, offset: BigInt('0x' + p.offset.replace(/^0x/, '')), module: p.module });
    if (typeof r === 'string') return { error: r };
    const at = r.chain[0]?.location;
    return at ? { path: at.path, line: at.line } : { error: `${p.func}+0x${p.offset.replace(/^0x/, '')} has no line information` };
  });

  connection.onCodeAction((p) => {
    const doc = documents.get(p.textDocument.uri);
    const decoder = decoderNow();
    if (!doc || !decoder) return [];
    const lines = doc.getText().split('\n');
    const block = reportBlocks(lines).find((b) => p.range.start.line <= b.end && p.range.end.line >= b.start);
    if (!block) return [];
    const text = load().decodeLog(lines.slice(block.start, block.end + 1).join('\n'), decoder).lines.join('\n');
    const at = { line: block.end + 1, character: 0 };
    return [
      {
        title: 'Decode report',
        kind: CodeActionKind.QuickFix,
        edit: { changes: { [p.textDocument.uri]: [{ range: { start: at, end: at }, newText: `--- decoded (qemu-kernel-debug) ---\n${text}\n--- end decoded ---\n` }] } },
      },
    ];
  });

  connection.onShutdown(() => opened?.dispose());
  documents.listen(connection);
  connection.listen();
}

function diagnostics(doc: TextDocument): Diagnostic[] {
  return reportBlocks(doc.getText().split('\n')).map((b) => ({
    range: { start: { line: b.start, character: 0 }, end: { line: b.end, character: Number.MAX_SAFE_INTEGER } },
    severity: b.severity === 'error' ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
    source: 'kernel log',
    code: b.kind,
    message: b.title,
  }));
}

function hoverText(ref: CodeRef, r: Resolution | string): string {
  const head = `**${ref.func}**+0x${ref.offset.toString(16)}${ref.module ? ` [${ref.module}]` : ''}${ref.trap ? ' (the faulting instruction)' : ref.unreliable ? ' (found on the stack, maybe stale)' : ''}`;
  if (typeof r === 'string') return `${head}\n\n${r}`;
  const parts = r.chain.map((d, i) => `${i === 0 ? '' : 'inlined into '}${d.name ? `\`${d.name}\` ` : ''}${d.location ? `${d.location.path}:${d.location.line}` : '(no line)'}`);
  const top = r.chain[0]?.location;
  const src = top ? sourceLine(top.path, top.line) : undefined;
  return [head, ...parts.map((p) => `- ${p}`), ...(src !== undefined ? ['', '```c', src, '```'] : [])].join('\n');
}

/** The Code line's disassembly, its instructions named after the report's faulting reference (RIP:, pc :, epc :). */
async function codeHover(doc: TextDocument, line: number, code: CodeLine): Promise<Hover> {
  const lines = doc.getText().split('\n');
  const block = reportBlocks(lines).find((b) => line >= b.start && line <= b.end);
  let trap: CodeRef | undefined;
  for (let i = line; i >= (block?.start ?? Math.max(0, line - 60)) && !trap; i--) trap = codeRefs(lines[i]).find((r) => r.trap);
  let value: string;
  try {
    const { codeMarkdown, disassembleCode } = load();
    value = codeMarkdown(await disassembleCode(code, trap?.offset), trap);
  } catch (e) {
    value = `The disassembler could not run: ${(e as Error).message}`;
  }
  return { contents: { kind: 'markdown', value }, range: { start: { line, character: 0 }, end: { line, character: lines[line]?.length ?? 0 } } };
}

function sourceLine(file: string, line: number): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').split('\n')[line - 1]?.trimEnd();
  } catch {
    return undefined;
  }
}
