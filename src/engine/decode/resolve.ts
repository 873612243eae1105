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
import { Dwarf } from '../../symbols/dwarf/dwarf';
import { ElfFile, type ElfSymbol } from '../../symbols/elf';
import type { Image } from '../../symbols/imageset';
import { linkModule } from '../../symbols/kolink';
import { SymbolTable } from '../../symbols/symtab';
import { messageOf } from '../../util/errors';
import type { FrameDescription } from '../sourceinfo';
import type { SourceSet } from '../sources';
import { sourceInfo, symbolTable } from '../vmlinux';
import type { CodeRef } from '../../kernel/logrefs';

export interface Resolution {
  /** The address looked up: the symbol's (in vmlinux, at its link address) plus the offset. */
  address: bigint;
  /** Innermost first: the line at the address, then each inlined call's call site. */
  chain: FrameDescription[];
}

const SHF_ALLOC = 0x2n;
/** Where the decoder lays out modules: apart from vmlinux and from each other. */
const MODULE_BASE = 0xffff_ff00_0000_0000n;
const MODULE_SPAN = 0x1000_0000n;

export class Decoder {
  private readonly modules = new Map<string, Image | string>();
  private nextBase = MODULE_BASE;

  private constructor(
    readonly vmlinux: string,
    readonly source: SourceSet,
    private readonly moduleDirs: readonly string[],
    private readonly close: () => void,
  ) {}

  static open(vmlinux: string, moduleDirs: readonly string[]): Decoder {
    const elf = ElfFile.open(vmlinux);
    const source = sourceInfo(elf, symbolTable(elf, vmlinux), vmlinux, {});
    return new Decoder(vmlinux, source, moduleDirs, () => elf.close());
  }

  dispose(): void {
    this.close();
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
    if (ref.module) {
      const image = this.module(ref.module);
      if (typeof image === 'string') return image;
      base = image.symbols.lookup(ref.func).find(isCode)?.value;
      if (base === undefined) return `${ref.func} is not a function of ${image.file}`;
    } else {
      base = this.source.images.kernelSymbols(ref.func).find(isCode)?.value;
      if (base === undefined) return `${ref.func} is not a function of ${this.vmlinux}`;
    }
    const address = base + ref.offset;
    return { address, chain: this.source.inlineChainAt(address) };
  }

  /**
   * The kernel tree's root as the DWARF paths spell it (decode_stacktrace.sh's "auto" base
   * path): kernel_init's file with /init/main.c taken off.
   */
  basePath(): string | undefined {
    // The unit's name in its directory is that file, without reading the unit's line program
    // (a tenth of a short decode's time went into the one for init/main.c).
    const at = this.source.images.kernelSymbols('kernel_init').find(isCode)?.value;
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

  /** A module's image, linked with its sections apart; or why there is none. */
  private module(name: string): Image | string {
    const known = this.modules.get(name);
    if (known !== undefined) return known;
    let result: Image | string;
    const file = findKo(name, this.moduleDirs.length ? this.moduleDirs : [path.dirname(this.vmlinux)]);
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
    const bytes = fs.readFileSync(file);
    const placement = new Map<string, bigint>();
    let at = this.nextBase;
    for (const s of ElfFile.fromBuffer(file, bytes).sections) {
      if ((s.flags & SHF_ALLOC) === 0n || s.size === 0 || placement.has(s.name)) continue;
      placement.set(s.name, at);
      at = (at + BigInt(s.size) + 0xfffn) & ~0xfffn;
    }
    this.nextBase += MODULE_SPAN;
    const elf = linkModule(file, bytes, placement).elf;
    const ranges = [...placement].map(([sec, start]) => ({ start, end: start + BigInt(elf.sections.find((s) => s.name === sec)?.size ?? 0) }));
    const image: Image = { name, kind: 'module', file, elf, symbols: SymbolTable.fromElf(elf), dwarf: Dwarf.open(elf), ranges };
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
