/**
 * Loaded modules as the kernel keeps them: the `modules` list of `struct module`, each with
 * its memory (`core_layout`/`init_layout` up to 6.3, `mem[]` from 6.4), its section
 * addresses (`sect_attrs`: counted `attrs[]` up to 6.13, a NULL-terminated `grp.bin_attrs`
 * with the address in `private` from 6.14) and its build ID (`notes_attrs`). Every offset
 * comes from this kernel's DWARF (layout.ts).
 */
import type { AddressRange } from '../symbols/imageset';
import { LayoutError, readCString, readUint, StructLayout, type KernelAccess } from './layout';

/** enum module_state, unchanged since 2.6. */
export const MODULE_STATE = ['live', 'coming', 'going', 'unformed'] as const;
export type ModuleState = (typeof MODULE_STATE)[number] | 'unknown';

export interface LoadedModule {
  /** The `struct module *`. */
  address: bigint;
  name: string;
  state: ModuleState;
  /** Runtime address of each section the kernel lists (`.text`, `.data`, `.init.text`, …). */
  sections: Map<string, bigint>;
  /** The module's memory: core, and init while it still exists. */
  core: AddressRange[];
  init: AddressRange[];
  /** `.data..percpu` is not in the section list: its address is `mod->percpu`. */
  percpu?: bigint;
  buildId?: string;
  srcversion?: string;
}

/** What lsmod shows of a module beside its name: its size and who uses it. */
export interface ModuleUsage {
  /** Bytes of its core memory (lsmod's Size: `core_layout.size`, or 6.4's core `mem[]` added up). */
  size: number;
  /** References held on it (`refcnt` less the module's own), lsmod's Used by count. */
  refcnt: number;
  /** The modules that use it (its `source_list`). */
  usedBy: string[];
}

/** 6.4's enum mod_mem_type: the first four are core memory, the next three init. */
const MOD_MEM_INIT_FIRST = 4;
const MOD_MEM_TYPES = 7;

/** Functions of the module loader's own unit (kernel/module/main.c; kernel/module.c before 5.19). */
const LOADER = ['do_init_module', 'load_module', 'free_module'];
/** Functions of the unit that builds the sysfs section and note attributes (kernel/module/sysfs.c from 5.19). */
const SYSFS = ['mod_sysfs_setup', 'mod_sysfs_teardown', 'module_remove_modinfo_attrs', 'do_init_module'];

/** The layouts a walk needs, read from DWARF once per session. */
export class ModuleLayouts {
  private constructor(
    readonly module: StructLayout,
    readonly sectAttrs: StructLayout | undefined,
    readonly sectAttr: StructLayout | undefined,
    readonly binAttr: StructLayout | undefined,
    readonly notesAttrs: StructLayout | undefined,
    readonly listHead: StructLayout,
    /** `struct mod_tree_root`, when the kernel keeps the module tree (CONFIG_MODULES_TREE_LOOKUP). */
    readonly modTree: StructLayout | undefined,
  ) {}

  static async read(access: KernelAccess): Promise<ModuleLayouts> {
    const module = await StructLayout.of(access, 'struct module', LOADER);
    // The section and note attributes are private to the sysfs part of the loader.
    const optional = (k: string): Promise<StructLayout | undefined> => StructLayout.of(access, k, SYSFS).catch(() => undefined);
    return new ModuleLayouts(
      module,
      await optional('struct module_sect_attrs'),
      await optional('struct module_sect_attr'),
      await optional('struct bin_attribute'),
      await optional('struct module_notes_attrs'),
      await StructLayout.of(access, 'struct list_head', LOADER),
      await StructLayout.of(access, 'struct mod_tree_root', LOADER).catch(() => undefined),
    );
  }
}

export class ModuleReader {
  private constructor(
    private readonly access: KernelAccess,
    readonly layouts: ModuleLayouts,
  ) {}

  /** &modules, the list head, where the running kernel has it (it moves with KASLR). */
  private get head(): bigint {
    const head = this.access.symbol('modules');
    if (head === undefined) throw new LayoutError('this kernel has no modules list');
    return head;
  }

  /** Undefined when the kernel has no module support (no `modules` list). */
  static async create(access: KernelAccess): Promise<ModuleReader | undefined> {
    if (access.symbol('modules') === undefined) return undefined;
    return new ModuleReader(access, await ModuleLayouts.read(access));
  }

  private ptr(buf: Buffer, off: number): bigint {
    return readUint(buf, off, this.access.pointerSize);
  }

