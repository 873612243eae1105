/**
 * Kernel log references (`func+0x1a/0x200 [mod]`) to source lines with their inlined calls,
 * from vmlinux and the modules' .ko files, with no guest: what `qkd decode`, the kernel-log
 * language server and the Guest Console's links share. Like scripts/decode_stacktrace.sh it
 * takes the function's address from the symbol table and adds the offset; unlike it, a
 * module's sections are laid out apart before the lookup, so a function in .text.unlikely
 * (where GCC puts code that ends in a BUG or a panic) is not mistaken for .text's code at the
 * same section offset, which addr2line on the .ko does.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CodeMap } from '../../symbols/codemap/format';
import { openCodeMap } from '../../symbols/codemap/store';
import { ElfFile, type ElfSymbol } from '../../symbols/elf';
import type { Image } from '../../symbols/imageset';
import { requireCached } from '../../util/codecache';
import { messageOf } from '../../util/errors';
import type { FrameDescription } from '../sourceinfo';
import { SourceMapper } from '../sourcemap';
import type { SourceSet } from '../sources';
import type { CodeRef } from '../../kernel/logrefs';
import type * as DwarfSide from './dwarfside';

let dwarfSide: typeof DwarfSide | undefined;

/** The DWARF readers: dist/decode-dwarf.js beside the bundle, else (compiled, not bundled) the module itself. */
function dwarf(): typeof DwarfSide {
  if (!dwarfSide) {
    const bundled = path.join(__dirname, 'decode-dwarf.js');
    // Bundled: from V8's code cache, as the decoder's own bundle (a cold decode compiles all of it).
    // Else a computed name, which the bundler leaves to run time instead of inlining the readers.
    const name = './dwarfside';
    dwarfSide = (fs.existsSync(bundled) ? requireCached(bundled, 'exit') : require(name)) as typeof DwarfSide;
  }
  return dwarfSide;
}

export interface Resolution {
  /** The address looked up: the symbol's (in vmlinux, at its link address) plus the offset. */
  address: bigint;
  /** Innermost first: the line at the address, then each inlined call's call site. */
  chain: FrameDescription[];
}

/** Where the decoder lays out modules: apart from vmlinux and from each other. */
const MODULE_BASE = 0xffff_ff00_0000_0000n;
const MODULE_SPAN = 0x1000_0000n;

export class Decoder {
  private readonly modules = new Map<string, Image | string>();
  private nextBase = MODULE_BASE;

  private opened: ReturnType<typeof DwarfSide.openVmlinux> | undefined;
  /** Where DWARF paths are found on this machine (what sourceInfo gives vmlinux and its modules). */
  readonly mapper: SourceMapper;

  private constructor(
    readonly vmlinux: string,
    private readonly moduleDirs: readonly string[],
    /** vmlinux's code map, when one is built: its addresses answered without decoding DWARF. */
    readonly codeMap: CodeMap | undefined,
    private readonly useMaps: boolean,
  ) {
    this.mapper = new SourceMapper({ localRoots: [path.dirname(path.resolve(vmlinux))] });
  }

  /** `codeMap: false` decodes from the DWARF even when vmlinux has a code map. */
  static open(vmlinux: string, moduleDirs: readonly string[], opts: { codeMap?: boolean } = {}): Decoder {
    const map = opts.codeMap === false ? undefined : openCodeMap(vmlinux);
    const decoder = new Decoder(vmlinux, moduleDirs, map, opts.codeMap !== false);
    // Without a map the file is read now, so a file that is no vmlinux is told at once; with
    // one (made from this very file), only when the map cannot answer.
    if (!map) void decoder.source;
    return decoder;
  }

  /** vmlinux's symbols and DWARF, opened at first need. */
  get source(): SourceSet {
    this.opened ??= dwarf().openVmlinux(this.vmlinux);
    return this.opened.source;
  }

  dispose(): void {
    this.codeMap?.close();
    for (const m of this.moduleMaps.values()) m?.close();
    this.opened?.elf.close();
  }

  /** A report repeats its call trace's frames (and several reports share them): each is looked up once. */
  private readonly answers = new Map<string, Resolution | string>();

  /** Where a reference's code is, or why it can't be told. */
  resolve(ref: Pick<CodeRef, 'func' | 'offset' | 'module'>): Resolution | string {
    const key = `${ref.module ?? ''}\0${ref.func}\0${ref.offset}`;
    let a = this.answers.get(key);
    if (a === undefined) this.answers.set(key, (a = this.lookup(ref)));
    return a;
  }

  private lookup(ref: Pick<CodeRef, 'func' | 'offset' | 'module'>): Resolution | string {
    let base: bigint | undefined;
    const toLocal = (p: string): string => this.mapper.toLocal(p);
    if (ref.module && this.useMaps) {
      // The module's code map, when one is built: no link of the .ko, no DWARF read.
      const file = this.koFile(ref.module);
      const map = file === undefined ? undefined : this.moduleMap(file);
      const at = map?.symbol(ref.func);
      const frames = at === undefined ? undefined : map?.framesAt(at + ref.offset, toLocal);
      if (at !== undefined && frames?.length) return { address: at + ref.offset, chain: frames };
    }
    if (ref.module) {
      const image = this.module(ref.module);
      if (typeof image === 'string') return image;
      base = image.symbols.lookup(ref.func).find(isCode)?.value;
      if (base === undefined) return `${ref.func} is not a function of ${image.file}`;
    } else {
      base = this.codeMap?.symbol(ref.func) ?? this.source.images.kernelSymbols(ref.func).find(isCode)?.value;
      if (base === undefined) return `${ref.func} is not a function of ${this.vmlinux}`;
    }
    const address = base + ref.offset;
    const mapped = ref.module ? undefined : this.codeMap?.framesAt(address, toLocal);
    return { address, chain: mapped?.length ? mapped : this.source.inlineChainAt(address) };
  }

