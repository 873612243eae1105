/**
 * Module symbols that load by themselves, as gdb's `lx-symbols` does by hand. While a
 * breakpoint waits for a module (pending) or sits in one, a breakpoint on `do_init_module`
 * (its argument is the new `struct module *`, with its sections placed and its init not yet
 * run) links the module's .ko at those addresses and places the breakpoints that wait for it,
 * and one on `free_module` takes them away again; neither stop is shown. A return breakpoint
 * after `do_init_module` lifts breakpoints in init memory before the kernel frees it.
 *
 * With no breakpoint that needs them, there are no hooks: each stop under TCG flushes QEMU's
 * translated code, and 20 modules loading at boot would cost the boot most of its time again.
 * Loads and unloads are then found by reading the module list at each stop the user sees
 * (and before breakpoints change or the module list is asked for), so frames, symbols and
 * the Modules view are as right as with the hooks wherever the user can look.
 */
import type { ArchInfo } from '../arch';
import { ModuleReader, type LoadedModule, type ModuleUsage } from '../kernel/modules';
import type { KernelAccess } from '../kernel/layout';
import { kernelAccess } from './kaccess';
import { kernelRelease } from '../kernel/release';
import type { AddressRange, Image, ImageSet } from '../symbols/imageset';
import { messageOf } from '../util/errors';
import { ModuleSymbols, type ModuleFileOptions, type ModuleView } from './modulefiles';
import type { SourceSet } from './sources';
import type { KernelTarget } from './target';
import type { Program } from './values/program';

/** The first argument register at a function's entry, by the arch's calling convention. */
const FIRST_ARG: Record<string, string> = { x86_64: 'rdi', aarch64: 'x0', riscv64: 'a0' };

export interface ModuleHost {
  readonly target: KernelTarget;
  readonly source: SourceSet;
  /** vmlinux's program: the types of `struct module` and friends. */
  program(): Program | undefined;
  /** Insert and remove engine-internal breakpoints. */
  addInternal(addr: bigint, id: number): Promise<void>;
  removeInternal(addr: bigint, id: number): Promise<void>;
  newId(): number;
  /** The vCPU the guest stopped on (memory is read as it sees it). */
  thread(): number;
  /** Whether some breakpoint waits for a module or sits in one (the hooks are needed). */
  wantsModuleEvents(): boolean;
  /** Whether some breakpoint has an address in `ranges`. */
  breakpointsIn(ranges: readonly AddressRange[]): boolean;
  /** A module's image came or went: re-resolve the breakpoints that wait for it. */
  imageAdded(name: string): Promise<void>;
  imageRemoved(image: Image): Promise<void>;
  /** Init memory is about to be freed: lift breakpoints there. */
  rangesFreed(module: string, ranges: readonly AddressRange[]): Promise<void>;
  event(reason: 'new' | 'changed' | 'removed', view: ModuleView): void;
  log(message: string): void;
  warn(message: string): void;
}

interface Hook {
  id: number;
  address: bigint;
  run: (tid: number) => Promise<void>;
}

export class ModuleTracker {
  /** The module reader, from start() on (its layouts come from DWARF, read once). */
  private readerReady: Promise<ModuleReader | undefined> | undefined;
  private readonly hooks = new Map<number, Hook>();
  private readonly views = new Map<string, ModuleView>();
  /** Modules whose init is running: their init sections go when do_init_module returns. */
  private readonly initializing = new Map<string, AddressRange[]>();
  private returnHook: Hook | undefined;
  /** On do_free_init, when init breakpoints came after the load (see sync). */
  private freeInitHook: Hook | undefined;
  /** The do_init_module and free_module hooks, while they are in. */
  private readonly loadHooks: Hook[] = [];
  private readonly warnedHooks = new Set<string>();
  /** Whether the module list was read since the guest last ran. */
  private scanned = false;
  private listReadable = false;
  private started = false;
  /** The kernel's module generation at the last walk of the list (ModuleReader.generation). */
  private generation: number | undefined;
  readonly files: ModuleSymbols;
  /** How long the last load took from the hook's stop to the decision to go on (ms), for the benchmark. */
  lastLoadMs = 0;

