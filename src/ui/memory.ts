/**
 * "Open Memory…": VS Code's binary data view on guest memory at an address, a C expression,
 * or a guest-physical address (`phys:0x1000000`, read through QEMU's PhyMemMode). The view
 * reads through the adapter's readMemory/writeMemory, as it does from the Variables pane.
 */
import vscode = require('vscode');

const HEX_EDITOR = 'ms-vscode.hexeditor';

/** The URI VS Code's own "View Binary Data" opens for a memory reference. */
export function debugMemoryUri(sessionId: string, memoryReference: string, label: string): vscode.Uri {
  return vscode.Uri.from({ scheme: 'vscode-debug-memory', authority: sessionId, path: `/${encodeURIComponent(memoryReference)}/${encodeURIComponent(label)}.bin` });
}

/** Turn what the user typed into a memory reference: numbers and phys: pass through, anything else is evaluated. */
export async function memoryReferenceFor(session: vscode.DebugSession, text: string, frameId: number | undefined): Promise<string> {
  const t = text.trim();
  if (/^phys:\s*(0x[0-9a-f]+|\d+)$/i.test(t)) return t.replace(/\s+/g, '');
  if (/^(0x[0-9a-f]+|\d+)$/i.test(t)) return t;
  const r = (await session.customRequest('evaluate', { expression: t, frameId, context: 'watch' })) as { result: string; memoryReference?: string };
  if (!r.memoryReference) throw new Error(`'${t}' (= ${r.result}) is not in memory and is not a pointer; give an address, an lvalue or a pointer.`);
  return r.memoryReference;
}

export function registerMemoryCommands(): vscode.Disposable {
  return vscode.commands.registerCommand('qemuKernel.openMemory', async (preset?: string) => {
    const session = vscode.debug.activeDebugSession;
    if (session?.type !== 'qemu-kernel') {
      void vscode.window.showInformationMessage('Open Memory needs a stopped QEMU kernel debug session.');
      return;
    }
    const text =
      preset ??
      (await vscode.window.showInputBox({
        title: 'Open guest memory',
        prompt: 'A virtual address, a C expression (init_task, args->stack), or phys:ADDRESS for guest-physical memory',
        placeHolder: 'phys:0x1000000',
        validateInput: (v) => (v.trim() ? undefined : 'Enter an address or an expression'),
      }));
    if (!text) return;
    const item = vscode.debug.activeStackItem;
    const frameId = item instanceof vscode.DebugStackFrame && item.session.id === session.id ? item.frameId : undefined;
    let ref: string;
    try {
      ref = await memoryReferenceFor(session, text, frameId);
    } catch (e) {
      void vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
      return;
    }
    const uri = debugMemoryUri(session.id, ref, text.replace(/[^\w:.-]+/g, '_').slice(0, 40));
    if (!vscode.extensions.getExtension(HEX_EDITOR)) {
      const install = 'Install Hex Editor';
      const pick = await vscode.window.showInformationMessage(`Guest memory opens in the Hex Editor extension (${HEX_EDITOR}).`, install);
      if (pick === install) await vscode.commands.executeCommand('workbench.extensions.installExtension', HEX_EDITOR);
      if (!vscode.extensions.getExtension(HEX_EDITOR)) return;
    }
    await vscode.commands.executeCommand('vscode.openWith', uri, 'hexEditor.hexedit');
  });
}
