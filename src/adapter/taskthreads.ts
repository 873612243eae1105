/**
 * Tasks as DAP threads beside the vCPUs, so the Call Stack can show where a sleeping task
 * sleeps: the ones picked in the Kernel Tasks view, or every task with `tasksAsThreads`
 * (for clients without the view). Their ids are far above QEMU's vCPU ids; a task running on
 * a vCPU is that vCPU's thread already and is not listed twice.
 */
import type { DebugProtocol } from '@vscode/debugprotocol';
import type { Debugger } from '../engine/debugger';
import { isTaskThread, pidOfTaskThread, taskThread } from '../engine/ktasks';
import { errors } from '../util/errors';
import { STATE_WORDS } from './events';

export class TaskThreads {
  /** Pids picked in the view, kept across stops while the task lives. */
  private readonly shown = new Set<number>();

  constructor(private readonly all: boolean) {}

  /** The vCPUs' threads, then (with the guest stopped: `dbg`) the tasks'. */
  async withVcpus(vcpus: readonly number[], dbg: Debugger | undefined): Promise<DebugProtocol.Thread[]> {
    const cpus = vcpus.map((tid) => ({ id: tid, name: `CPU ${tid - 1}` }));
    return dbg ? [...cpus, ...(await this.threads(dbg))] : cpus;
  }

  /** The task threads to list after the vCPUs at this stop. */
  async threads(dbg: Debugger): Promise<DebugProtocol.Thread[]> {
    if (!this.all && !this.shown.size) return [];
    const rows = await dbg.kernel.tasks.list().catch(() => []);
    const live = new Set(rows.map((r) => r.pid));
    for (const pid of this.shown) if (!live.has(pid)) this.shown.delete(pid);
    return rows.filter((r) => r.vcpu === undefined && (this.all || this.shown.has(r.pid))).map((r) => ({ id: taskThread(r.pid), name: `Task ${r.pid} ${r.kthread ? `[${r.comm}]` : r.comm} (${STATE_WORDS[r.state] ?? r.state})` }));
  }

  /** Show a task's stack: its vCPU's thread when it runs, else its own task thread. */
  async show(dbg: Debugger, pid: number): Promise<{ threadId: number; name: string }> {
    const row = (await dbg.kernel.tasks.list()).find((r) => r.pid === pid);
    if (!row) throw errors.unsupported(`No task has pid ${pid} at this stop.`);
    if (row.vcpu !== undefined) return { threadId: row.vcpu, name: `${row.comm} runs on CPU ${row.runningOn ?? '?'}` };
    this.shown.add(pid);
    return { threadId: taskThread(pid), name: `Task ${pid} ${row.comm}` };
  }

  /** A step or a register write names a thread that must be a vCPU. */
  static requireVcpu(tid: number, what: string): void {
    if (isTaskThread(tid)) throw errors.unsupported(`Cannot ${what} task ${pidOfTaskThread(tid)}: it is not running on a CPU. Pick a CPU thread in the Call Stack.`);
  }
}