  constructor(
    private readonly host: ModuleHost,
    private readonly arch: ArchInfo,
    opts: ModuleFileOptions,
  ) {
    this.files = new ModuleSymbols(opts, (m) => host.warn(m));
  }

  private access(): KernelAccess {
    return kernelAccess(this.host.target, this.host.source.images, () => this.host.program(), () => this.host.thread());
  }

  /**
   * Every module the guest has now, then hooks for those to come if a breakpoint needs them.
   * Call with the guest stopped. At a launch's reset vector the kernel's memory is not mapped
   * and no module exists: the layouts and the host's module files are then read while the
   * guest boots, not while it waits.
   */
  async start(): Promise<void> {
    this.started = true;
    this.host.target.rsp.on('resumed', () => {
      this.scanned = false;
      // Reading the layouts is CPU work: done once the guest runs, it costs the boot nothing.
      if (!this.readerReady) setImmediate(() => void this.reader());
    });
    await this.refresh();
    await this.sync();
  }

  /** Whether the kernel's module list can be read yet (not at a launch's reset vector): one read until it can. */
  private async kernelUp(): Promise<boolean> {
    if (this.listReadable) return true;
    const head = dataAddress(this.host.source.images, 'modules');
    if (head === undefined) return false;
    this.listReadable = await this.access()
      .read(head, this.arch.pointerSize)
      .then(
        () => true,
        () => false,
      );
    return this.listReadable;
  }

  /** The module reader, its layouts read from DWARF on the first call. */
  private reader(): Promise<ModuleReader | undefined> {
    this.readerReady ??= ModuleReader.create(this.access()).then(
      (reader) => {
        if (reader) this.files.prepare();
        return reader;
      },
      (e: unknown) => {
        this.host.warn(`Module symbols will not load by themselves: ${messageOf(e)}`);
        return undefined;
      },
    );
    return this.readerReady;
  }

  /** The reader, with the guest's release read once it can be (for /lib/modules/<release>). Call with the guest stopped. */
  private async ready(): Promise<ModuleReader | undefined> {
    const reader = await this.reader();
    if (reader && this.files.release === undefined) this.files.release = await kernelRelease(this.access()).catch(() => undefined);
    return reader;
  }

  /** Whether loads and unloads are followed as they happen (the hooks are in). */
  get following(): boolean {
    return this.loadHooks.length > 0;
  }

  /** Put the hooks in or take them out, as the breakpoints now need. Call with the guest stopped. */
  async sync(): Promise<void> {
    if (!this.started) return;
    const want = this.host.wantsModuleEvents();
    if (want && !this.following) {
      // What loaded while nobody followed: found now, so the hooks start from the truth.
      await this.refresh();
      await this.installHook('do_init_module', (tid) => this.onLoad(tid));
      await this.installHook('free_module', (tid) => this.onFree(tid));
    } else if (!want && this.following) {
      for (const h of this.loadHooks.splice(0)) await this.unhook(h);
    }
    // A breakpoint put in init code after its module loaded (while stopped in the init): no
    // return hook was armed for it, so it leaves when the kernel's worker frees init memory.
    const inInit = [...this.initializing.values()].some((r) => this.host.breakpointsIn(r));
    if (inInit && !this.returnHook && !this.freeInitHook) this.freeInitHook = await this.hookAt('do_free_init', () => this.onInitDone());
  }

  private async unhook(h: Hook): Promise<void> {
    this.hooks.delete(h.id);
    await this.host.removeInternal(h.address, h.id);
  }

  /** Bring the module list up to date at a stop, unless the hooks already did. */
  async refresh(): Promise<void> {
    if (!this.started || !(await this.kernelUp())) return;
    if (!this.following && !this.scanned) await this.rescan().catch(() => undefined);
    if (!this.returnHook) await this.finishInits().catch(() => undefined);
  }

  private async installHook(fn: string, run: (tid: number) => Promise<void>): Promise<void> {
    const hook = await this.hookAt(fn, run);
    if (hook) this.loadHooks.push(hook);
    else if (!this.warnedHooks.has(fn)) this.host.warn(`This kernel has no ${fn} function to hook: module ${fn === 'free_module' ? 'unloads' : 'loads'} are seen at the next stop.`);
    this.warnedHooks.add(fn);
  }

