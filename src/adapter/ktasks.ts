/** The tasks request: the kernel's task list read from guest memory at a stop (the guest is stopped for it if it runs). */
import type { Debugger } from '../engine/debugger';
import type { TasksArguments, TasksResponseBody } from './events';

const hex = (v: bigint): string => `0x${v.toString(16)}`;

export async function tasksBody(dbg: Debugger, args: TasksArguments = {}): Promise<TasksResponseBody> {
  if (args.ifStopped && dbg.isRunning) return { running: true, tasks: [], cpus: [], ms: 0 };
  return dbg.readTurn(async () => {
    const t0 = performance.now();
    const kt = dbg.kernel.tasks;
    const rows = await kt.list();
    const cpus = await kt.vcpus();
    return {
      tasks: rows.map((r) => ({
        address: hex(r.addr),
        pid: r.pid,
        tgid: r.tgid,
        ...(r.ppid !== undefined ? { ppid: r.ppid } : {}),
        comm: r.comm,
        state: r.state,
        ...(r.cpu !== undefined ? { cpu: r.cpu } : {}),
        kthread: r.kthread,
        ...(r.runningOn !== undefined ? { runningOn: r.runningOn } : {}),
        ...(r.vcpu !== undefined ? { vcpu: r.vcpu } : {}),
      })),
      cpus: cpus.map((c) => ({ thread: c.thread, ...(c.cpu !== undefined ? { cpu: c.cpu } : {}), ...(c.current ? { current: hex(c.current) } : {}), how: c.how })),
      ms: Math.round((performance.now() - t0) * 10) / 10,
    };
  });
}
