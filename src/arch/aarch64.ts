import { factsFor } from './facts';
import { aarch64RegisterView } from './aarch64-regs';
import type { ArchInfo, BranchInfo } from './types';

const signExtend = (v: number, bits: number): bigint => BigInt.asIntN(bits, BigInt(v));
const MASK64 = (1n << 64n) - 1n;

/**
 * Calls and direct branches from the A64 encoding (Arm ARM C4.1.65, "Branches, exception
 * generating and system instructions"). Capstone's call group agrees for bl/blr; the encoding
 * also gives the absolute target the disassembly annotates with a symbol.
 */
export function classifyA64(code: Buffer, address: bigint): BranchInfo | undefined {
  if (code.length < 4) return undefined;
  const insn = code.readUInt32LE(0);
  // `& 0xfffffc1f` etc. are int32 in JS: `>>> 0` brings them back to the unsigned values compared.
  const rel = (imm: number, bits: number): bigint => (address + signExtend(imm, bits) * 4n) & MASK64;
  // B / BL: imm26.
  if ((insn & 0x7c000000) === 0x14000000) return { call: (insn & 0x80000000) !== 0, target: rel(insn & 0x3ffffff, 26) };
  // B.cond and BC.cond: imm19 at bits 5..23.
  if ((insn & 0xff000000) === 0x54000000) return { call: false, target: rel((insn >>> 5) & 0x7ffff, 19) };
  // CBZ / CBNZ: imm19.
  if ((insn & 0x7e000000) === 0x34000000) return { call: false, target: rel((insn >>> 5) & 0x7ffff, 19) };
  // TBZ / TBNZ: imm14.
  if ((insn & 0x7e000000) === 0x36000000) return { call: false, target: rel((insn >>> 5) & 0x3fff, 14) };
  // BLR Xn, and the pointer-authenticating BLRAA/BLRAAZ/BLRAB/BLRABZ.
  if ((insn & 0xfffffc1f) >>> 0 === 0xd63f0000 || (insn & 0xfefff800) >>> 0 === 0xd63f0800) return { call: true };
  return undefined;
}

const X = Array.from({ length: 31 }, (_, i) => `x${i}`);
const V = Array.from({ length: 32 }, (_, i) => `v${i}`);

export const aarch64: ArchInfo = {
  ...factsFor('aarch64'),
  tdescArchitecture: 'aarch64',
  pointerSize: 8,
  // cortex-a57: no pointer authentication, so return addresses in frame records are plain
  // (-cpu max signs them and TCG's pauth is slow); virt's PL011 UART is ttyAMA0.
  machineArgs: ['-machine', 'virt', '-cpu', 'cortex-a57'],
  console: 'ttyAMA0',
  pcRegister: 'pc',
  monitorPc: /\bPC=([0-9a-f]+)/,
  spRegister: 'sp',
  fpRegister: 'x29',
  // DWARF for the Arm 64-bit Architecture (AADWARF64) §4.1: x0-x30 0-30, sp 31, pc 32, v0-v31 64-95.
  dwarfRegisters: [...X, 'sp', 'pc', ...Array<string>(31).fill(''), ...V],
  returnAddressColumn: 30,
  dwarfPc: 32,
  dwarfSp: 31,
  dwarfFp: 29,
  // AAPCS64 §6.1.1: x19-x28 and the frame pointer x29 (v8-v15's low halves too, which the kernel doesn't use).
  calleeSaved: [19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29],
  returnAddress: { kind: 'register', dwarf: 30 },
  // AAPCS64 §6.4 (the kernel's frame records): stp x29, x30, [sp, #-N]!; mov x29, sp. The
  // record sits at the bottom of the frame, so fp says nothing of where the caller's sp was.
  frameRecord: { savedFp: 0, returnAddress: 8 },
  registerAliases: { lr: 'x30', fp: 'x29', ip0: 'x16', ip1: 'x17', pstate: 'cpsr' },
  charSigned: false,
  // The A64 instruction size; under TCG QEMU ignores the kind, under KVM it must be 4.
  breakpointKind: 4,
  bootImage: 'arch/arm64/boot/Image',
  registerView: aarch64RegisterView,
  // Fixed 4-byte instructions: decodable backwards from any aligned address.
  disassembler: { decoder: 'arm64', maxInstructionBytes: 4, alignment: 4, classify: classifyA64 },
  kvmProbe: undefined,
};