  /**
   * The kernel tree's root as the DWARF paths spell it (decode_stacktrace.sh's "auto" base
   * path): kernel_init's file with /init/main.c taken off.
   */
  basePath(): string | undefined {
    // The unit's name in its directory is that file, without reading the unit's line program
    // (a tenth of a short decode's time went into the one for init/main.c). With a code map,
    // the function's first line is in that file too, and no unit is read at all.
    const at = this.codeMap?.symbol('kernel_init') ?? this.source.images.kernelSymbols('kernel_init').find(isCode)?.value;
    const mapped = at === undefined ? undefined : this.codeMap?.framesAt(at, (p) => this.mapper.toLocal(p));
    const first = mapped?.[mapped.length - 1]?.location?.path;
    const fromMap = first ? /^(.*)\/init\/main\.c$/.exec(first) : null;
    if (fromMap) return fromMap[1];
    let file: string | undefined;
    try {
      const cu = at === undefined ? undefined : this.source.dwarf?.unitForAddress(at);
      if (cu?.name) file = this.source.mapper.toLocal(path.posix.isAbsolute(cu.name) ? cu.name : path.posix.join(cu.compDir, cu.name));
    } catch {
      file = undefined;
    }
    const m = file ? /^(.*)\/init\/main\.c$/.exec(file) : null;
    return m?.[1];
  }

  private readonly koFiles = new Map<string, string | undefined>();

  private koFile(name: string): string | undefined {
    if (!this.koFiles.has(name)) this.koFiles.set(name, findKo(name, this.moduleDirs.length ? this.moduleDirs : [path.dirname(this.vmlinux)]));
    return this.koFiles.get(name);
  }

  private readonly moduleMaps = new Map<string, CodeMap | undefined>();

  private moduleMap(file: string): CodeMap | undefined {
    if (!this.moduleMaps.has(file)) this.moduleMaps.set(file, openCodeMap(file));
    return this.moduleMaps.get(file);
  }

  /** The .ko files looked up that have no code map (for `qkd index` to make one). */
  unmappedModules(): string[] {
    return [...this.koFiles.values()].filter((f): f is string => f !== undefined && !this.moduleMaps.get(f));
  }

  /** A module's image, linked with its sections apart; or why there is none. */
  private module(name: string): Image | string {
    const known = this.modules.get(name);
    if (known !== undefined) return known;
    let result: Image | string;
    const file = this.koFile(name);
    if (!file) result = `no ${name}.ko with debug info under ${(this.moduleDirs.length ? this.moduleDirs : [path.dirname(this.vmlinux)]).join(', ')} (give its folder with --modules)`;
    else {
      try {
        result = this.link(name, file);
      } catch (e) {
        result = `${file} could not be read: ${messageOf(e)}`;
      }
    }
    this.modules.set(name, result);
    return result;
  }

  private link(name: string, file: string): Image {
    const image = dwarf().linkForLookup(name, file, this.nextBase);
    this.nextBase += MODULE_SPAN;
    this.source.addModule(image);
    return image;
  }
}

/** A symbol code can be at: a function, or an assembly label (entry_SYSCALL_64_after_hwframe has no type), as nm's t/T. */
function isCode(s: ElfSymbol): boolean {
  return s.type !== 'object' && s.value !== 0n;
}

/** `name.ko` (a `-` in the file name matching `_` in the module's, as decode_stacktrace.sh finds them) that has .debug_line. */
function findKo(name: string, dirs: readonly string[]): string | undefined {
  const want = name.replace(/-/g, '_');
  // The usual layout first (the .ko straight in a folder given): no walk of a build tree.
  for (const d of dirs) {
    for (const f of new Set([`${name}.ko`, `${want}.ko`, `${want.replace(/_/g, '-')}.ko`])) {
      const p = path.join(d, f);
      if (fs.existsSync(p) && hasLines(p)) return p;
    }
  }
  const visit = (dir: string, depth: number): string | undefined => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return undefined;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isFile() && e.name.endsWith('.ko') && e.name.slice(0, -3).replace(/-/g, '_') === want && hasLines(p)) return p;
    }
    for (const e of entries) {
      if (!e.isDirectory() || depth >= 8 || e.name.startsWith('.')) continue;
      const found = visit(path.join(dir, e.name), depth + 1);
      if (found) return found;
    }
    return undefined;
  };
  for (const d of dirs) {
    const found = visit(d, 0);
    if (found) return found;
  }
  return undefined;
}

function hasLines(file: string): boolean {
  try {
    const elf = ElfFile.open(file);
    try {
      return elf.section('.debug_line') !== undefined;
    } finally {
      elf.close();
    }
  } catch {
    return false;
  }
}
