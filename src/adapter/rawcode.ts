/**
 * A read-only "raw code" document for frames that have no source line yet: the function's
 * bytes as the guest has them, one row per 8 bytes, with the row of the PC as the frame's
 * line. VS Code only focuses a stopped frame (and so shows its Variables) when the frame has
 * a source, so every frame gets one.
 */
import { ElfSymbol } from '../symbols/elf';

export interface RawCode {
  text: string;
  /** 1-based line of `pc` in `text`. */
  line: number;
}

const BYTES_PER_ROW = 8;
const HEADER_LINES = 2;
/** Longest listing: enough for nearly every kernel function, small enough to read at every stop. */
export const MAX_LISTING = 4096;

/** The address range a listing covers: the function, or a window around the PC without a symbol. */
export function listingRange(pc: bigint, fn: ElfSymbol | undefined): { start: bigint; length: number } {
  if (fn && fn.size > 0) {
    const length = Math.min(fn.size, MAX_LISTING);
    // A huge function is listed from the row that holds the PC.
    const start = pc - fn.value < BigInt(length) ? fn.value : pc - (pc % BigInt(BYTES_PER_ROW));
    return { start, length };
  }
  return { start: pc - (pc % BigInt(BYTES_PER_ROW)), length: 256 };
}

export function rawCodeListing(title: string, start: bigint, bytes: Buffer, pc: bigint, describe: (a: bigint) => string): RawCode {
  const lines = [`; ${title}: code bytes as the guest has them at this stop`, '; (no source line information is read for this kernel yet)'];
  for (let off = 0; off < bytes.length; off += BYTES_PER_ROW) {
    const addr = start + BigInt(off);
    const row = [...bytes.subarray(off, off + BYTES_PER_ROW)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    lines.push(`${addr.toString(16).padStart(16, '0')}  ${row.padEnd(BYTES_PER_ROW * 3 - 1)}  ; ${describe(addr)}`);
  }
  const row = pc >= start ? Number((pc - start) / BigInt(BYTES_PER_ROW)) : 0;
  return { text: lines.join('\n') + '\n', line: Math.min(HEADER_LINES + row + 1, lines.length) };
}