  /**
   * A number that moves whenever a module is added, loses its init memory or is removed:
   * the latch sequence of `mod_tree`, which the loader writes twice at each of those. One
   * read tells a stop whether the module list needs walking. Undefined when the kernel has
   * no module tree (CONFIG_MODULES_TREE_LOOKUP needs PERF_EVENTS, TRACING or CFI_CLANG).
   */
  async generation(): Promise<number | undefined> {
    const tree = this.layouts.modTree;
    const at = this.access.symbol('mod_tree');
    if (!tree || at === undefined) return undefined;
    // seqcount_latch_t wraps a seqcount_t since 5.10; before, the latch was a bare seqcount_t.
    const path = ['root.seq.seqcount.sequence', 'root.seq.sequence'].find((p) => tree.has(p));
    if (!path) return undefined;
    return Number(readUint(await this.access.read(at + BigInt(tree.offset(path)), 4), 0, 4));
  }

  /** The `struct module *` of every module on the list, in list order (newest first). */
  async list(): Promise<bigint[]> {
    const ps = this.access.pointerSize;
    const listOff = this.layouts.module.offset('list');
    const out: bigint[] = [];
    const head = this.head;
    let p = this.ptr(await this.access.read(head, ps), 0);
    // A corrupt or half-updated list must not loop forever: no kernel loads thousands.
    for (let n = 0; p !== head && p !== 0n && n < 4096; n++) {
      out.push(p - BigInt(listOff));
      p = this.ptr(await this.access.read(p, ps), 0);
    }
    return out;
  }

  async read(address: bigint): Promise<LoadedModule> {
    const m = this.layouts.module;
    const raw = await this.access.read(address, m.size);
    const nameField = m.field('name');
    const nameBytes = raw.subarray(nameField.offset, nameField.offset + 56);
    const nul = nameBytes.indexOf(0);
    const name = nameBytes.toString('latin1', 0, nul < 0 ? nameBytes.length : nul);
    const stateValue = Number(readUint(raw, m.offset('state'), 4));
    const { core, init } = this.memory(raw);
    const mod: LoadedModule = { address, name, state: MODULE_STATE[stateValue] ?? 'unknown', sections: new Map(), core, init };
    if (m.has('percpu')) {
      const pc = this.ptr(raw, m.offset('percpu'));
      if (pc !== 0n) mod.percpu = pc;
    }
    if (m.has('sect_attrs')) mod.sections = await this.sections(this.ptr(raw, m.offset('sect_attrs')));
    if (m.has('notes_attrs')) mod.buildId = await this.buildId(this.ptr(raw, m.offset('notes_attrs'))).catch(() => undefined);
    if (m.has('srcversion')) {
      const s = await readCString(this.access, this.ptr(raw, m.offset('srcversion')), 64).catch(() => '');
      if (s) mod.srcversion = s;
    }
    return mod;
  }

  /** lsmod's columns for the module at `address`, read now (references come and go while it is loaded). */
  async usage(address: bigint): Promise<ModuleUsage> {
    const m = this.layouts.module;
    const raw = await this.access.read(address, m.size);
    const core = m.has('mem') ? Array.from({ length: MOD_MEM_INIT_FIRST }, (_, i) => Number(readUint(raw, m.offset(`mem[${i}].size`), 4))).reduce((a, b) => a + b, 0) : Number(readUint(raw, m.offset('core_layout.size'), 4));
    const refcnt = m.has('refcnt') ? Number(BigInt.asIntN(32, readUint(raw, m.offset('refcnt'), 4))) - 1 : 0;
    const usedBy: string[] = [];
    if (m.has('source_list')) {
      this.use ??= await StructLayout.of(this.access, 'struct module_use', LOADER);
      const head = address + BigInt(m.offset('source_list'));
      let p = this.ptr(raw, m.offset('source_list'));
      for (let n = 0; p !== head && p !== 0n && n < 256; n++) {
        const entry = p - BigInt(this.use.offset('source_list'));
        const src = this.ptr(await this.access.read(entry + BigInt(this.use.offset('source')), this.access.pointerSize), 0);
        const name = await readCString(this.access, src + BigInt(m.offset('name')), 56);
        usedBy.push(name);
        p = this.ptr(await this.access.read(p, this.access.pointerSize), 0);
      }
    }
    return { size: core, refcnt, usedBy };
  }
  private use: StructLayout | undefined;

  private memory(raw: Buffer): { core: AddressRange[]; init: AddressRange[] } {
    const m = this.layouts.module;
    const range = (base: string, size: string): AddressRange[] => {
      const start = this.ptr(raw, m.offset(base));
      const len = readUint(raw, m.offset(size), 4);
      return start !== 0n && len > 0n ? [{ start, end: start + len }] : [];
    };
    if (m.has('mem')) {
      const core: AddressRange[] = [];
      const init: AddressRange[] = [];
      for (let i = 0; i < MOD_MEM_TYPES; i++) (i < MOD_MEM_INIT_FIRST ? core : init).push(...range(`mem[${i}].base`, `mem[${i}].size`));
      return { core, init };
    }
    if (m.has('core_layout')) return { core: range('core_layout.base', 'core_layout.size'), init: range('init_layout.base', 'init_layout.size') };
    throw new LayoutError('struct module has neither mem[] (6.4+) nor core_layout (up to 6.3)');
  }

