/** The task list as a ps-like table, as `qkd debug --ps` prints it. */
import type { TaskInfo } from './events';

/** `PID TGID PPID ST CPU TASK COMM`, kernel threads in brackets as ps shows them, `*` on a task running on a CPU now. */
export function psText(tasks: readonly TaskInfo[]): string[] {
  const head = ['PID', 'TGID', 'PPID', 'ST', 'CPU', 'TASK', 'COMM'];
  const rows = tasks.map((t) => [
    String(t.pid),
    String(t.tgid),
    t.ppid === undefined ? '-' : String(t.ppid),
    t.state,
    t.runningOn !== undefined ? `*${t.runningOn}` : t.cpu === undefined ? '-' : String(t.cpu),
    t.address,
    t.kthread ? `[${t.comm}]` : t.comm,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : i < 5 ? c.padStart(w[i]) : c.padEnd(w[i]))).join(' '));
}
