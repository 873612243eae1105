/**
 * Tasks, `current` and per-CPU data for the adapter and the expression evaluator, read at
 * the stop they are asked at. The layouts are resolved once per session; the task list,
 * the per-CPU table and each vCPU's `current` are read again at each stop (they change
 * whenever the guest runs), and kept until it runs again.
 */
import { vcpuKernelState, type VcpuKernelState } from '../kernel/current';
import type { KernelAccess } from '../kernel/layout';
import { PerCpu } from '../kernel/percpu';
import { sleepingRegisters } from '../kernel/switchframe';
import { TaskReader, type KernelTask } from '../kernel/tasks';
import { errors } from '../util/errors';
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

  /**
   * The registers to unwind a task thread from: its vCPU's while it runs on one, else the
   * ones its last switch saved (kernel/switchframe.ts).
   */
  async registers(tid: number): Promise<Map<number, bigint>> {
    const pid = pidOfTaskThread(tid);
    const row = (await this.list()).find((r) => r.pid === pid);
    if (!row) throw errors.unsupported(`no task has pid ${pid} at this stop (it has exited)`);
    if (row.vcpu !== undefined) return this.target.readDwarfRegisters(row.vcpu);
    return sleepingRegisters(this.access(), this.target.arch.name, row.addr, (await this.tasks()).task);
  }

  /** The task_struct of pid (a thread id, as the kernel's pid), or undefined. */
  async byPid(pid: number): Promise<bigint | undefined> {
    return (await this.list()).find((t) => t.pid === pid)?.addr;
  }
}

/**
 * DAP thread ids for tasks shown as threads (a sleeping task's stack in the Call Stack): far
 * above QEMU's vCPU ids (1, 2, …) and below 2^31, with room for PID_MAX_LIMIT (4 Mi).
 */
export const TASK_THREAD_BASE = 0x40000000;
export const isTaskThread = (tid: number): boolean => tid >= TASK_THREAD_BASE;
export const taskThread = (pid: number): number => TASK_THREAD_BASE + pid;
export const pidOfTaskThread = (tid: number): number => tid - TASK_THREAD_BASE;
