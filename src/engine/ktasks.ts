/**
 * Tasks, `current` and per-CPU data for the adapter and the expression evaluator, read at
 * the stop they are asked at. The layouts are resolved once per session; the task list,
 * the per-CPU table and each vCPU's `current` are read again at each stop (they change
 * whenever the guest runs), and kept until it runs again.
 */
import { vcpuKernelState, type VcpuKernelState } from '../kernel/current';
import type { KernelAccess } from '../kernel/layout';
import { PerCpu } from '../kernel/percpu';
import { TaskReader, type KernelTask } from '../kernel/tasks';
import type { KernelTarget } from './target';

export interface TaskRow extends KernelTask {
  /** The vCPU (gdbstub thread id) running it, when it runs on one now. */
  vcpu?: number;
}

export interface VcpuView extends VcpuKernelState {
  thread: number;
}

export class KernelTasks {
  private reader: Promise<TaskReader> | undefined;
  private stop: { percpu?: Promise<PerCpu>; vcpus: Map<number, Promise<VcpuKernelState>>; list?: Promise<TaskRow[]> } = { vcpus: new Map() };

  constructor(
    private readonly target: KernelTarget,
    private readonly access: () => KernelAccess,
  ) {}

  /** The guest ran: everything read at the last stop is stale. */
  forget(): void {
    this.stop = { vcpus: new Map() };
  }

  tasks(): Promise<TaskReader> {
    this.reader ??= TaskReader.create(this.access()).catch((e: unknown) => {
      this.reader = undefined;
      throw e;
    });
    return this.reader;
  }

  percpu(): Promise<PerCpu> {
    this.stop.percpu ??= PerCpu.read(this.access());
    return this.stop.percpu;
  }

  /** Which Linux CPU a vCPU is and the task it runs. */
  vcpu(tid: number): Promise<VcpuKernelState> {
    let v = this.stop.vcpus.get(tid);
    if (!v) {
      const t = this.target;
      v = (async () =>
        vcpuKernelState(this.access(), await this.percpu(), await this.tasks(), {
          arch: t.arch.name,
          register: (name) => (t.register(name) ? t.readRegister(tid, name) : Promise.resolve(undefined)),
        }))();
      this.stop.vcpus.set(tid, v);
    }
    return v;
  }

  /** Every vCPU with its Linux CPU and `current`. */
  async vcpus(): Promise<VcpuView[]> {
    const out: VcpuView[] = [];
    for (const thread of await this.target.threads()) out.push({ thread, ...(await this.vcpu(thread)) });
    return out;
  }

  /** Every task, each running one marked with its CPU and vCPU. */
  list(): Promise<TaskRow[]> {
    this.stop.list ??= (async () => {
      const rows: TaskRow[] = await (await this.tasks()).list(await this.percpu());
      const byAddr = new Map(rows.map((r) => [r.addr, r]));
      for (const v of await this.vcpus()) {
        const row = byAddr.get(v.current);
        if (!row) continue;
        row.vcpu = v.thread;
        // The register is nearer the truth than the runqueue in the middle of a switch.
        if (v.cpu !== undefined) row.runningOn = v.cpu;
      }
      return rows;
    })();
    return this.stop.list;
  }

  /** The task_struct of pid (a thread id, as the kernel's pid), or undefined. */
  async byPid(pid: number): Promise<bigint | undefined> {
    return (await this.list()).find((t) => t.pid === pid)?.addr;
  }
}
