/**
 * A loaded module's symbols: its .ko found on the host (symbols/modfiles.ts), checked to be
 * the very build the guest loaded (build ID, else srcversion), and linked at the addresses
 * the kernel gave its sections (symbols/kolink.ts). What was found, refused or missing is
 * kept as the module's view for the Modules list, so "no symbols" always says why.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LoadedModule } from '../kernel/modules';
import { Dwarf } from '../symbols/dwarf/dwarf';
import { ElfFile } from '../symbols/elf';
import type { AddressRange, Image } from '../symbols/imageset';
import { linkModule } from '../symbols/kolink';
import { defaultModuleDirs, findModuleFile, ModuleFileIndex, moduleIdentity, type ModuleCandidate } from '../symbols/modfiles';
import { SymbolTable } from '../symbols/symtab';
import { messageOf } from '../util/errors';

export interface ModuleFileOptions {
  /** The launch/attach field `modulePaths`, searched first and recursively. */
  modulePaths: readonly string[];
  vmlinux?: string;
  /** Other build directories to search (the sample module's). */
  extraDirs: readonly string[];
}

export interface ModuleView {
  name: string;
  /** The `struct module *` in the guest. */
  structAddress: bigint;
  state: string;
  ranges: AddressRange[];
  /** Total bytes of the module's memory. */
  size: number;
  /** The host file its symbols came from. */
  symbolFile?: string;
  /** 'Symbols loaded', or why there are none. */
  symbolStatus: string;
  buildId?: string;
  sections: Map<string, bigint>;
}

export class ModuleSymbols {
  private index: ModuleFileIndex | undefined;
  /** From the guest's init_uts_ns, for /lib/modules/<release>. */
  release: string | undefined;

  constructor(
    private readonly opts: ModuleFileOptions,
    private readonly warn: (m: string) => void,
  ) {}

  private files(): ModuleFileIndex {
    this.index ??= new ModuleFileIndex(defaultModuleDirs({ modulePaths: [...this.opts.modulePaths], vmlinux: this.opts.vmlinux, extra: [...this.opts.extraDirs], release: this.release }));
    return this.index;
  }

  /** Walk the search directories now, before the first load needs them. */
  prepare(): void {
    void this.files().prepare();
  }

  /** The modules built in the user's own folders: what each defines, for pending breakpoints. */
  private catalogEntries: CatalogEntry[] | undefined;

  private catalog(): CatalogEntry[] {
    if (this.catalogEntries) return this.catalogEntries;
    const out: CatalogEntry[] = [];
    for (const file of moduleFilesUnder([...this.opts.modulePaths, ...this.opts.extraDirs])) {
      try {
        const bytes = fs.readFileSync(file);
        // The file as built: its symbols' names are all that is asked (linking with nothing
        // placed would leave every section's symbols undefined).
        const functions = new Set(ElfFile.fromBuffer(file, bytes).symbols().filter((s) => s.type === 'func').map((s) => s.name));
        const elf = linkModule(file, bytes, new Map()).elf;
        const name = moduleIdentity(bytes, file).name ?? path.basename(file).replace(/\.ko(\.debug)?$/, '');
        out.push({ name, functions, dwarf: Dwarf.open(elf) });
      } catch {
        // A file that can't be read says so when its module loads.
      }
    }
    this.catalogEntries = out;
    return out;
  }

  /** `pending: module X is not loaded` when a module built in the user's folders has the function or source file. */
  pendingReason(what: { function: string } | { file: string }): string | undefined {
    const loaded = (n: string): boolean => this.loaded.has(n);
    for (const e of this.catalog()) {
      if (loaded(e.name)) continue;
      const has = 'function' in what ? e.functions.has(what.function) : namesFile(e.dwarf, what.file);
      if (has) return `pending: module ${e.name} is not loaded`;
    }
    return undefined;
  }

  /** Each module's last linked image, by module name. */
  private readonly lastLinked = new Map<string, { key: string; bytes: Buffer; image: Image }>();

  /** Names of modules loaded now (a loaded module's breakpoints are not pending). */
  readonly loaded = new Set<string>();

