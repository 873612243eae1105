/**
 * The Modules view in Run and Debug: the guest's loaded kernel modules, each with its
 * address range and where its symbols came from, or why it has none. VS Code has no view of
 * its own for DAP's `modules`, so this one asks the adapter for the list and follows its
 * `module` events, which come while the guest runs (a module loads or unloads).
 */
import vscode = require('vscode');
import type { DebugProtocol } from '@vscode/debugprotocol';

export const MODULES_VIEW = 'qemuKernel.modules';

type Node = { kind: 'module'; m: DebugProtocol.Module } | { kind: 'detail'; label: string; value: string };

export class ModulesView implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subs: vscode.Disposable[] = [];

  constructor() {
    const tree = vscode.window.createTreeView(MODULES_VIEW, { treeDataProvider: this });
    this.subs.push(
      tree,
      vscode.debug.onDidChangeActiveDebugSession(() => this.refresh()),
      vscode.debug.onDidTerminateDebugSession(() => this.refresh()),
      vscode.debug.registerDebugAdapterTrackerFactory('qemu-kernel', {
        createDebugAdapterTracker: () => ({
          onDidSendMessage: (m: { type?: string; event?: string }) => {
            if (m.type === 'event' && (m.event === 'module' || m.event === 'stopped')) this.refresh();
          },
        }),
      }),
      vscode.commands.registerCommand('qemuKernel.modules.refresh', () => this.refresh()),
    );
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (node?.kind === 'module') {
      const m = node.m;
      const k = m as DebugProtocol.Module & { size?: number; refcnt?: number; usedBy?: string[] };
      return [
        { kind: 'detail', label: 'Address range', value: m.addressRange ?? '-' },
        ...(k.size !== undefined ? [{ kind: 'detail' as const, label: 'Size', value: `${k.size} bytes` }] : []),
        ...(k.refcnt !== undefined ? [{ kind: 'detail' as const, label: 'Used by', value: `${k.refcnt}${k.usedBy?.length ? ` (${k.usedBy.join(', ')})` : ''}` }] : []),
        { kind: 'detail', label: 'Symbols', value: m.symbolFilePath ?? m.symbolStatus ?? '' },
      ];
    }
    if (node) return [];
    const s = vscode.debug.activeDebugSession;
    if (s?.type !== 'qemu-kernel') return [];
    try {
      const body = (await s.customRequest('modules', {})) as DebugProtocol.ModulesResponse['body'];
      return body.modules.map((m) => ({ kind: 'module', m }));
    } catch {
      // The session is starting or ending: nothing to list yet.
      return [];
    }
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'detail') {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
      item.description = node.value;
      item.tooltip = node.value;
      return item;
    }
    const m = node.m;
    const item = new vscode.TreeItem(String(m.name), vscode.TreeItemCollapsibleState.Collapsed);
    const loaded = m.symbolFilePath !== undefined;
    item.description = loaded ? m.addressRange : m.symbolStatus;
    item.tooltip = new vscode.MarkdownString(`**${m.name}** ${m.addressRange ?? ''}\n\n${loaded ? `Symbols: \`${m.symbolFilePath}\`` : (m.symbolStatus ?? '')}`);
    item.iconPath = new vscode.ThemeIcon(loaded ? 'symbol-module' : 'warning');
    item.contextValue = 'module';
    return item;
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}