  /** Section name → address, from sysfs's section attributes. */
  private async sections(sectAttrs: bigint): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    const L = this.layouts;
    if (sectAttrs === 0n || !L.sectAttrs || !L.binAttr) return out;
    if (L.sectAttrs.has('nsections') && L.sectAttr) {
      // Up to 6.13: attrs[nsections] of { struct bin_attribute battr; unsigned long address; }.
      const head = await this.access.read(sectAttrs, L.sectAttrs.size);
      const n = Number(readUint(head, L.sectAttrs.offset('nsections'), 4));
      const first = sectAttrs + BigInt(L.sectAttrs.offset('attrs'));
      const each = L.sectAttr.size;
      const all = await this.access.read(first, each * Math.min(n, 1024));
      for (let i = 0; i < Math.min(n, 1024); i++) {
        const o = i * each;
        const name = await readCString(this.access, this.ptr(all, o + L.sectAttr.offset('battr.attr.name')), 128);
        out.set(name, this.ptr(all, o + L.sectAttr.offset('address')));
      }
      return out;
    }
    // 6.14+: grp.bin_attrs is a NULL-terminated array of bin_attribute pointers.
    const listPtr = this.ptr(await this.access.read(sectAttrs + BigInt(L.sectAttrs.offset('grp.bin_attrs')), this.access.pointerSize), 0);
    for (let i = 0; listPtr !== 0n && i < 1024; i++) {
      const attr = this.ptr(await this.access.read(listPtr + BigInt(i * this.access.pointerSize), this.access.pointerSize), 0);
      if (attr === 0n) break;
      const b = await this.access.read(attr, L.binAttr.size);
      out.set(await readCString(this.access, this.ptr(b, L.binAttr.offset('attr.name')), 128), this.ptr(b, L.binAttr.offset('private')));
    }
    return out;
  }

  /** The GNU build ID note the kernel keeps for sysfs (`notes/.note.gnu.build-id`). */
  private async buildId(notesAttrs: bigint): Promise<string | undefined> {
    const L = this.layouts;
    if (notesAttrs === 0n || !L.notesAttrs || !L.binAttr) return undefined;
    const attrs: bigint[] = [];
    if (L.notesAttrs.has('notes')) {
      const head = await this.access.read(notesAttrs, L.notesAttrs.size);
      const n = Math.min(Number(readUint(head, L.notesAttrs.offset('notes'), 4)), 64);
      const first = notesAttrs + BigInt(L.notesAttrs.offset('attrs'));
      for (let i = 0; i < n; i++) attrs.push(first + BigInt(i * L.binAttr.size));
    } else {
      const listPtr = this.ptr(await this.access.read(notesAttrs + BigInt(L.notesAttrs.offset('grp.bin_attrs')), this.access.pointerSize), 0);
      for (let i = 0; listPtr !== 0n && i < 64; i++) {
        const a = this.ptr(await this.access.read(listPtr + BigInt(i * this.access.pointerSize), this.access.pointerSize), 0);
        if (a === 0n) break;
        attrs.push(a);
      }
    }
    for (const a of attrs) {
      const b = await this.access.read(a, L.binAttr.size);
      const size = Number(readUint(b, L.binAttr.offset('size'), this.access.pointerSize));
      const data = this.ptr(b, L.binAttr.offset('private'));
      if (data === 0n || size < 16 || size > 4096) continue;
      const id = gnuBuildId(await this.access.read(data, size));
      if (id) return id;
    }
    return undefined;
  }
}

/** The build ID in a block of ELF notes (type 3, name "GNU"), as lowercase hex. */
export function gnuBuildId(notes: Buffer): string | undefined {
  let o = 0;
  while (o + 12 <= notes.length) {
    const namesz = notes.readUInt32LE(o);
    const descsz = notes.readUInt32LE(o + 4);
    const type = notes.readUInt32LE(o + 8);
    const nameStart = o + 12;
    const descStart = nameStart + align4(namesz);
    if (descStart + descsz > notes.length) return undefined;
    if (type === 3 && notes.toString('latin1', nameStart, nameStart + namesz).replace(/\0+$/, '') === 'GNU') return notes.toString('hex', descStart, descStart + descsz);
    o = descStart + align4(descsz);
  }
  return undefined;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