  private async hookAt(fn: string, run: (tid: number) => Promise<void>): Promise<Hook | undefined> {
    const sym = this.host.source.images.kernelSymbols(fn).find((s) => s.type === 'func' && s.value !== 0n);
    if (!sym) return undefined;
    const hook = { id: this.host.newId(), address: sym.value, run };
    await this.host.addInternal(hook.address, hook.id);
    this.hooks.set(hook.id, hook);
    return hook;
  }

  /** Run the hooks among the breakpoints a stop hit; the user's breakpoints are what is left. */
  async takeHooks(ids: readonly number[], tid: number): Promise<number[]> {
    // Taken before running them: a hook may remove itself (the return breakpoint does).
    const user = ids.filter((id) => !this.hooks.has(id));
    if (user.length < ids.length) await this.handle(ids, tid);
    return user;
  }

  private async handle(ids: readonly number[], tid: number): Promise<void> {
    for (const id of ids) {
      const hook = this.hooks.get(id);
      if (!hook) continue;
      try {
        await hook.run(tid);
      } catch (e) {
        this.host.warn(`Module tracking: ${messageOf(e)}`);
      }
    }
  }

  /**
   * The modules the guest has, diffed against what we hold: loads and unloads we did not
   * see. When the kernel's module generation has not moved since the last walk, that one
   * read is all it costs.
   */
  async rescan(): Promise<void> {
    const reader = await this.ready();
    if (!reader) return;
    const generation = await reader.generation().catch(() => undefined);
    this.scanned = true;
    if (generation !== undefined && generation === this.generation) return;
    const live = new Map<string, LoadedModule>();
    for (const addr of await reader.list()) {
      const m = await reader.read(addr).catch(() => undefined);
      if (m && m.state !== 'unformed') live.set(m.name, m);
    }
    for (const [name, v] of [...this.views]) {
      const now = live.get(name);
      // Unloaded, or unloaded and loaded again (perhaps rebuilt) since we last looked.
      if (!now || now.address !== v.structAddress || now.buildId !== v.buildId || now.core[0]?.start !== v.ranges[0]?.start) await this.unload(name);
    }
    const t0 = performance.now();
    const found: string[] = [];
    for (const m of live.values()) {
      if (this.views.has(m.name)) continue;
      await this.load(m);
      found.push(m.name);
      if (m.state === 'coming' && m.init.length) this.initializing.set(m.name, m.init);
    }
    this.generation = generation;
    const linked = found.filter((n) => this.views.get(n)?.symbolFile !== undefined).length;
    if (found.length) this.host.log(`Module list read: ${found.length} new (${found.join(', ')}), ${linked} with symbols (${(performance.now() - t0).toFixed(1)} ms)`);
  }

  private async onLoad(tid: number): Promise<void> {
    const t0 = performance.now();
    const reader = await this.ready();
    if (!reader) return;
    const modAddr = await this.host.target.readRegister(tid, FIRST_ARG[this.arch.name] ?? '');
    const m = await reader.read(modAddr);
    // A module of the same name still held means its unload went unseen: it is gone.
    if (this.views.has(m.name)) await this.unload(m.name);
    await this.load(m);
    if (m.init.length) {
      this.initializing.set(m.name, m.init);
      // Only a breakpoint in init code needs the stop where init returns (another TCG flush).
      if (this.host.breakpointsIn(m.init)) await this.armReturn(tid);
    }
    this.lastLoadMs = performance.now() - t0;
    const v = this.views.get(m.name);
    const at = m.sections.get('.text') ?? m.core[0]?.start;
    this.host.log(`Module ${m.name} loaded${at !== undefined ? ` at 0x${at.toString(16)}` : ''}: ${v?.symbolFile ? `symbols from ${v.symbolFile}` : v?.symbolStatus} (${this.lastLoadMs.toFixed(1)} ms)`);
  }

