/**
 * Where vmlinux runs in this boot (KASLR): found at the first stop inside the running kernel
 * (kernel/kaslr.ts), then applied everywhere at once. The image set translates between link
 * and runtime addresses from then on, and what already sits at runtime addresses moves: the
 * placed breakpoints and the module hooks.
 */
import { findKaslrOffset, type KaslrProbe, type KaslrResult } from '../kernel/kaslr';
import type { ImageSet } from '../symbols/imageset';
import { liftRanges, rebasePlaced, type BreakpointHost, type PlacedBreakpoint } from './bptypes';
import type { ModuleTracker } from './moduletracker';
import type { KernelTarget } from './target';

export interface KernelBaseDeps {
  target: KernelTarget;
  images: ImageSet;
  host: BreakpointHost;
  /** Every function and line breakpoint (pending ones included). */
  placed(): PlacedBreakpoint[];
  tracker(): ModuleTracker | undefined;
  /** Place the breakpoints that waited for the offset. */
  placePending(): Promise<void>;
  /** What the stop had read is stale. */
  forget(): void;
  log(message: string): void;
}

export class KernelBase {
  /** Whether this boot's offset is known: from the start with nokaslr, else once found. */
  private known: boolean;
  /** The last offset found and how, for the kernel info line and the benchmark. */
  found: (KaslrResult & { ms: number }) | undefined;

  constructor(
    private readonly d: KernelBaseDeps,
    /** 'fixed': the kernel runs at its link addresses (nokaslr); 'find': look at each stop until found. */
    private readonly mode: 'fixed' | 'find',
  ) {
    this.known = mode === 'fixed';
  }

  get isKnown(): boolean {
    return this.known;
  }

  /** Why a kernel breakpoint can't be placed yet, while the offset is unknown. */
  unknownReason(): string | undefined {
    if (this.known) return undefined;
    return 'pending: where this kernel runs (its KASLR offset) is found at its first stop; the breakpoint is placed then. Pause once it has booted, or launch with "kaslr": false to boot it at its link addresses.';
  }

  /** Look for the offset at a stop of `tid`, once per boot; apply it when it differs from the one in use. */
  async atStop(tid: number): Promise<void> {
    if (this.known) return;
    const t0 = performance.now();
    const pc = await this.d.target.pc(tid).catch(() => undefined);
    const r = await findKaslrOffset(this.probe(tid), pc).catch(() => undefined);
    if (!r) return;
    this.known = true;
    this.found = { ...r, ms: performance.now() - t0 };
    if (r.offset !== this.d.images.kernelRelocation.bias) await this.apply(r.offset);
    await this.d.placePending();
    this.d.log(this.describe() ?? '');
  }

  /** The Debug Console's line about the offset found, once found. */
  describe(): string | undefined {
    const f = this.found;
    if (!f) return undefined;
    const phys = f.physBase !== undefined ? `, physical base 0x${f.physBase.toString(16)}` : '';
    return `KASLR: vmlinux runs at offset 0x${f.offset.toString(16)} from its link addresses${phys} (found by ${f.method} in ${f.ms.toFixed(1)} ms).`;
  }

  /**
   * The guest is rebooted: the next boot chooses its own offset. vmlinux's breakpoints go back
   * to pending until it is found again (they would sit where the last boot had the code).
   */
  async reboot(): Promise<void> {
    if (this.mode === 'fixed') return;
    this.known = false;
    const rel = this.d.images.kernelRelocation;
    const inKernel = (a: bigint): boolean => rel.holds(rel.toLink(a) ?? a) && this.d.images.moduleAt(a) === undefined;
    await liftRanges(this.d.host, this.d.placed(), inKernel, this.unknownReason() ?? '');
  }

  private async apply(bias: bigint): Promise<void> {
    const rel = this.d.images.kernelRelocation;
    const old = rel.bias;
    // From where an address is now to where it goes: only vmlinux's own addresses move.
    const to = (a: bigint): bigint => (rel.holds(a - old) ? a - old + bias : a);
    this.d.images.setKernelBias(bias);
    await rebasePlaced(this.d.host, this.d.placed(), to);
    await this.d.tracker()?.rebase(to);
    this.d.forget();
  }

  private probe(tid: number): KaslrProbe {
    const t = this.d.target;
    const kernel = this.d.images.kernel;
    return {
      arch: t.arch.name,
      register: (name) => (t.register(name) ? t.readRegister(tid, name) : Promise.resolve(undefined)),
      readVirtual: (addr, n) => t.readMemory(addr, n, tid).catch(() => undefined),
      readPhysical: async (addr, n) => {
        const b = await t.readMemoryPartial(addr, n, undefined, true).catch(() => undefined);
        return b && b.length === n ? b : undefined;
      },
      // Link-time values: the finder compares them with where the kernel runs.
      symbol: (name) => kernel.symbols.lookup(name).find((s) => s.value !== 0n)?.value,
      fileBytes: (addr, n) => kernel.elf.readVirtual(addr, n),
    };
  }
}
