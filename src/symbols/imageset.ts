/**
 * The images a kernel's code comes from: vmlinux, and each loaded module linked at the
 * addresses the kernel gave it (symbols/kolink.ts), so every image's symbols and DWARF
 * already hold runtime addresses. Lookups by address pick the module whose sections cover
 * it and fall back to vmlinux; lookups by name ask vmlinux first, then the modules in load
 * order, as gdb's symbol search does over its objfiles.
 */
import type { Dwarf } from './dwarf/dwarf';
import type { ElfFile, ElfSymbol } from './elf';
import { IDENTITY, type Relocation } from './relocation';
import type { Location, SymbolLookup, SymbolTable } from './symtab';

export interface AddressRange {
  start: bigint;
  /** One past the last byte. */
  end: bigint;
}

export interface Image {
  /** 'vmlinux', or the module's name as the kernel spells it. */
  readonly name: string;
  readonly kind: 'kernel' | 'module';
  /** The host file the symbols came from. */
  readonly file: string;
  readonly elf: ElfFile;
  readonly symbols: SymbolTable;
  readonly dwarf: Dwarf | undefined;
  /** Where the image's code and data are in the guest (empty for vmlinux: it is the fallback). */
  readonly ranges: readonly AddressRange[];
  /** vmlinux's: where it runs relative to its link addresses (KASLR). Modules are linked where they run. */
  readonly relocation?: Relocation;
}

export function inRanges(ranges: readonly AddressRange[], addr: bigint): boolean {
  return ranges.some((r) => addr >= r.start && addr < r.end);
}

export class ImageSet implements SymbolLookup {
  private readonly modules = new Map<string, Image>();
  /** Bumped on every change, so derived caches know when to drop what they hold. */
  generation = 0;

  constructor(readonly kernel: Image) {}

  get size(): number {
    let n = this.kernel.symbols.size;
    for (const m of this.modules.values()) n += m.symbols.size;
    return n;
  }

  add(image: Image): void {
    this.modules.set(image.name, image);
    this.generation++;
  }

  remove(name: string): Image | undefined {
    const m = this.modules.get(name);
    if (m) {
      this.modules.delete(name);
      this.generation++;
    }
    return m;
  }

  module(name: string): Image | undefined {
    return this.modules.get(name);
  }

  loadedModules(): Image[] {
    return [...this.modules.values()];
  }

  /** The module whose sections hold addr, or undefined (vmlinux's code, or nobody's). */
  moduleAt(addr: bigint): Image | undefined {
    for (const m of this.modules.values()) if (inRanges(m.ranges, addr)) return m;
    return undefined;
  }

  imageAt(addr: bigint): Image {
    return this.moduleAt(addr) ?? this.kernel;
  }

  /** vmlinux's relocation (identity without KASLR). */
  get kernelRelocation(): Relocation {
    return this.kernel.relocation ?? IDENTITY;
  }

  /** Where vmlinux runs now, learned at a stop; every kernel answer moves with it. */
  setKernelBias(bias: bigint): void {
    this.kernelRelocation.bias = bias;
    this.generation++;
  }

  /** vmlinux's symbols of this name, at their runtime addresses. */
  kernelSymbols(name: string): ElfSymbol[] {
    const rel = this.kernelRelocation;
    return this.kernel.symbols.lookup(name).map((sym) => rel.symbolOut(sym));
  }

  lookup(name: string): ElfSymbol[] {
    const out = this.kernelSymbols(name);
    for (const m of this.modules.values()) for (const s of m.symbols.lookup(name)) if (s.value !== 0n && inRanges(m.ranges, s.value)) out.push(s);
    return out;
  }

  locate(addr: bigint): Location | undefined {
    const m = this.moduleAt(addr);
    return m ? m.symbols.locate(addr) : this.kernelLocation(addr, (a) => this.kernel.symbols.locate(a));
  }

  locateData(addr: bigint): Location | undefined {
    const m = this.moduleAt(addr);
    return m ? m.symbols.locateData(addr) : this.kernelLocation(addr, (a) => this.kernel.symbols.locateData(a));
  }

  /** A vmlinux lookup by runtime address, its symbol given back at its runtime address. */
  private kernelLocation(addr: bigint, find: (link: bigint) => Location | undefined): Location | undefined {
    const rel = this.kernelRelocation;
    const link = rel.toLink(addr);
    const loc = link === undefined ? undefined : find(link);
    return loc && { symbol: rel.symbolOut(loc.symbol), offset: loc.offset };
  }

  describe(addr: bigint): string {
    const m = this.moduleAt(addr);
    if (!m) {
      const loc = this.locate(addr);
      if (!loc) return `0x${addr.toString(16)}`;
      return loc.offset === 0n ? loc.symbol.name : `${loc.symbol.name}+0x${loc.offset.toString(16)}`;
    }
    // The kernel's own notation for a module's code (`func+0x1a [qkd_sample]`), as in an Oops.
    const loc = m.symbols.locate(addr);
    if (!loc) return `0x${addr.toString(16)} [${m.name}]`;
    return `${loc.offset === 0n ? loc.symbol.name : `${loc.symbol.name}+0x${loc.offset.toString(16)}`} [${m.name}]`;
  }
}
