/**
 * The kernel's tasks, walked as scripts/gdb's lx-ps walks them (each thread-group leader on
 * `init_task.tasks`, then its threads on `thread_group`, or `signal->thread_head` where
 * 6.7 dropped that list), with what `ps` shows: pid, tgid, parent, comm, the state letter
 * of /proc/<pid>/stat, the CPU, and which task each CPU's runqueue is running.
 *
 * Speed is the point (a task list at every stop): the fields a row needs are read as a few
 * spans of each task_struct, and every offset comes from this kernel's DWARF once.
 */
import { LayoutError, readUint, StructLayout, type KernelAccess } from './layout';
import type { PerCpu } from './percpu';

export interface KernelTask {
  /** The task_struct's address. */
  addr: bigint;
  pid: number;
  tgid: number;
  /** The parent's tgid (`real_parent`), when the parent is in the list. */
  ppid?: number;
  comm: string;
  /** /proc's letter: R S D T t X Z P I. */
  state: string;
  /** The CPU the task last ran on (or runs on). */
  cpu?: number;
  kthread: boolean;
  /** The Linux CPU whose runqueue is running it now. */
  runningOn?: number;
}

/** Functions of units that define `struct task_struct` and `struct rq` completely. */
const TASK_NEAR = ['copy_process', 'kernel_clone', 'do_exit'];
const RQ_NEAR = ['__schedule', 'scheduler_tick', 'sched_fork'];

const PF_KTHREAD = 0x00200000;
const TASK_REPORT = 0x7f;
const TASK_IDLE = 0x402;
const TASK_RTLOCK_WAIT = 0x1000;
const STATE_LETTERS = 'RSDTtXZPI';

/** /proc's state letter, as fs/proc/array.c's task_state_index() computes it. */
export function stateLetter(state: number, exitState: number): string {
  let s = (state | exitState) & TASK_REPORT;
  if (state === TASK_IDLE) s = TASK_REPORT + 1;
  else if (state === TASK_RTLOCK_WAIT) s = 2;
  const idx = s === 0 ? 0 : 32 - Math.clz32(s);
  return STATE_LETTERS[idx] ?? '?';
}

/** A task list can't be longer than PID_MAX_LIMIT; a longer walk is a corrupt or changing list. */
const MAX_TASKS = 4 * 1024 * 1024;

interface Row {
  task: KernelTask;
  /** The next task of its thread group, and (for a leader) the next leader. */
  threadNext: bigint;
  tasksNext: bigint;
  parent: bigint;
}

export class TaskReader {
  /** The bytes of task_struct read per task: from the first field a row needs to the end of the last. */
  private readonly span: [number, number];

  private constructor(
    private readonly access: KernelAccess,
    readonly task: StructLayout,
    private readonly rq: StructLayout | undefined,
    private readonly f: Record<string, number>,
    private readonly threads: 'thread_group' | 'thread_node',
  ) {
    // One span per task: another packet costs more than a kilobyte more of reply.
    const offs = Object.values(f);
    this.span = [Math.min(...offs), Math.max(...offs) + 16];
  }

  static async create(access: KernelAccess): Promise<TaskReader> {
    const task = await StructLayout.of(access, 'struct task_struct', TASK_NEAR);
    const rq = await StructLayout.of(access, 'struct rq', RQ_NEAR).catch(() => undefined);
    const pick = (...paths: string[]): number => {
      const p = paths.find((x) => task.has(x));
      if (p === undefined) throw new LayoutError(`struct task_struct has none of ${paths.join(', ')} in this kernel`);
      return task.offset(p);
    };
    const threads = task.has('thread_group') ? 'thread_group' : 'thread_node';
    const f: Record<string, number> = {
      tasks: pick('tasks'),
      threads: pick(threads),
      pid: pick('pid'),
      tgid: pick('tgid'),
      comm: pick('comm'),
      state: pick('__state', 'state'),
      exitState: pick('exit_state'),
      flags: pick('flags'),
      realParent: pick('real_parent'),
      signal: pick('signal'),
    };
    // 5.16 moved the CPU from thread_info into task_struct on THREAD_INFO_IN_TASK arches.
    if (task.has('cpu')) f.cpu = task.offset('cpu');
    else if (task.has('thread_info.cpu')) f.cpu = task.offset('thread_info.cpu');
    return new TaskReader(access, task, rq, f, threads);
  }

  /** The task_structs the last list walked, in its order: read again in one batch at the next stop. */
  private lastOrder: bigint[] = [];

