/**
 * Where the running kernel is: the KASLR offset between vmlinux's link-time addresses and the
 * ones the kernel runs at, found over a bare gdbstub by the reference tools' methods
 * (crash's page-table walk, register anchors, and the x86 probe over the at most 512 places
 * the kernel can be). Every candidate is proven by reading `linux_banner` where it would be and
 * finding vmlinux's own bytes there, so a wrong guess is never taken.
 */

/** What finding the offset needs of the stopped guest and of vmlinux. */
export interface KaslrProbe {
  readonly arch: string;
  /** A register of the stopped vCPU by its target.xml name; undefined when there is none. */
  register(name: string): Promise<bigint | undefined>;
  /** Guest memory as the stopped vCPU sees it; undefined when unreadable. */
  readVirtual(addr: bigint, length: number): Promise<Buffer | undefined>;
  readPhysical(addr: bigint, length: number): Promise<Buffer | undefined>;
  /** vmlinux's link-time value of a symbol. */
  symbol(name: string): bigint | undefined;
  /** vmlinux's bytes at a link-time address, from the file. */
  fileBytes(addr: bigint, length: number): Buffer | undefined;
}

export interface KaslrResult {
  /** Runtime address minus link-time address, for the kernel image. */
  offset: bigint;
  /** How it was found: 'page tables', 'VBAR_EL1', 'stvec', 'pc', 'probe'. */
  method: string;
  /** x86: the physical address the kernel was loaded at minus its default (phys_base). */
  physBase?: bigint;
}

const MiB2 = 0x200000n;
/** x86_64's __START_KERNEL_map: the kernel image is mapped in the 1 GiB above it. */
const X86_KERNEL_MAP = 0xffffffff80000000n;
const X86_PHYS_MASK = 0x000ffffffffff000n;
/** x86 KERNEL_IMAGE_SIZE with KASLR: the image lies somewhere in this 1 GiB window. */
const X86_IMAGE_WINDOW = 0x40000000n;
/** How much of linux_banner must match: "Linux version", the release and who built it. */
const BANNER_BYTES = 48;

/**
 * The offset of the running kernel, or undefined when no method finds one it can prove (the
 * kernel is not running yet, or its memory can't be read from this stop). `pc` is where the
 * stopped vCPU is, a last anchor when it is in kernel text.
 */
