/**
 * arm64 from the reset vector: where its kernel will run is decided early in boot, by
 * kaslr_early_init, called from __primary_switch while the MMU maps the image 1:1 (the PC is
 * a physical address). The instruction after that call sees the offset in x0 (its 2 MiB-aligned
 * part, the low bits being the seed for the linear map) and the image's physical misalignment
 * in x23, which head.S then ORs together as the kernel's offset. A breakpoint there tells the
 * offset before a single instruction runs at the randomized address, so breakpoints on early
 * functions (start_kernel) are placed in time.
 */
import type { KaslrProbe } from './kaslr';

const MiB2 = 0x200000n;
/** How far above the stopped PC (QEMU's boot stub at the bottom of RAM) the image is looked for. */
const SCAN = 64n;

export interface EarlyHook {
  /** Physical (= identity-mapped) address of the instruction after `bl kaslr_early_init`. */
  pa: bigint;
  /** The image's physical load address. */
  imagePa: bigint;
}

/** Where to break to learn arm64's offset, or undefined when this kernel or boot offers no such place. */
export async function arm64EarlyHook(p: KaslrProbe, pc: bigint): Promise<EarlyHook | undefined> {
  const text = p.symbol('_text');
  const sw = p.symbol('__primary_switch');
  const early = p.symbol('__pi_kaslr_early_init') ?? p.symbol('kaslr_early_init');
  if (text === undefined || sw === undefined || early === undefined) return undefined;
  const code = p.fileBytes(sw, 256);
  if (!code) return undefined;
  let after: bigint | undefined;
  for (let i = 0; i + 4 <= code.length && after === undefined; i += 4) {
    const w = code.readUInt32LE(i);
    if ((w & 0xfc000000) >>> 0 !== 0x94000000) continue;
    let imm = w & 0x3ffffff;
    if (imm & 0x2000000) imm -= 0x4000000;
    if (sw + BigInt(i) + BigInt(imm) * 4n === early) after = sw + BigInt(i) + 4n;
  }
  const header = p.fileBytes(text, 64);
  if (after === undefined || !header) return undefined;
  // QEMU loads the Image 2 MiB-aligned (plus its text_offset, 0 since 5.x) above its boot stub.
  const base = pc & ~(MiB2 - 1n);
  for (let k = 0n; k < SCAN; k++) {
    const pa = base + k * MiB2;
    const seen = await p.readPhysical(pa, 64);
    if (seen?.equals(header)) return { pa: pa + (after - text), imagePa: pa };
  }
  return undefined;
}

/** The kernel's offset from the registers at the hook: x0's 2 MiB-aligned part ORed with x23. */
export function earlyOffset(x0: bigint, x23: bigint): bigint {
  return (x0 & ~(MiB2 - 1n)) | x23;
}
