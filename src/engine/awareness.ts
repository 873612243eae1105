/**
 * What makes the engine a kernel debugger rather than a debugger of a program at fixed
 * addresses: where vmlinux runs in this boot (KASLR, kernelbase.ts) and which modules are
 * loaded (moduletracker.ts). The Debugger calls in at the points that matter (a stop the
 * user sees, breakpoint changes, hook hits, detach) and stays a list of wires.
 */
import type { BreakpointHost } from './bptypes';
import { describeKernel, readKernelInfo } from '../kernel/info';
import { gnuBuildId } from '../kernel/modules';
import { readKernelLog, type LogRecord } from '../kernel/printk';
import { errors } from '../util/errors';
import { kernelAccess } from './kaccess';
import { FaultCatcher, type FaultHost } from './faults';
import { KernelBase } from './kernelbase';
import { isTaskThread, KernelTasks } from './ktasks';
import { KernelView } from './kview';
import type { KernelHelpers } from './expr/helpers';
import type { VcpuKernelState } from '../kernel/current';
import { StructLayout, type KernelAccess } from '../kernel/layout';
import type { ModuleFileOptions } from './modulefiles';
import { moduleHost, type ModuleHostDeps } from './modulehost';
import { ModuleTracker } from './moduletracker';
import { SourceSet } from './sources';
import type { SourceInfo } from './sourceinfo';
import type { StopReason } from './stopreason';

/** The module host's needs, plus the breakpoint host and a way to drop the stop's reads. */
export type AwarenessDeps = Omit<ModuleHostDeps, 'source'> & {
  source: SourceInfo | undefined;
  host: BreakpointHost;
  forgetStop(): void;
  /** What the exception filters need of the engine: conditions and unwinding from a trap's registers. */
  faults: Pick<FaultHost, 'condition' | 'unwind'>;
};

export class KernelAwareness {
  tracker: ModuleTracker | undefined;
  base: KernelBase | undefined;

  constructor(private readonly d: AwarenessDeps) {
    // A task shown as a thread reads memory as the vCPU that stopped sees it.
    d.target.aliasThread = (tid) => (isTaskThread(tid) ? d.thread() : undefined);
    const source = d.source;
    if (source instanceof SourceSet) {
      this.view = new KernelView(d.target, (name) => source.images.kernel.symbols.lookup(name).find((s) => s.value !== 0n)?.value);
      const view = this.view;
      d.target.kernelFallback = (tid, addr, length) => view.read(tid, addr, length);
      this.faults = new FaultCatcher({
        ...d.faults,
        target: d.target,
        images: source.images,
        bps: d.bps,
        newId: d.newId,
        access: () => kernelAccess(d.target, source.images, d.program, d.thread),
        tasks: () => this.tasks,
        kernelLog: () => this.kernelLog(),
        modules: async () => {
          await this.tracker?.refresh();
          return this.tracker?.modules() ?? [];
        },
        warn: (m) => d.host.warn(m),
        forgetStop: d.forgetStop,
      });
    }
  }

  /** The exception filters (panic, Oops, BUG, WARN, sanitizers, lockups); undefined without vmlinux's DWARF. */
  readonly faults: FaultCatcher | undefined;

  /** Page-table walks, and kernel memory seen past PTI/KPTI. */
  readonly view: KernelView | undefined;

  private tasksInstance: KernelTasks | undefined;

  /** Tasks, `current` and per-CPU data at this stop. */
  get tasks(): KernelTasks {
    const source = this.d.source;
    if (!(source instanceof SourceSet)) throw errors.unsupported('Tasks, current and per-CPU data need vmlinux with DWARF (set "vmlinux").');
    this.tasksInstance ??= new KernelTasks(this.d.target, () => kernelAccess(this.d.target, source.images, this.d.program, this.d.thread));
    return this.tasksInstance;
  }

  /** $current, per_cpu() and the other expression helpers, as seen from vCPU `tid`. */
  helpers(tid: number): KernelHelpers | undefined {
    if (!(this.d.source instanceof SourceSet)) return undefined;
    const kt = this.tasks;
    const vcpu = async (): Promise<VcpuKernelState> => kt.vcpu(tid);
    return {
      perCpuOffset: async (cpu) => (await kt.percpu()).address(0n, cpu),
      thisCpu: async () => {
        const v = await vcpu();
        if (v.cpu === undefined) throw errors.unsupported(`which Linux CPU vCPU ${tid} is could not be told (${v.how})`);
        return v.cpu;
      },
      current: async () => {
        const v = await vcpu();
        if (!v.current) throw errors.unsupported(`current on vCPU ${tid} could not be read (${v.how})`);
        return v.current;
      },
      task: (pid) => kt.byPid(pid),
      taskType: async () => (await kt.tasks()).task.type,
    };
  }

  /** The guest ran: what was read of tasks and CPUs is stale. */
  forget(): void {
    this.tasksInstance?.forget();
    this.faults?.forget();
  }

  /** Follow module loads and unloads (and load what is loaded). Call with the guest stopped. */
  async enableModules(opts: ModuleFileOptions): Promise<void> {
    const source = this.d.source;
    if (!(source instanceof SourceSet) || this.tracker) return;
    this.tracker = new ModuleTracker(moduleHost({ ...this.d, source }), this.d.target.arch, opts);
    await this.tracker.start();
  }