export async function findKaslrOffset(p: KaslrProbe, pc?: bigint): Promise<KaslrResult | undefined> {
  const banner = bannerOf(p);
  if (!banner || !(await pagingOn(p))) return undefined;
  const tried = new Set<bigint>();
  const check = async (offset: bigint, method: string, physBase?: bigint): Promise<KaslrResult | undefined> => {
    if (tried.has(offset)) return undefined;
    tried.add(offset);
    return (await bannerAt(p, banner, offset, physBase)) ? { offset, method, ...(physBase !== undefined ? { physBase } : {}) } : undefined;
  };
  if (p.arch === 'x86_64') {
    const walked = await x86PageTables(p);
    const found = walked && (await check(walked.offset, 'page tables', walked.physBase));
    if (found) return found;
  }
  const anchor = ANCHORS[p.arch];
  if (anchor) {
    let value: bigint | undefined;
    for (const name of anchor.registers) value ??= await p.register(name).catch(() => undefined);
    const link = p.symbol(anchor.symbol);
    const found = value !== undefined && link !== undefined && (await check(value - link, anchor.registers[0]));
    if (found) return found;
  }
  if (pc !== undefined) {
    for (const offset of pcCandidates(p, pc)) {
      const found = await check(offset, 'pc');
      if (found) return found;
    }
  }
  if (p.arch === 'x86_64') {
    // The kernel sits 2 MiB-aligned in a 1 GiB window: unmapped candidates fail in one reply.
    const text = p.symbol('_text');
    if (text === undefined) return undefined;
    for (let offset = 0n; text + offset < X86_KERNEL_MAP + X86_IMAGE_WINDOW; offset += MiB2) {
      const found = await check(offset, 'probe');
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Whether the MMU translates yet (x86 CR0.PG, arm64 SCTLR_EL1.M, riscv satp.MODE): before
 * that (the reset vector, the decompressor) the kernel has no virtual addresses to find.
 * Unknown registers count as on: the methods' own checks decide then.
 */
async function pagingOn(p: KaslrProbe): Promise<boolean> {
  const get = async (...names: string[]): Promise<bigint | undefined> => {
    for (const n of names) {
      const v = await p.register(n).catch(() => undefined);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  if (p.arch === 'x86_64') {
    const cr0 = await get('cr0');
    return cr0 === undefined || ((cr0 >> 31n) & 1n) === 1n;
  }
  if (p.arch === 'aarch64') {
    const sctlr = await get('SCTLR_EL1', 'SCTLR');
    return sctlr === undefined || (sctlr & 1n) === 1n;
  }
  if (p.arch === 'riscv64') {
    const satp = await get('satp');
    return satp === undefined || satp >> 60n !== 0n;
  }
  return true;
}

/** The register whose value is a known vmlinux address once the kernel runs. */
const ANCHORS: Record<string, { registers: string[]; symbol: string }> = {
  // The exception vectors (QEMU names the register either way); under KPTI they are the fixed
  // trampoline instead, and the check fails.
  aarch64: { registers: ['VBAR_EL1', 'VBAR'], symbol: 'vectors' },
  riscv64: { registers: ['stvec'], symbol: 'handle_exception' },
};

interface Banner {
  link: bigint;
  bytes: Buffer;
}

function bannerOf(p: KaslrProbe): Banner | undefined {
  const link = p.symbol('linux_banner');
  const bytes = link !== undefined ? p.fileBytes(link, BANNER_BYTES) : undefined;
  return link !== undefined && bytes && bytes.subarray(0, 14).toString('latin1') === 'Linux version ' ? { link, bytes } : undefined;
}

/** Whether vmlinux's banner is where `offset` puts it (through the physical load address when the stop's page tables lack the kernel: PTI in user mode). */
async function bannerAt(p: KaslrProbe, banner: Banner, offset: bigint, physBase?: bigint): Promise<boolean> {
  const seen = await p.readVirtual(banner.link + offset, BANNER_BYTES).catch(() => undefined);
  if (seen) return seen.equals(banner.bytes);
  if (physBase === undefined) return false;
  const phys = await p.readPhysical(banner.link - X86_KERNEL_MAP + physBase, BANNER_BYTES).catch(() => undefined);
  return phys !== undefined && phys.equals(banner.bytes);
}

/**
 * crash's find_kernel_start: the kernel's page-table root (CR3 without its PCID bits and
 * PTI's user-copy bit) to the 2 MiB entries of __START_KERNEL_map. __startup_64 clears every
 * entry below the kernel's text, so the first present one is `_text`.
 */
async function x86PageTables(p: KaslrProbe): Promise<{ offset: bigint; physBase: bigint } | undefined> {
  const cr3 = await p.register('cr3').catch(() => undefined);
  const cr4 = (await p.register('cr4').catch(() => undefined)) ?? 0n;
  const text = p.symbol('_text');
  if (!cr3 || text === undefined) return undefined;
  let table = cr3 & X86_PHYS_MASK & ~0x1000n;
  const shifts = ((cr4 >> 12n) & 1n) === 1n ? [48n, 39n, 30n] : [39n, 30n];
  for (const shift of shifts) {
    const at = table + ((X86_KERNEL_MAP >> shift) & 511n) * 8n;
    const e = await p.readPhysical(at, 8).catch(() => undefined);
    if (!e) return undefined;
    const entry = e.readBigUInt64LE(0);
    // Not present, or a 1 GiB page where the kernel keeps 2 MiB ones.
    if ((entry & 1n) === 0n || (entry & 0x80n) !== 0n) return undefined;
    table = entry & X86_PHYS_MASK;
  }
  const pd = await p.readPhysical(table, 4096).catch(() => undefined);
  if (!pd || pd.length < 4096) return undefined;
  for (let i = 0; i < 512; i++) {
    const entry = pd.readBigUInt64LE(i * 8);
    if ((entry & 1n) === 0n) continue;
    const runtimeText = X86_KERNEL_MAP + BigInt(i) * MiB2;
    const phys = entry & X86_PHYS_MASK & ~(MiB2 - 1n);
    return { offset: runtimeText - text, physBase: phys - (text - X86_KERNEL_MAP) };
  }
  return undefined;
}

/**
 * Offsets that put the stopped PC in vmlinux's text: the offset is a multiple of 2 MiB on x86
 * (CONFIG_PHYSICAL_ALIGN) and arm64 (kaslr_early_init's mask), so the PC's low 21 bits pick
 * one link address in each 2 MiB of text.
 */
function pcCandidates(p: KaslrProbe, pc: bigint): bigint[] {
  const start = p.symbol('_stext') ?? p.symbol('_text');
  const end = p.symbol('_etext');
  if (start === undefined || end === undefined || end <= start) return [];
  const out: bigint[] = [];
  for (let y = start - (start % MiB2) + (pc % MiB2); y < end; y += MiB2) if (y >= start) out.push(pc - y);
  return out;
}
