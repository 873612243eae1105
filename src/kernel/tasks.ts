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

export class TaskReader {
  /** Byte spans of task_struct to read per task, covering every field a row needs. */
  private readonly spans: Array<[number, number]>;

  private constructor(
    private readonly access: KernelAccess,
    readonly task: StructLayout,
    private readonly rq: StructLayout | undefined,
    private readonly f: Record<string, number>,
    private readonly threads: 'thread_group' | 'thread_node',
  ) {
    this.spans = spansOf(Object.values(f), 32);
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

  /** Every task, thread-group leaders in list order each followed by its other threads, as lx-ps lists them. */
  async list(percpu?: PerCpu): Promise<KernelTask[]> {
    const init = this.access.symbol('init_task');
    if (init === undefined) throw new LayoutError('vmlinux has no init_task');
    const out: KernelTask[] = [];
    const seen = new Set<bigint>();
    const parents = new Map<KernelTask, bigint>();
    let leader = init;
    do {
      let t = leader;
      const groupEnd = await this.threadListHead(leader);
      do {
        if (seen.has(t) || out.length >= MAX_TASKS) throw new LayoutError(`the task list loops at 0x${t.toString(16)}: it is being changed at this stop, or corrupt`);
        seen.add(t);
        const { task, next, parent } = await this.readRow(t);
        out.push(task);
        parents.set(task, parent);
        t = next;
      } while (t !== leader && t !== groupEnd);
      leader = (await this.pointerAt(leader + BigInt(this.f.tasks))) - BigInt(this.f.tasks);
    } while (leader !== init);
    const byAddr = new Map(out.map((t) => [t.addr, t]));
    for (const t of out) t.ppid = byAddr.get(parents.get(t) ?? 0n)?.tgid;
    if (percpu) for (const [cpu, curr] of await this.runqueueCurrents(percpu)) {
      const t = byAddr.get(curr);
      if (t) t.runningOn = cpu;
    }
    return out;
  }

  /** One task by its task_struct address. */
  async read(addr: bigint): Promise<KernelTask> {
    return (await this.readRow(addr)).task;
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

  private async readRow(addr: bigint): Promise<{ task: KernelTask; next: bigint; parent: bigint }> {
    const ps = this.access.pointerSize;
    const bufs = await Promise.all(this.spans.map(([lo, hi]) => this.access.read(addr + BigInt(lo), hi - lo)));
    const at = (off: number, size: number): bigint => {
      const i = this.spans.findIndex(([lo, hi]) => off >= lo && off + size <= hi);
      return readUint(bufs[i], off - this.spans[i][0], size);
    };
    const commSpan = this.spans.findIndex(([lo, hi]) => this.f.comm >= lo && this.f.comm + 16 <= hi);
    const commBytes = bufs[commSpan].subarray(this.f.comm - this.spans[commSpan][0], this.f.comm - this.spans[commSpan][0] + 16);
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
    return { task, next: at(this.f.threads, ps) - BigInt(this.f.threads), parent: at(this.f.realParent, ps) };
  }

  private async pointerAt(addr: bigint): Promise<bigint> {
    return readUint(await this.access.read(addr, this.access.pointerSize), 0, this.access.pointerSize);
  }
}

/** Field offsets grouped into spans to read, merging fields closer than `gap` bytes (each field given 16 bytes). */
export function spansOf(offsets: readonly number[], gap: number): Array<[number, number]> {
  const sorted = [...offsets].sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (const o of sorted) {
    const last = out[out.length - 1];
    if (last && o <= last[1] + gap) last[1] = Math.max(last[1], o + 16);
    else out.push([o, o + 16]);
  }
  return out;
}