  /** A breakpoint where do_init_module returns to: init memory is freed after that. */
  private async armReturn(tid: number): Promise<void> {
    if (this.returnHook) return;
    const t = this.host.target;
    let ret: bigint;
    if (this.arch.returnAddress.kind === 'stack') {
      const sp = await t.readRegister(tid, this.arch.spRegister);
      const b = await t.readMemory(sp, this.arch.pointerSize);
      ret = b.readBigUInt64LE(0);
    } else {
      ret = await t.readRegister(tid, this.arch.dwarfRegisters[this.arch.returnAddress.dwarf]);
    }
    const hook: Hook = { id: this.host.newId(), address: ret, run: () => this.onInitDone() };
    await this.host.addInternal(hook.address, hook.id);
    this.hooks.set(hook.id, hook);
    this.returnHook = hook;
  }

  private async onInitDone(): Promise<void> {
    await this.finishInits();
    if (this.initializing.size > 0) return;
    for (const h of [this.returnHook, this.freeInitHook]) if (h) await this.unhook(h);
    this.returnHook = this.freeInitHook = undefined;
  }

  /** Modules whose init has returned: their init sections leave the image and its breakpoints. */
  private async finishInits(): Promise<void> {
    const reader = await this.ready();
    if (!reader) return;
    for (const [name, init] of [...this.initializing]) {
      const view = this.views.get(name);
      const m = view ? await reader.read(view.structAddress).catch(() => undefined) : undefined;
      // Still coming (another module's init returned): keep its init breakpoints.
      if (m && m.name === name && m.state === 'coming') continue;
      this.initializing.delete(name);
      await this.host.rangesFreed(name, init);
      const img = this.host.source.images.module(name);
      if (img) (img.ranges as AddressRange[]).splice(0, img.ranges.length, ...(m?.core ?? []));
    }
  }

  private async onFree(tid: number): Promise<void> {
    const reader = await this.ready();
    if (!reader) return;
    const modAddr = await this.host.target.readRegister(tid, FIRST_ARG[this.arch.name] ?? '');
    const m = await reader.read(modAddr);
    await this.unload(m.name);
  }

  private async load(m: LoadedModule): Promise<void> {
    const { image, view } = await this.files.load(m);
    this.views.set(m.name, view);
    this.files.loaded.add(m.name);
    if (image) {
      this.host.source.addModule(image);
      await this.host.imageAdded(m.name);
    }
    this.host.event('new', view);
  }

  private async unload(name: string): Promise<void> {
    const view = this.views.get(name);
    this.views.delete(name);
    this.files.loaded.delete(name);
    this.initializing.delete(name);
    const image = this.host.source.removeModule(name);
    if (image) {
      await this.host.imageRemoved(image);
      image.elf.close();
    }
    if (view) this.host.event('removed', view);
  }

  modules(): ModuleView[] {
    return [...this.views.values()];
  }

  /** lsmod's size and users of each module, read now (call with the guest stopped). */
  async usage(): Promise<Map<string, ModuleUsage>> {
    const out = new Map<string, ModuleUsage>();
    const reader = await this.reader();
    if (!reader) return out;
    for (const v of this.views.values()) {
      const u = await reader.usage(v.structAddress).catch(() => undefined);
      if (u) out.set(v.name, u);
    }
    return out;
  }

  /** vmlinux moved (KASLR found): the hooks follow, and the list is read again where it now is. */
  async rebase(to: (addr: bigint) => bigint): Promise<void> {
    for (const h of this.hooks.values()) {
      const at = to(h.address);
      if (at === h.address) continue;
      await this.host.removeInternal(h.address, h.id).catch(() => undefined);
      h.address = at;
      await this.host.addInternal(h.address, h.id);
    }
    this.listReadable = this.scanned = false;
    this.generation = undefined;
  }

  /** Take the hooks out (detach). */
  async removeAll(): Promise<void> {
    for (const h of this.hooks.values()) await this.host.removeInternal(h.address, h.id).catch(() => undefined);
    this.hooks.clear();
    this.loadHooks.length = 0;
    this.returnHook = this.freeInitHook = undefined;
  }
}

/** A vmlinux data symbol's address (`modules`, `init_uts_ns`). */
function dataAddress(images: ImageSet, name: string): bigint | undefined {
  const s = images.kernelSymbols(name).find((x) => x.type !== 'func' && x.value !== 0n);
  return s?.value;
}
