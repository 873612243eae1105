/**
 * x86_64 from the reset vector: a bzImage's decompressor chooses where the kernel runs
 * (choose_random_location, inside extract_kernel), decompresses it, applies its relocations
 * for that offset and returns where it put it, then jumps there (compressed/head_64.S:
 * `call extract_kernel; movq %r15, %rsi; jmp *%rax`). A hidden breakpoint on that call, where
 * the decompressor runs after copying itself (identity-mapped, so the PC is physical), is hit
 * before the decompression; a read watchpoint on the return address it pushed then stops the
 * guest at extract_kernel's `ret`, with the kernel in memory, relocated, and not one
 * instruction of it run. The offset is read from the relocated image itself.
 *
 * Why not simpler: a breakpoint on the jump shares its page with the xz decoder's hot loops,
 * and TCG translates a page holding a breakpoint one instruction at a time (the decompressor
 * runs 8 times slower); a breakpoint at each of the ~500 places the kernel may run costs
 * TCG a scan of all of them per translation block (12 times slower). The watchpoint costs
 * only a slow path for the accesses to one stack page.
 */
import type { KaslrProbe, KaslrResult } from './kaslr';

const MiB2 = 0x200000n;
/** compressed/head_64.S: `movl BP_init_size(%rsi), %ebx; subl $rva(_end), %ebx`. */
const INIT_SIZE_SUB = Buffer.from('8b9e6002000081eb', 'hex');
/** `call extract_kernel` (e8 rel32), then `movq %r15, %rsi; jmp *%rax`. */
const JUMP_TO_KERNEL = Buffer.from('4c89feffe0', 'hex');
/** How much of a table of pointers is compared to read the offset from them. */
const WINDOW = 0x1000;
/**
 * Where vmlinux holds pointers into itself: the system call table (function pointers in
 * .rodata), then init_task (its list heads point at itself).
 */
const POINTER_TABLES = ['sys_call_table', 'init_task'];
/** How much of linux_banner must match where the image is said to be. */
const BANNER_BYTES = 48;

export interface BootHook {
  /** Physical (= identity-mapped) address of the decompressor's `call extract_kernel`. */
  pa: bigint;
  /** Where the decompressor copies itself before it decompresses. */
  relocatedBase: bigint;
}

/** The boot protocol fields the decompressor uses, or undefined when `image` is not a bzImage. */
function bootHeader(image: Buffer): { setupSects: number; code32: bigint; align: bigint; pref: bigint; initSize: bigint } | undefined {
  if (image.length < 0x268 || image.toString('latin1', 0x202, 0x206) !== 'HdrS' || image.readUInt16LE(0x206) < 0x20a) return undefined;
  return {
    setupSects: image[0x1f1] || 4,
    code32: BigInt(image.readUInt32LE(0x214)),
    align: BigInt(image.readUInt32LE(0x230)),
    pref: image.readBigUInt64LE(0x258),
    initSize: BigInt(image.readUInt32LE(0x260)),
  };
}

/**
 * Where to break in a bzImage's decompressor, or undefined when `image` is not a 64-bit
 * relocatable bzImage whose decompressor this recognizes. The address is computed as
 * compressed/head_64.S computes it: the load address (code32_start, where QEMU's loader puts
 * the protected-mode code) aligned up to kernel_alignment, at least LOAD_PHYSICAL_ADDR
 * (pref_address), plus init_size minus the decompressor's own size.
 */
export function x86BootHook(image: Buffer): BootHook | undefined {
  const h = bootHeader(image);
  if (!h || h.align === 0n) return undefined;
  const pm = image.subarray((h.setupSects + 1) * 512);
  const sub = pm.indexOf(INIT_SIZE_SUB);
  if (sub < 0 || sub + 12 > pm.length) return undefined;
  const rvaEnd = BigInt(pm.readUInt32LE(sub + INIT_SIZE_SUB.length));
  let jump = -1;
  for (let from = 0; (jump = pm.indexOf(JUMP_TO_KERNEL, from)) >= 0; from = jump + 1) {
    if (jump >= 5 && pm[jump - 5] === 0xe8) break;
  }
  if (jump < 0) return undefined;
  let base = (h.code32 + h.align - 1n) & ~(h.align - 1n);
  if (base < h.pref) base = h.pref;
  const relocatedBase = base + h.initSize - rvaEnd;
  return { pa: relocatedBase + BigInt(jump - 5), relocatedBase };
}

/**
 * The kernel's offset once extract_kernel returned: `entry` (rax) is where the kernel was decompressed
 * (startup_64 at its physical load address). The image is proven there by linux_banner, then
 * the offset is what the decompressor added to the pointers in one of its pointer tables.
 */
export async function x86EarlyOffset(p: KaslrProbe, entry: bigint): Promise<KaslrResult | undefined> {
  const text = p.symbol('_text');
  const end = p.symbol('_end');
  const banner = p.symbol('linux_banner');
  const startup = p.symbol('startup_64') ?? text;
  if (text === undefined || end === undefined || banner === undefined || startup === undefined) return undefined;
  const pa = entry - (startup - text);
  if (pa & (MiB2 - 1n)) return undefined;
  const want = p.fileBytes(banner, BANNER_BYTES);
  const seen = await p.readPhysical(pa + (banner - text), BANNER_BYTES);
  if (!want || !seen?.equals(want)) return undefined;
  let offset: bigint | undefined;
  for (const at of POINTER_TABLES.map((n) => p.symbol(n))) {
    if (at !== undefined) offset ??= await pointerShift(p, pa + (at - text), at, text, end);
  }
  if (offset === undefined) return undefined;
  // _text's link-time physical address is LOAD_PHYSICAL_ADDR, the same as its offset in the 1 GiB map.
  const linkPa = text & 0x3fffffffn;
  return { offset, method: 'extract_kernel', physBase: pa - linkPa };
}

/**
 * What the decompressor added to the pointers at `link` (a link-time address, now at physical
 * `pa`): every 64-bit word vmlinux links to an address inside itself holds that address plus
 * the offset now. Undefined unless there are enough such words and they agree.
 */
async function pointerShift(p: KaslrProbe, pa: bigint, link: bigint, text: bigint, end: bigint): Promise<bigint | undefined> {
  const file = p.fileBytes(link, WINDOW);
  const mem = await p.readPhysical(pa, WINDOW);
  if (!file || !mem) return undefined;
  const votes = new Map<bigint, number>();
  let pointers = 0;
  for (let i = 0; i + 8 <= file.length; i += 8) {
    const linked = file.readBigUInt64LE(i);
    if (linked < text || linked >= end) continue;
    pointers++;
    const d = BigInt.asUintN(64, mem.readBigUInt64LE(i) - linked);
    votes.set(d, (votes.get(d) ?? 0) + 1);
  }
  const [offset, n] = [...votes].sort((a, b) => b[1] - a[1])[0] ?? [0n, 0];
  return pointers >= 8 && n === pointers && (offset & (MiB2 - 1n)) === 0n ? offset : undefined;
}
