/**
 * A report's `Code:` line read into bytes (no disassembler: the language server tells a Code
 * line from others at every hover, and loads Capstone only for one). The line's shape tells
 * the arch: x86 prints bytes with the faulting one in `<>`, arm64 32-bit words with it in
 * `()`, riscv 16-bit parcels with it in `()` (a 32-bit instruction's two parcels, low first).
 */
import type { DecoderArch } from '../engine/disasm/capstone';

export interface CodeLine {
  arch: DecoderArch;
  bytes: Buffer;
  /** Where the faulting instruction starts in `bytes`. */
  fault: number;
}

/** The bytes of a `Code:` line, or undefined when the line is not one (or has no marked instruction). */
export function parseCodeLine(line: string): CodeLine | undefined {
  const m = /\bCode:\s+(.*)$/.exec(line.replace(/\r?\n$/, ''));
  if (!m) return undefined;
  const tokens = m[1].trim().split(/\s+/);
  const bare = tokens.map((t) => t.replace(/^[<(]|[>)]$/g, ''));
  if (!bare.every((t) => /^[0-9a-f]+$/i.test(t))) return undefined;
  const width = bare[0]?.length ?? 0;
  if (!bare.every((t) => t.length === width) || ![2, 4, 8].includes(width)) return undefined;
  const at = tokens.findIndex((t) => /^[<(]/.test(t));
  if (at < 0) return undefined;
  const unit = width / 2;
  const bytes = Buffer.alloc(bare.length * unit);
  bare.forEach((t, i) => {
    // Words and parcels are printed as numbers; in memory they are little-endian.
    if (unit === 1) bytes[i] = parseInt(t, 16);
    else if (unit === 2) bytes.writeUInt16LE(parseInt(t, 16), i * 2);
    else bytes.writeUInt32LE(parseInt(t, 16), i * 4);
  });
  const arch: DecoderArch = unit === 1 ? 'x86_64' : unit === 2 ? 'riscv64' : 'arm64';
  return { arch, bytes, fault: at * unit };
}

