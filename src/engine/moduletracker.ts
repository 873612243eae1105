/**
 * Module symbols that load by themselves, as gdb's `lx-symbols` does by hand: a breakpoint
 * on `do_init_module` (its argument is the new `struct module *`, with its sections placed
 * and its init not yet run) links the module's .ko at those addresses and places the
 * breakpoints that wait for it; one on `free_module` takes them away again. Neither stop is
 * shown: the guest goes on as soon as the work is done. A return breakpoint after
 * `do_init_module` drops what was in init memory before the kernel frees it.
 */
import type { ArchInfo } from '../arch';
import { ModuleReader, type LoadedModule } from '../kernel/modules';
import type { KernelAccess } from '../kernel/layout';
import { kernelRelease } from '../kernel/release';
import type { AddressRange, Image } from '../symbols/imageset';
import type { SymbolLookup } from '../symbols/symtab';
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
  private reader: ModuleReader | undefined;
  private readonly hooks = new Map<number, Hook>();
  private readonly views = new Map<string, ModuleView>();
  /** Modules whose init is running: their init sections go when do_init_module returns. */
  private readonly initializing = new Map<string, AddressRange[]>();
  private returnHook: Hook | undefined;
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
    const t = this.host.target;
    const kernel = this.host.source.images.kernel.symbols;
    return {
      pointerSize: this.arch.pointerSize,
      // Through the stop's memory cache: section names and attributes sit in the same few
      // slab pages, so one read of a block answers several lookups.
      read: (addr, size) => t.memory(this.host.thread()).read(addr, size),
      symbol: (name) => dataAddress(kernel, name),
      type: async (key, near) => {
        const program = this.host.program();
        for (const fn of near) {
          const sym = kernel.lookup(fn).find((x) => x.type === 'func' && x.value !== 0n);
          const t = sym && program?.typeNear(key, sym.value);
          if (t) return program?.types.complete(t) ?? t;
        }
        return undefined;
      },
    };
  }

  /** Every module the guest has now, then hooks for those to come. Call with the guest stopped. */
  async start(): Promise<void> {
    const access = this.access();
    try {
      this.reader = await ModuleReader.create(access);
    } catch (e) {
      this.host.warn(`Module symbols will not load by themselves: ${messageOf(e)}`);
      return;
    }
    if (!this.reader) return;
    this.files.release = await kernelRelease(access).catch(() => undefined);
    this.files.prepare();
    await this.installHook('do_init_module', (tid) => this.onLoad(tid));
    await this.installHook('free_module', (tid) => this.onFree(tid));
    // At the reset vector (a launch) the kernel's memory is not mapped yet, and there are no modules.
    await this.rescan().catch(() => undefined);
  }

  private async installHook(fn: string, run: (tid: number) => Promise<void>): Promise<void> {
    const sym = this.host.source.images.kernel.symbols.lookup(fn).find((s) => s.type === 'func' && s.value !== 0n);
    if (!sym) {
      this.host.warn(`This kernel has no ${fn} function to hook: module ${fn === 'free_module' ? 'unloads are seen at the next stop' : 'loads are not followed'}.`);
      return;
    }
    const hook = { id: this.host.newId(), address: sym.value, run };
    await this.host.addInternal(hook.address, hook.id);
    this.hooks.set(hook.id, hook);
  }

  owns(id: number): boolean {
    return this.hooks.has(id);
  }

  /** Run the hooks hit by a stop. */
  async handle(ids: readonly number[], tid: number): Promise<void> {
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

  /** The modules the guest has, diffed against what we hold: loads and unloads we did not see. */
  async rescan(): Promise<void> {
    if (!this.reader) return;
    const live = new Map<string, LoadedModule>();
    for (const addr of await this.reader.list()) {
      const m = await this.reader.read(addr).catch(() => undefined);
      if (m && m.state !== 'unformed') live.set(m.name, m);
    }
    for (const name of [...this.views.keys()]) {
      const v = this.views.get(name);
      const now = live.get(name);
      if (!now || (v && now.address !== v.structAddress)) await this.unload(name);
    }
    for (const m of live.values()) if (!this.views.has(m.name)) await this.load(m);
  }

  private async onLoad(tid: number): Promise<void> {
    const t0 = performance.now();
    const reader = this.reader;
    if (!reader) return;
    const modAddr = await this.host.target.readRegister(tid, FIRST_ARG[this.arch.name] ?? '');
    const m = await reader.read(modAddr);
    // A module of the same name still held means its unload went unseen: it is gone.
    if (this.views.has(m.name)) await this.unload(m.name);
    await this.load(m);
    if (m.init.length) {
      this.initializing.set(m.name, m.init);
      await this.armReturn(tid);
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
    const reader = this.reader;
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
    if (this.initializing.size === 0 && this.returnHook) {
      const h = this.returnHook;
      this.returnHook = undefined;
      this.hooks.delete(h.id);
      await this.host.removeInternal(h.address, h.id);
    }
  }

  private async onFree(tid: number): Promise<void> {
    const reader = this.reader;
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

  /** Take the hooks out (detach). */
  async removeAll(): Promise<void> {
    for (const h of this.hooks.values()) await this.host.removeInternal(h.address, h.id).catch(() => undefined);
    this.hooks.clear();
    this.returnHook = undefined;
  }
}

/** A vmlinux data symbol's address (`modules`, `init_uts_ns`). */
function dataAddress(symbols: SymbolLookup, name: string): bigint | undefined {
  const s = symbols.lookup(name).find((x) => x.type !== 'func' && x.value !== 0n);
  return s?.value;
}
