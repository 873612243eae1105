/**
 * A report's `Code:` line disassembled, as scripts/decodecode does: the bytes around the
 * faulting PC with the faulting instruction marked. The line's shape tells the arch: x86
 * prints bytes with the faulting one in `<>`, arm64 32-bit words with it in `()`, riscv
 * 16-bit parcels with it in `()` (a 32-bit instruction's two parcels, low first).
 */
import { Decoder, type DecoderArch, type RawInstruction } from '../engine/disasm/capstone';

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

export interface CodeInstruction {
  /** Offset from the faulting instruction, in bytes. */
  delta: number;
  text: string;
  bytes: string;
  fault: boolean;
}

const decoders = new Map<DecoderArch, Promise<Decoder>>();

/**
 * The instructions of a Code line. The bytes before the fault may start mid-instruction, so
 * (as decodecode does) the first start from which decoding lands exactly on the fault is
 * taken; the faulting instruction and what follows decode from the fault itself.
 */
export async function disassembleCode(code: CodeLine, faultAddress = 0n): Promise<CodeInstruction[]> {
  // Branch targets print as addresses: with the fault at its offset in its function, they read as offsets there too.
  const base = BigInt.asUintN(64, faultAddress - BigInt(code.fault));
  let d = decoders.get(code.arch);
  if (!d) decoders.set(code.arch, (d = Decoder.open(code.arch, 'att', false)));
  const dec = await d;
  const step = code.arch === 'x86_64' ? 1 : code.arch === 'riscv64' ? 2 : 4;
  let before: RawInstruction[] = [];
  for (let start = 0; start < code.fault; start += step) {
    const head = code.bytes.subarray(start, code.fault);
    const insns = dec.decode(head, BigInt.asUintN(64, base + BigInt(start)), 0);
    const end = insns.reduce((n, i) => n + i.bytes.length, start);
    if (end === code.fault) {
      before = insns;
      break;
    }
  }
  const after = dec.decode(code.bytes.subarray(code.fault), BigInt.asUintN(64, faultAddress), 0);
  return [...before, ...after].map((i) => ({
    delta: Number(BigInt.asIntN(64, i.address - faultAddress)),
    text: `${i.mnemonic}${i.opStr ? ' ' + i.opStr : ''}`,
    bytes: [...i.bytes].map((b) => b.toString(16).padStart(2, '0')).join(' '),
    fault: i.address === BigInt.asUintN(64, faultAddress),
  }));
}

/** The disassembly as hover markdown; `at` names the faulting instruction (`func+0x12`) when the report gives it. */
export function codeMarkdown(insns: readonly CodeInstruction[], at?: { func: string; offset: bigint }): string {
  const label = (delta: number): string => {
    if (!at) return delta === 0 ? '<fault>' : `<fault${delta > 0 ? '+' : '-'}${Math.abs(delta)}>`;
    const off = at.offset + BigInt(delta);
    return off >= 0n ? `${at.func}+0x${off.toString(16)}` : `${at.func}-0x${(-off).toString(16)}`;
  };
  const width = Math.max(...insns.map((i) => label(i.delta).length)) + 1;
  const lines = insns.map((i) => `${i.fault ? '=>' : '  '} ${(label(i.delta) + ':').padEnd(width)}  ${i.text}`);
  const fault = insns.find((i) => i.fault);
  return [`**Code:** ${insns.length} instructions${fault ? `; the faulting one (\`=>\`) is \`${fault.text}\`` : ''}`, '', '```asm', ...lines, '```'].join('\n');
}