  /**
   * Every task, thread-group leaders in list order each followed by its other threads, as
   * lx-ps lists them. The walk follows each task's list pointers, which makes it a round trip
   * per task; so every task the last list had is read first in one pipelined batch, and the
   * walk then only waits on tasks that are new since. A task that exited is not reached.
   */
  async list(percpu?: PerCpu): Promise<KernelTask[]> {
    const init = this.access.symbol('init_task');
    if (init === undefined) throw new LayoutError('vmlinux has no init_task');
    const rows = new Map<bigint, Row>();
    await this.readRows([init, ...this.lastOrder], rows);
    const row = async (t: bigint): Promise<Row> => {
      if (!rows.has(t)) await this.readRows([t], rows);
      const r = rows.get(t);
      if (!r) throw new LayoutError(`the task list leads to 0x${t.toString(16)}, which cannot be read: it is being changed at this stop, or corrupt`);
      return r;
    };
    const out: KernelTask[] = [];
    const order: bigint[] = [];
    const seen = new Set<bigint>();
    let leader = init;
    do {
      let t = leader;
      const groupEnd = await this.threadListHead(leader);
      do {
        if (seen.has(t) || out.length >= MAX_TASKS) throw new LayoutError(`the task list loops at 0x${t.toString(16)}: it is being changed at this stop, or corrupt`);
        seen.add(t);
        const r = await row(t);
        out.push(r.task);
        order.push(t);
        t = r.threadNext;
      } while (t !== leader && t !== groupEnd);
      leader = (await row(leader)).tasksNext;
    } while (leader !== init);
    this.lastOrder = order;
    const byAddr = new Map(out.map((t) => [t.addr, t]));
    for (const t of out) t.ppid = byAddr.get(rows.get(t.addr)?.parent ?? 0n)?.tgid;
    if (percpu) for (const [cpu, curr] of await this.runqueueCurrents(percpu)) {
      const t = byAddr.get(curr);
      if (t) t.runningOn = cpu;
    }
    return out;
  }

  /** Read the rows of `addrs` into `rows`, in one pipelined batch; unreadable ones are left out. */
  private async readRows(addrs: readonly bigint[], rows: Map<bigint, Row>): Promise<void> {
    const [lo, hi] = this.span;
    const bufs = await this.access.readMany(addrs.map((a) => [a + BigInt(lo), hi - lo] as const));
    addrs.forEach((a, i) => {
      const b = bufs[i];
      if (b) rows.set(a, this.parseRow(a, b));
    });
  }

  /** One task by its task_struct address. */
  async read(addr: bigint): Promise<KernelTask> {
    const [lo, hi] = this.span;
    return this.parseRow(addr, await this.access.read(addr + BigInt(lo), hi - lo)).task;
  }

  /** The task running on each online CPU, from its runqueue (`rq->curr`). */
  async runqueueCurrents(percpu: PerCpu): Promise<Map<number, bigint>> {
    const out = new Map<number, bigint>();
    const rqs = this.access.symbol('runqueues');
    if (rqs === undefined || !this.rq?.has('curr')) return out;
    for (const cpu of percpu.online) out.set(cpu, await this.pointerAt(percpu.address(rqs, cpu) + BigInt(this.rq.offset('curr'))));
    return out;
  }

  /** A member's offset in task_struct (for stacks and helpers). */
  offset(path: string): number {
    return this.task.offset(path);
  }

  /**
   * Where a thread group's thread list ends: the leader itself on `thread_group` (a ring of
   * tasks), `signal->thread_head` on `thread_node` (a ring through the signal struct).
   */
  private async threadListHead(leader: bigint): Promise<bigint | undefined> {
    if (this.threads === 'thread_group') return undefined;
    const signal = await this.pointerAt(leader + BigInt(this.f.signal));
    const sig = await StructLayout.of(this.access, 'struct signal_struct', TASK_NEAR);
    return signal + BigInt(sig.offset('thread_head')) - BigInt(this.f.threads);
  }

  /** A task's row from the bytes of its span. */
  private parseRow(addr: bigint, buf: Buffer): Row {
    const ps = this.access.pointerSize;
    const base = this.span[0];
    const at = (off: number, size: number): bigint => readUint(buf, off - base, size);
    const commBytes = buf.subarray(this.f.comm - base, this.f.comm - base + 16);
    const nul = commBytes.indexOf(0);
    const flags = Number(at(this.f.flags, 4));
    const task: KernelTask = {
      addr,
      pid: Number(BigInt.asIntN(32, at(this.f.pid, 4))),
      tgid: Number(BigInt.asIntN(32, at(this.f.tgid, 4))),
      comm: commBytes.toString('utf8', 0, nul < 0 ? 16 : nul),
      state: stateLetter(Number(at(this.f.state, 4)), Number(at(this.f.exitState, 4))),
      kthread: (flags & PF_KTHREAD) !== 0,
    };
    if (this.f.cpu !== undefined) task.cpu = Number(at(this.f.cpu, 4));
    return { task, threadNext: at(this.f.threads, ps) - BigInt(this.f.threads), tasksNext: at(this.f.tasks, ps) - BigInt(this.f.tasks), parent: at(this.f.realParent, ps) };
  }

  private async pointerAt(addr: bigint): Promise<bigint> {
    return readUint(await this.access.read(addr, this.access.pointerSize), 0, this.access.pointerSize);
  }
}
