/**
 * The Registers view in Run and Debug: the selected frame's registers in groups, flags and
 * control registers opened up into named bits. It follows `debug.activeStackItem`, refreshes
 * at each stop, and edits go to the adapter (which writes them with `P`).
 */
import vscode = require('vscode');
import type { RegisterFieldView, RegistersBody, RegisterView } from '../adapter/registers';

type Node =
  | { kind: 'group'; name: string; registers: RegisterView[] }
  | { kind: 'register'; reg: RegisterView }
  | { kind: 'field'; reg: RegisterView; field: RegisterFieldView };

export const REGISTERS_VIEW = 'qemuKernel.registers';
const FORMAT_KEY = 'qemuKernel.registers.format';

export class RegistersView implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subs: vscode.Disposable[] = [];
  private readonly tree: vscode.TreeView<Node>;
  private running = new Set<string>();
  private format: 'hex' | 'decimal';

  constructor(private readonly state: vscode.Memento) {
    this.format = state.get<'hex' | 'decimal'>(FORMAT_KEY) ?? 'hex';
    this.tree = vscode.window.createTreeView(REGISTERS_VIEW, { treeDataProvider: this, showCollapseAll: true });
    void vscode.commands.executeCommand('setContext', 'qemuKernel.registers.decimal', this.format === 'decimal');
    this.subs.push(
      this.tree,
      vscode.debug.onDidChangeActiveStackItem(() => this.refresh()),
      vscode.debug.onDidChangeActiveDebugSession(() => this.refresh()),
      vscode.debug.onDidTerminateDebugSession((s) => {
        this.running.delete(s.id);
        this.refresh();
      }),
      vscode.debug.registerDebugAdapterTrackerFactory('qemu-kernel', {
        createDebugAdapterTracker: (session) => ({
          onDidSendMessage: (m: { type?: string; event?: string }) => {
            if (m.type !== 'event') return;
            if (m.event === 'continued') this.running.add(session.id);
            else if (m.event === 'stopped' || m.event === 'invalidated') {
              this.running.delete(session.id);
              this.refresh();
            } else return;
            if (m.event === 'continued') this.refresh();
          },
        }),
      }),
      vscode.commands.registerCommand('qemuKernel.registers.showDecimal', () => this.setFormat('decimal')),
      vscode.commands.registerCommand('qemuKernel.registers.showHex', () => this.setFormat('hex')),
      vscode.commands.registerCommand('qemuKernel.registers.refresh', () => this.refresh()),
      vscode.commands.registerCommand('qemuKernel.registers.setValue', (n?: Node) => this.edit(n)),
      vscode.commands.registerCommand('qemuKernel.registers.toggleBit', (n?: Node) => this.toggle(n)),
      vscode.commands.registerCommand('qemuKernel.registers.copyValue', (n?: Node) => this.copy(n)),
    );
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  private async setFormat(format: 'hex' | 'decimal'): Promise<void> {
    this.format = format;
    await this.state.update(FORMAT_KEY, format);
    await vscode.commands.executeCommand('setContext', 'qemuKernel.registers.decimal', format === 'decimal');
    this.refresh();
  }

  /** The session and frame the view shows: the selected stack item of a qemu-kernel session. */
  private where(): { session: vscode.DebugSession; args: { frameId?: number; threadId?: number } } | undefined {
    const item = vscode.debug.activeStackItem;
    if (item && item.session.type === 'qemu-kernel') {
      return { session: item.session, args: item instanceof vscode.DebugStackFrame ? { frameId: item.frameId, threadId: item.threadId } : { threadId: item.threadId } };
    }
    const s = vscode.debug.activeDebugSession;
    return s?.type === 'qemu-kernel' ? { session: s, args: {} } : undefined;
  }

  async getChildren(node?: Node): Promise<Node[]> {
    if (node?.kind === 'group') return node.registers.map((reg) => ({ kind: 'register', reg }));
    if (node?.kind === 'register') return (node.reg.fields ?? []).map((field) => ({ kind: 'field', reg: node.reg, field }));
    if (node) return [];
    const at = this.where();
    if (!at) {
      this.tree.message = 'Registers appear here while a QEMU kernel debug session is stopped.';
      return [];
    }
    if (this.running.has(at.session.id)) {
      this.tree.message = 'The guest is running. Pause it, or wait for a breakpoint, to read registers.';
      return [];
    }
    try {
      const body = (await at.session.customRequest('qemuKernel.registers', { ...at.args, format: this.format })) as RegistersBody;
      this.tree.message = at.args.frameId !== undefined && body.groups.some((g) => g.registers.some((r) => r.note)) ? 'Caller frame: registers recovered by unwinding.' : undefined;
      return body.groups.map((g) => ({ kind: 'group', name: g.name, registers: g.registers }));
    } catch (e) {
      this.tree.message = e instanceof Error ? e.message : String(e);
      return [];
    }
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'group') {
      const item = new vscode.TreeItem(node.name, node.name === 'General' ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `group:${node.name}`;
      item.contextValue = 'registerGroup';
      return item;
    }
    if (node.kind === 'register') {
      const r = node.reg;
      const item = new vscode.TreeItem(r.name, r.fields?.length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
      item.id = `reg:${r.name}`;
      item.description = r.value;
      const set = r.fields?.filter((f) => f.toggleable && f.value === '1').map((f) => f.name);
      if (set?.length) item.description += `  [ ${set.join(' ')} ]`;
      item.tooltip = [r.raw && r.raw !== r.value ? `${r.name} = ${r.raw}` : undefined, r.note, r.readOnly ? `Read-only: ${r.readOnly}` : undefined].filter(Boolean).join('\n') || undefined;
      item.contextValue = r.readOnly ? 'register' : 'register.editable';
      return item;
    }
    const f = node.field;
    const item = new vscode.TreeItem(f.name, vscode.TreeItemCollapsibleState.None);
    item.id = `field:${node.reg.name}:${f.name}`;
    item.description = `${f.value}  (bit${f.bits.includes('..') ? 's' : ''} ${f.bits})`;
    item.tooltip = f.description;
    item.contextValue = f.toggleable && !node.reg.readOnly ? 'registerField.toggle' : 'registerField';
    if (f.toggleable) item.iconPath = new vscode.ThemeIcon(f.value === '1' ? 'pass-filled' : 'circle-large-outline');
    return item;
  }

  private async edit(node?: Node): Promise<void> {
    const at = this.where();
    if (!at || node?.kind !== 'register') return;
    const r = node.reg;
    const text = await vscode.window.showInputBox({
      title: `Set ${r.name}`,
      value: r.raw ?? r.value,
      prompt: 'A C expression, e.g. 0x10, $rsp + 8 or (unsigned long)&init_task',
      validateInput: (v) => (v.trim() ? undefined : 'Enter a value'),
    });
    if (text === undefined) return;
    await this.write(at, r.name, text);
  }

  private async toggle(node?: Node): Promise<void> {
    const at = this.where();
    if (!at || node?.kind !== 'field' || !node.field.toggled) return;
    await this.write(at, node.reg.name, node.field.toggled);
  }

  private async write(at: NonNullable<ReturnType<RegistersView['where']>>, name: string, value: string): Promise<void> {
    try {
      await at.session.customRequest('qemuKernel.setRegister', { ...at.args, name, value, format: this.format });
    } catch (e) {
      void vscode.window.showErrorMessage(`Cannot set ${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.refresh();
  }

  private async copy(node?: Node): Promise<void> {
    if (node?.kind === 'register') await vscode.env.clipboard.writeText(node.reg.raw ?? node.reg.value);
    else if (node?.kind === 'field') await vscode.env.clipboard.writeText(node.field.value);
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}
