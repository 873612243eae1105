/**
 * A report's `Code:` line (read by codeline.ts) disassembled, as scripts/decodecode does: the
 * bytes around the faulting PC with the faulting instruction marked.
 */
import { Decoder, type DecoderArch, type RawInstruction } from '../engine/disasm/capstone';
import type { CodeLine } from './codeline';

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
