/**
 * Where an image runs relative to where it was linked: vmlinux under KASLR runs `bias` bytes
 * above its link addresses. Parsed ELF and DWARF stay at link addresses (nothing built from
 * them goes stale when the bias is learned); addresses are translated where the engine meets
 * them. Only addresses inside the image's allocated sections move: x86's per-CPU symbols
 * before 6.15 are offsets from 0 (`.data..percpu` has address 0) and the kernel never
 * relocates them, so they are left alone by construction.
 */
import type { ElfSection, ElfSymbol } from './elf';

const SHF_ALLOC = 0x2n;

export class Relocation {
  private biasValue = 0n;

  /** `lo`..`hi` inclusive: the link-time span of the image's allocated sections. */
  constructor(
    readonly lo: bigint,
    readonly hi: bigint,
  ) {}

  /** The span of the sections the kernel loads, those with a nonzero address. */
  static ofSections(sections: readonly ElfSection[]): Relocation {
    let lo: bigint | undefined;
    let hi: bigint | undefined;
    for (const s of sections) {
      if ((s.flags & SHF_ALLOC) === 0n || s.addr === 0n || s.size === 0) continue;
      const end = s.addr + BigInt(s.size);
      if (lo === undefined || s.addr < lo) lo = s.addr;
      if (hi === undefined || end > hi) hi = end;
    }
    return lo === undefined || hi === undefined ? IDENTITY : new Relocation(lo, hi);
  }

  get bias(): bigint {
    return this.biasValue;
  }

  set bias(b: bigint) {
    if (this === IDENTITY && b !== 0n) throw new Error('the identity relocation has no bias');
    this.biasValue = b;
  }

  /** Whether a link-time address is one of the image's. */
  holds(link: bigint): boolean {
    return link >= this.lo && link <= this.hi;
  }

  /** A link-time address as the running kernel has it. */
  toRuntime(link: bigint): bigint {
    return this.biasValue !== 0n && this.holds(link) ? link + this.biasValue : link;
  }

  /**
   * A runtime address as the image's DWARF and symbols know it. Undefined for an address the
   * image does not hold at run time although it would at link time (it is not the kernel's:
   * answering from the link-time image there would name the wrong code).
   */
  toLink(runtime: bigint): bigint | undefined {
    if (this.biasValue === 0n) return runtime;
    const link = runtime - this.biasValue;
    if (this.holds(link)) return link;
    return this.holds(runtime) ? undefined : runtime;
  }

  symbolOut(s: ElfSymbol): ElfSymbol {
    return this.biasValue === 0n || !this.holds(s.value) ? s : { ...s, value: s.value + this.biasValue };
  }
}

/** Modules are linked at their runtime addresses, and a kernel without KASLR runs where it was linked. */
export const IDENTITY = new Relocation(0n, -1n);
