/**
 * Where vmlinux runs in this boot (KASLR): found at the first stop inside the running kernel
 * (kernel/kaslr.ts), then applied everywhere at once. The image set translates between link
 * and runtime addresses from then on, and what already sits at runtime addresses moves: the
 * placed breakpoints and the module hooks.
 */
import { arm64EarlyHook, earlyOffset } from '../kernel/earlykaslr';
import { findKaslrOffset, type KaslrProbe, type KaslrResult } from '../kernel/kaslr';
import { x86BootHook, x86EarlyOffset } from '../kernel/x86early';
import * as P from '../rsp/packets';
import type { StopReply } from '../rsp/stop';
import type { ImageSet } from '../symbols/imageset';
import { liftRanges, rebasePlaced, type BreakpointHost, type PlacedBreakpoint } from './bptypes';
import type { KernelTarget } from './target';

const MiB2 = 0x200000n;
/** x86_64's __START_KERNEL_map, and the 1 GiB window above it the image is placed in. */
const X86_KERNEL_MAP = 0xffffffff80000000n;
const X86_IMAGE_WINDOW = 0x40000000n;

export interface KernelBaseDeps {
  target: KernelTarget;
  images: ImageSet;
  host: BreakpointHost;
  /** Every function and line breakpoint (pending ones included). */
  placed(): PlacedBreakpoint[];
  /** vmlinux moved: the engine's own hooks (module tracking, exception filters) follow. */
  rebased(to: (addr: bigint) => bigint): Promise<void>;
  /** Place the breakpoints that waited for the offset. */
  placePending(): Promise<void>;
  /** What the stop had read is stale. */
  forget(): void;
  log(message: string): void;
  /** The file QEMU boots (-kernel), read when x86's decompressor hook is looked for. */
  bootImage?(): Buffer | undefined;
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
    /** What describe() says while nothing was found (why the base is fixed). */
    private readonly note?: string,
  ) {
    this.known = mode === 'fixed';
  }

  get isKnown(): boolean {
    return this.known;
  }

  /** Why a kernel breakpoint can't be placed yet, while the offset is unknown. */
  unknownReason(): string | undefined {
    if (this.known) return undefined;
    if (this.early?.arch === 'aarch64') return 'pending: placed as soon as the kernel chooses its KASLR offset, early in boot (a hidden breakpoint after kaslr_early_init tells it)';
    if (this.early || this.returnWatch !== undefined) return 'pending: placed as soon as the kernel is decompressed, before it runs (a hidden breakpoint where the decompressor jumps to it tells its KASLR offset)';
    return 'pending: where this kernel runs (its KASLR offset) is found at its first stop; the breakpoint is placed then. Pause once it has booted, or launch with "kaslr": false to boot it at its link addresses.';
  }

  /** Look for the offset at a stop of `tid`, once per boot; apply it when it differs from the one in use. */
  async atStop(tid: number): Promise<void> {
    if (this.known) return;
    const t0 = performance.now();
    const pc = await this.d.target.pc(tid).catch(() => undefined);
    if (pc !== undefined && !this.early && this.d.target.breakpointsInMemory === false) await this.armEarly(tid, pc);
    const r = await findKaslrOffset(this.probe(tid), pc).catch(() => undefined);
    if (!r) return;
    this.known = true;
    this.found = { ...r, ms: performance.now() - t0 };
    await this.liftCandidates();
    if (r.offset !== this.d.images.kernelRelocation.bias) await this.apply(r.offset);
    await this.d.placePending();
    this.d.log(this.describe() ?? '');
  }

  /** The hidden breakpoint that tells the offset early in boot, while armed. */
  private early: { id: number; pa: bigint; arch: string } | undefined;
  /** Where the hook goes, kept for the next boot (the image loads at the same place). */
  private earlyPa: bigint | undefined;

  /**
   * At the reset stop (paging off): arm the hook that tells the offset before the kernel runs
   * at it. arm64: after kaslr_early_init, in the image found in memory; x86_64: where the
   * bzImage's decompressor jumps to the kernel it relocated.
   */
  private async armEarly(tid: number, pc: bigint): Promise<void> {
    const arch = this.d.target.arch.name;
    if (arch === 'aarch64') {
      // QEMU names SCTLR_EL1 "SCTLR": the MMU on means the reset is long past.
      const sctlr = await this.d.target.readRegister(tid, this.d.target.register('SCTLR') ? 'SCTLR' : 'SCTLR_EL1').catch(() => undefined);
      if (sctlr !== undefined && (sctlr & 1n) === 1n) return;
      this.earlyPa ??= (await arm64EarlyHook(this.probe(tid), pc).catch(() => undefined))?.pa;
    } else if (arch === 'x86_64') {
      const cr0 = await this.d.target.readRegister(tid, 'cr0').catch(() => undefined);
      if (cr0 === undefined || (cr0 & 0x80000000n) !== 0n) return;
      if (this.earlyPa === undefined) {
        const image = this.d.bootImage?.();
        this.earlyPa = image ? x86BootHook(image)?.pa : undefined;
      }
    }
    await this.armHook();
  }

  private async armHook(): Promise<void> {
    if (this.earlyPa === undefined || this.early || this.d.target.breakpointsInMemory !== false) return;
    const id = this.d.host.newId();
    await this.d.host.bps.add(this.earlyPa, id).catch(() => undefined);
    if (this.d.host.bps.idsAt(this.earlyPa).includes(id)) this.early = { id, pa: this.earlyPa, arch: this.d.target.arch.name };
  }

  /**
   * A stop's breakpoint ids without the early hook's: at the hook, the offset is read (arm64:
   * from the registers; x86: from the relocated image) and applied, the breakpoints waiting for
   * it placed, and the guest goes on. Should x86's image not prove an offset, the breakpoints
   * are armed at every candidate instead, from here on, as without the hook.
   */
  async takeEarly(ids: number[], tid: number): Promise<number[]> {
    const e = this.early;
    if (!e || !ids.includes(e.id)) return ids;
    const t0 = performance.now();
    this.early = undefined;
    await this.d.host.bps.remove(e.pa, e.id).catch(() => undefined);
    const rest = ids.filter((i) => i !== e.id);
    if (e.arch === 'aarch64') {
      const x0 = await this.d.target.readRegister(tid, 'x0');
      const x23 = await this.d.target.readRegister(tid, 'x23');
      await this.learnt({ offset: earlyOffset(x0, x23), method: 'kaslr_early_init' }, t0);
      return rest;
    }
    // x86, before decompressing: watch extract_kernel's return address be read back by its ret.
    const sp = await this.d.target.readRegister(tid, 'rsp').catch(() => undefined);
    const slot = sp !== undefined ? sp - 8n : undefined;
    if (slot !== undefined && (await P.insertBreakpoint(this.d.target.rsp, 'read', slot, 8).then(() => true, () => false))) this.returnWatch = slot;
    else await this.d.placePending();
    return rest;
  }

  /** x86: the return-address slot watched until extract_kernel returns. */
  private returnWatch: bigint | undefined;

  /**
   * Whether a stop no breakpoint or watchpoint of the user's explains is the engine's own:
   * x86's extract_kernel returning. The offset is then read from the relocated image; should
   * it not prove one, the breakpoints are armed at every candidate instead, from here on.
   */
  async takeHidden(stop: StopReply, tid: number): Promise<boolean> {
    const slot = this.returnWatch;
    const v = stop.kind === 'signal' ? (stop.pairs.get('rwatch') ?? stop.pairs.get('awatch')) : undefined;
    if (slot === undefined || v === undefined) return false;
    const addr = BigInt('0x' + (v || '0'));
    if (addr < slot || addr >= slot + 8n) return false;
    const t0 = performance.now();
    this.returnWatch = undefined;
    await P.removeBreakpoint(this.d.target.rsp, 'read', slot, 8).catch(() => undefined);
    const rax = await this.d.target.readRegister(tid, 'rax').catch(() => undefined);
    const found = rax !== undefined ? await x86EarlyOffset(this.probe(tid), rax).catch(() => undefined) : undefined;
    if (found) await this.learnt(found, t0);
    else await this.d.placePending();
    return true;
  }

  private async learnt(found: KaslrResult, t0: number): Promise<void> {
    this.known = true;
    this.found = { ...found, ms: performance.now() - t0 };
    if (found.offset !== this.d.images.kernelRelocation.bias) await this.apply(found.offset);
    await this.d.placePending();
    this.d.log(this.describe() ?? '');
  }

  /** The Debug Console's line about the offset found, once found. */
  describe(): string | undefined {
    const f = this.found;
    if (!f) return this.note;
    const phys = f.physBase !== undefined ? `, physical base 0x${f.physBase.toString(16)}` : '';
    return `KASLR: vmlinux runs at offset 0x${f.offset.toString(16)} from its link addresses${phys} (found by ${f.method} in ${f.ms.toFixed(1)} ms).`;
  }

  /**
   * Where a breakpoint can be armed while the offset is unknown: x86_64's kernel runs 2 MiB
   * aligned at or above its link address, within the 1 GiB above __START_KERNEL_map, so every
   * place is known in advance. Only under TCG, whose breakpoints are unlimited and outside
   * guest memory; KVM writes each one into memory that is not the kernel's yet.
   */
  candidateShifts(): readonly bigint[] | undefined {
    if (this.known || this.early || this.returnWatch !== undefined || this.d.target.arch.name !== 'x86_64' || this.d.target.breakpointsInMemory !== false) return undefined;
    if (!this.shifts) {
      const rel = this.d.images.kernelRelocation;
      const out: bigint[] = [];
      for (let k = 0n; rel.hi + k <= X86_KERNEL_MAP + X86_IMAGE_WINDOW; k += MiB2) out.push(k);
      this.shifts = out;
    }
    return this.shifts;
  }
  private shifts: bigint[] | undefined;

  /** The offset is known: breakpoints armed at every candidate go back to pending, to be placed where it is. */
  private async liftCandidates(): Promise<void> {
    for (const p of this.d.placed()) {
      if (!p.candidates) continue;
      await this.d.host.bps.removeAll(p.addresses, p.id).catch(() => undefined);
      p.addresses = [];
      p.candidates = false;
    }
  }

  /**
   * The guest is rebooted: the next boot chooses its own offset. vmlinux's breakpoints go back
   * to pending until it is found again (they would sit where the last boot had the code).
   */
  async reboot(): Promise<void> {
    if (this.mode === 'fixed') return;
    this.known = false;
    // The next boot's image loads where this one's did: the hook goes back before it runs.
    if (this.returnWatch !== undefined) await P.removeBreakpoint(this.d.target.rsp, 'read', this.returnWatch, 8).catch(() => undefined);
    this.returnWatch = undefined;
    await this.armHook();
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
    await this.d.rebased(to);
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