  async load(m: LoadedModule): Promise<{ image?: Image; view: ModuleView }> {
    const ranges = [...m.core, ...m.init];
    const view: ModuleView = {
      name: m.name,
      structAddress: m.address,
      state: m.state,
      ranges,
      size: ranges.reduce((n, r) => n + Number(r.end - r.start), 0),
      symbolStatus: '',
      buildId: m.buildId,
      sections: m.sections,
    };
    const found = await findModuleFile(this.files(), { name: m.name, buildId: m.buildId, srcversion: m.srcversion });
    const refusals = found.rejected.map((r) => `${r.path}: ${r.reason}`);
    if (!found.file) {
      view.symbolStatus = refusals.length ? `no symbols: refused ${refusals.join('; ')}` : `no symbols: no ${m.name}.ko in ${found.searched.join(', ') || '(no folders: set "modulePaths")'}`;
      this.warn(`Module ${m.name}: ${view.symbolStatus}`);
      return { view };
    }
    // A stale copy in the user's folders is worth knowing about even when another file fits.
    for (const r of refusals) this.warn(`Module ${m.name}: skipped ${r}; using ${found.file.candidate.path}`);
    return this.link(m, found.file.candidate, found.file.bytes, view);
  }

  private link(m: LoadedModule, c: ModuleCandidate, bytes: Buffer, view: ModuleView): { image?: Image; view: ModuleView } {
    const placement = new Map(m.sections);
    if (m.percpu !== undefined) placement.set('.data..percpu', m.percpu);
    // The same file loaded again where it was (the kernel reuses the freed range): the image,
    // with the DWARF it already read, still holds.
    const key = `${c.path}\0${bytes.length}\0${[...placement].map(([n, a]) => `${n}=${a.toString(16)}`).join(',')}`;
    const again = this.lastLinked.get(m.name);
    if (again && again.key === key && again.bytes.equals(bytes)) {
      const image: Image = { ...again.image, ranges: view.ranges };
      view.symbolFile = c.path;
      view.symbolStatus = image.dwarf ? 'Symbols loaded' : 'Symbols loaded (no DWARF: names only)';
      return { image, view };
    }
    try {
      const linked = linkModule(c.path, bytes, placement);
      // The kernel lists sections the file may not have as loadable (.data..percpu): harmless.
      for (const w of linked.warnings) if (!w.startsWith('placement names')) this.warn(`${path.basename(c.path)}: ${w}`);
      const elf = linked.elf;
      const image: Image = { name: m.name, kind: 'module', file: c.path, elf, symbols: SymbolTable.fromElf(elf), dwarf: Dwarf.open(elf), ranges: view.ranges };
      view.symbolFile = c.path;
      view.symbolStatus = image.dwarf ? 'Symbols loaded' : 'Symbols loaded (no DWARF: names only)';
      this.lastLinked.set(m.name, { key, bytes, image });
      return { image, view };
    } catch (e) {
      view.symbolStatus = `no symbols: ${c.path} could not be read: ${messageOf(e)}`;
      this.warn(`Module ${m.name}: ${view.symbolStatus}`);
      return { view };
    }
  }
}

interface CatalogEntry {
  name: string;
  functions: Set<string>;
  dwarf: Dwarf | undefined;
}

/** Whether a module's line tables name a file with this one's base name. */
function namesFile(dwarf: Dwarf | undefined, file: string): boolean {
  if (!dwarf) return false;
  try {
    return dwarf.unitsNaming(path.basename(file)).length > 0;
  } catch {
    return false;
  }
}

/** The uncompressed .ko files under some folders (a user's build folders: small). */
function moduleFilesUnder(dirs: readonly string[]): string[] {
  const out: string[] = [];
  const visit = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 6 && !e.name.startsWith('.')) visit(p, depth + 1);
      else if (e.isFile() && e.name.endsWith('.ko')) out.push(p);
      if (out.length >= 200) return;
    }
  };
  for (const d of dirs) visit(d, 0);
  return out;
}