  /**
   * Where vmlinux runs: 'fixed' at its link addresses (booted with nokaslr), or 'find' it at
   * the first stop inside the running kernel. Call with the guest stopped; an attach looks at once.
   */
  async followKernelBase(mode: 'fixed' | 'find', bootImage?: () => Buffer | undefined): Promise<void> {
    const source = this.d.source;
    if (!(source instanceof SourceSet) || this.base) return;
    const d = this.d;
    // Said when the session is wired (this runs before it listens), as the offset found is.
    let note: string | undefined;
    if (mode === 'find' && (await cannotRandomize(d.target.arch.name, kernelAccess(d.target, source.images, d.program, d.thread), (n) => source.images.kernelSymbols(n).length > 0))) {
      mode = 'fixed';
      note = d.target.arch.name === 'aarch64'
        ? 'KASLR: this kernel cannot move (built without RANDOMIZE_BASE): it runs at its link addresses.'
        : 'KASLR: this kernel cannot move (riscv64 randomizes its base from Linux 6.6 on): it runs at its link addresses.';
    }
    this.base = new KernelBase(
      {
        target: d.target,
        images: source.images,
        host: d.host,
        placed: () => [...d.functions.all(), ...d.lines.all()],
        placePending: async () => {
          await d.functions.imageAdded(source);
          await d.lines.imageAdded(source);
        },
        forget: d.forgetStop,
        rebased: async (to) => {
          await this.tracker?.rebase(to);
          await this.faults?.rebase(to);
        },
        log: (m) => d.events.emit('log', m),
        bootImage,
      },
      mode,
      note,
    );
    await this.base.atStop(d.thread());
    await this.describeKernel();
  }

  /** A stop the user will see: find the kernel if not yet found, then bring the module list up to date. */
  async atStop(reason: StopReason, tid: number): Promise<void> {
    if (reason === 'step') return;
    await this.base?.atStop(tid);
    await this.describeKernel();
    await this.tracker?.refresh();
  }

  /** The Debug Console's line about the running kernel, once it could be read. */
  infoLine: string | undefined;

  /** Read the running kernel's release, build ID, CPUs and command line once, when known where it runs. */
  private async describeKernel(): Promise<void> {
    const source = this.d.source;
    if (this.infoLine !== undefined || !(source instanceof SourceSet) || (this.base && !this.base.isKnown)) return;
    const info = await readKernelInfo(kernelAccess(this.d.target, source.images, this.d.program, this.d.thread)).catch(() => undefined);
    if (!info?.release) return;
    const notes = source.images.kernel.elf.section('.notes');
    const own = notes ? gnuBuildId(source.images.kernel.elf.sectionData(notes)) : undefined;
    this.infoLine = describeKernel(info, own, this.base?.isKnown ? source.images.kernelRelocation.bias : undefined);
    this.d.events.emit('log', this.infoLine);
  }

  /** The guest is being reset: the next boot is found, and described, again. */
  async rebooting(): Promise<void> {
    this.infoLine = undefined;
    await this.base?.reboot();
  }

  /** Before breakpoints change: the modules the guest has now (a breakpoint in one is placed at once). */
  async beforeChange(): Promise<void> {
    await this.tracker?.refresh();
  }

  /** After breakpoints changed: the module hooks follow what the breakpoints need. */
  async afterChange(): Promise<void> {
    await this.tracker?.sync();
  }

  /**
   * The breakpoints a stop hit that are the user's; the engine's own hooks among them have
   * run. A breakpoint armed at every place the kernel could be (its offset unknown) hit at one
   * of them: the kernel is found now, and only a hit where the breakpoint really is counts.
   */
  async userHits(ids: number[], tid: number): Promise<number[]> {
    const mine = this.base ? await this.base.takeEarly(ids, tid) : ids;
    if (!mine.length) return mine;
    const hooked = this.tracker ? await this.tracker.takeHooks(mine, tid) : mine;
    const user = this.faults ? await this.faults.take(hooked, tid) : hooked;
    const base = this.base;
    if (!base || base.isKnown || !user.length) return user;
    await base.atStop(tid);
    if (!base.isKnown) return user;
    const here = new Set(this.d.bps.idsAt(await this.d.target.pc(tid)));
    return user.filter((id) => here.has(id));
  }

  /** Whether the module list is only read at stops (no hook keeps it current while the guest runs). */
  get listStaleWhileRunning(): boolean {
    return this.tracker !== undefined && !this.tracker.following;
  }

  /** The printk ring, read from guest memory. Call with the guest stopped. */
  async kernelLog(): Promise<LogRecord[]> {
    const source = this.d.source;
    if (!(source instanceof SourceSet)) throw errors.unsupported('Reading the kernel log needs vmlinux with DWARF (set "vmlinux").');
    return readKernelLog(kernelAccess(this.d.target, source.images, this.d.program, this.d.thread));
  }

  async removeAll(): Promise<void> {
    await this.tracker?.removeAll();
    await this.faults?.removeAll();
  }
}

/**
 * Whether the kernel has no way to run anywhere but its link addresses, so nothing need wait
 * for a first stop: riscv64 randomizes only from 6.6, where `struct kernel_mapping` gained
 * `virt_offset` (told by this kernel's DWARF); an arm64 kernel without RANDOMIZE_BASE has no
 * kaslr_early_init. (x86's decompressor hook tells an offset of 0 itself.)
 */
async function cannotRandomize(arch: string, access: KernelAccess, has: (name: string) => boolean): Promise<boolean> {
  if (arch === 'aarch64') return !has('kaslr_early_init') && !has('__pi_kaslr_early_init');
  if (arch !== 'riscv64') return false;
  const layout = await StructLayout.of(access, 'struct kernel_mapping', ['setup_vm', 'setup_bootmem', 'paging_init']).catch(() => undefined);
  return layout !== undefined && !layout.has('virt_offset');
}
