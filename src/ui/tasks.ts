/**
 * The Kernel Tasks view in Run and Debug: every task of the stopped kernel as lx-ps lists
 * them (pid, comm, state, CPU), the ones running marked with their CPU. Picking one shows
 * its stack in the Call Stack: a sleeping task's from the registers its last switch saved.
 * Read from guest memory at each stop the user sees (only while the view is shown); while the
 * guest runs it shows the last list, unless Refresh asks for a new one (a brief pause).
 */
import vscode = require('vscode');
import { SHOW_TASK_REQUEST, STATE_WORDS, TASKS_REQUEST, type TaskInfo, type TasksResponseBody } from '../adapter/events';

export const TASKS_VIEW = 'qemuKernel.tasks';

export class TasksView implements vscode.TreeDataProvider<TaskInfo>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TaskInfo | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subs: vscode.Disposable[] = [];
  private last: TaskInfo[] = [];
  /** The next read may pause a running guest (the Refresh button asked for it). */
  private force = false;

  constructor() {
    const tree = vscode.window.createTreeView(TASKS_VIEW, { treeDataProvider: this });
    this.subs.push(
      tree,
      vscode.debug.onDidChangeActiveDebugSession(() => this.refresh()),
      vscode.debug.onDidTerminateDebugSession(() => {
        this.last = [];
        this.refresh();
      }),
      vscode.debug.registerDebugAdapterTrackerFactory('qemu-kernel', {
        createDebugAdapterTracker: () => ({
          onDidSendMessage: (m: { type?: string; event?: string; body?: { reason?: string } }) => {
            // Showing a task's stack is a stop of our own making: the list has not changed.
            if (m.type === 'event' && m.event === 'stopped' && m.body?.reason !== 'task') this.refresh();
          },
        }),
      }),
      // The button may pause a running guest briefly for the list; nothing else does.
      vscode.commands.registerCommand('qemuKernel.tasks.refresh', () => {
        this.force = true;
        this.refresh();
      }),
      vscode.commands.registerCommand('qemuKernel.tasks.showStack', (t?: TaskInfo) => this.showStack(t)),
    );
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  private async showStack(t: TaskInfo | undefined): Promise<void> {
    const s = vscode.debug.activeDebugSession;
    if (!t || s?.type !== 'qemu-kernel') return;
    try {
      await s.customRequest(SHOW_TASK_REQUEST, { pid: t.pid });
    } catch (e) {
      void vscode.window.showWarningMessage(`Task ${t.pid} (${t.comm}): ${(e as Error).message}`);
    }
  }

  async getChildren(node?: TaskInfo): Promise<TaskInfo[]> {
    if (node) return [];
    const s = vscode.debug.activeDebugSession;
    if (s?.type !== 'qemu-kernel') return [];
    const force = this.force;
    this.force = false;
    try {
      const body = (await s.customRequest(TASKS_REQUEST, { ifStopped: !force })) as TasksResponseBody;
      if (!body.running) this.last = body.tasks;
    } catch {
      // Running, starting or ending: the last list stands.
    }
    return this.last;
  }

  getTreeItem(t: TaskInfo): vscode.TreeItem {
    const item = new vscode.TreeItem(`${t.pid}  ${t.kthread ? `[${t.comm}]` : t.comm}`, vscode.TreeItemCollapsibleState.None);
    const running = t.runningOn !== undefined;
    item.description = running ? `running on CPU ${t.runningOn}` : `${STATE_WORDS[t.state] ?? t.state}${t.cpu !== undefined ? ` · CPU ${t.cpu}` : ''}`;
    item.tooltip = new vscode.MarkdownString(
      [`**${t.comm}** pid ${t.pid}, tgid ${t.tgid}${t.ppid !== undefined ? `, parent ${t.ppid}` : ''}`, `State ${t.state} (${STATE_WORDS[t.state] ?? '?'})${running ? `, running on CPU ${t.runningOn}` : ''}`, `task_struct \`${t.address}\``, t.kthread ? 'Kernel thread' : 'User process'].join('\n\n'),
    );
    item.iconPath = new vscode.ThemeIcon(running ? 'debug-start' : t.kthread ? 'gear' : t.state === 'D' ? 'watch' : 'debug-pause');
    item.contextValue = 'task';
    item.command = { command: 'qemuKernel.tasks.showStack', title: 'Show Stack', arguments: [t] };
    return item;
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}
