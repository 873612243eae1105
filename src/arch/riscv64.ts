import { factsFor } from './facts';
import { FREG_NAMES, XREG_NAMES, riscv64RegisterView } from './riscv64-regs';
import type { ArchInfo, BranchInfo } from './types';

const MASK64 = (1n << 64n) - 1n;
const bits = (v: number, hi: number, lo: number): number => (v >>> lo) & ((1 << (hi - lo + 1)) - 1);
const signed = (v: number, width: number): bigint => BigInt.asIntN(width, BigInt(v));

/** x1 (ra) and x5 (t0) are the link registers (unprivileged spec §2.5): a jump that writes one is a call. */
const isLink = (rd: number): boolean => rd === 1 || rd === 5;

/**
 * Calls and direct branches from the encoding (unprivileged spec §2.5 and §16.7 for the C
 * extension). Capstone 5 marks every jalr a call, `jr a5` included, and prints jal and branch
 * targets relative to the instruction; stepping needs the link register and the disassembly
 * the absolute target.
 */
export function classifyRiscv(code: Buffer, address: bigint): BranchInfo | undefined {
  if (code.length < 2) return undefined;
  const half = code.readUInt16LE(0);
  const at = (offset: bigint): bigint => (address + offset) & MASK64;
  if ((half & 3) !== 3) {
    const funct3 = half >>> 13;
    const op = half & 3;
    if (op === 1 && funct3 === 5) {
      // C.J: offset[11|4|9:8|10|6|7|3:1|5].
      const imm = (bits(half, 12, 12) << 11) | (bits(half, 11, 11) << 4) | (bits(half, 10, 9) << 8) | (bits(half, 8, 8) << 10) | (bits(half, 7, 7) << 6) | (bits(half, 6, 6) << 7) | (bits(half, 5, 3) << 1) | (bits(half, 2, 2) << 5);
      return { call: false, target: at(signed(imm, 12)) };
    }
    if (op === 1 && (funct3 === 6 || funct3 === 7)) {
      // C.BEQZ / C.BNEZ: offset[8|4:3] rs1' offset[7:6|2:1|5].
      const imm = (bits(half, 12, 12) << 8) | (bits(half, 11, 10) << 3) | (bits(half, 6, 5) << 6) | (bits(half, 4, 3) << 1) | (bits(half, 2, 2) << 5);
      return { call: false, target: at(signed(imm, 9)) };
    }
    if (op === 2 && funct3 === 4 && bits(half, 6, 2) === 0 && bits(half, 11, 7) !== 0) {
      // C.JR (bit 12 clear) and C.JALR (set, links ra); rs1 = 0 with bit 12 set is C.EBREAK.
      return { call: bits(half, 12, 12) === 1 };
    }
    return undefined;
  }
  if (code.length < 4) return undefined;
  const insn = code.readUInt32LE(0);
  const opcode = insn & 0x7f;
  const rd = bits(insn, 11, 7);
  if (opcode === 0x6f) {
    // JAL: imm[20|10:1|11|19:12].
    const imm = (bits(insn, 31, 31) << 20) | (bits(insn, 30, 21) << 1) | (bits(insn, 20, 20) << 11) | (bits(insn, 19, 12) << 12);
    return { call: isLink(rd), target: at(signed(imm, 21)) };
  }
  if (opcode === 0x67 && bits(insn, 14, 12) === 0) return { call: isLink(rd) };
  if (opcode === 0x63) {
    // Conditional branches: imm[12|10:5] … imm[4:1|11].
    const imm = (bits(insn, 31, 31) << 12) | (bits(insn, 30, 25) << 5) | (bits(insn, 11, 8) << 1) | (bits(insn, 7, 7) << 11);
    return { call: false, target: at(signed(imm, 13)) };
  }
  return undefined;
}

/** `$x5`, `$s0`, `$f10`: the architectural names for QEMU's ABI-named registers. */
const aliases: Record<string, string> = { s0: 'fp' };
XREG_NAMES.forEach((n, i) => (aliases[`x${i}`] = n));
FREG_NAMES.forEach((n, i) => (aliases[`f${i}`] = n));

export const riscv64: ArchInfo = {
  ...factsFor('riscv64'),
  tdescArchitecture: 'riscv:rv64',
  pointerSize: 8,
  // OpenSBI (QEMU's default -bios) runs in M-mode and starts the kernel in S-mode; the console
  // is virt's ns16550a UART.
  machineArgs: ['-machine', 'virt'],
  console: 'ttyS0',
  pcRegister: 'pc',
  monitorPc: /^\s*pc\s+([0-9a-f]+)/m,
  spRegister: 'sp',
  fpRegister: 'fp',
  // psABI §"DWARF register numbers": x0-x31 0-31, f0-f31 32-63; 64 (the alternate frame
  // return column) carries the PC, which has no DWARF number of its own.
  dwarfRegisters: [...XREG_NAMES, ...FREG_NAMES, 'pc'],
  returnAddressColumn: 1,
  dwarfPc: 64,
  dwarfSp: 2,
  dwarfFp: 8,
  // psABI: s0-s11 (x8, x9, x18-x27); fs0-fs11 too, which the kernel doesn't use.
  calleeSaved: [8, 9, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27],
  returnAddress: { kind: 'register', dwarf: 1 },
  // With CONFIG_FRAME_POINTER, s0 is the CFA (the caller's sp) with ra saved at fp-8 and the
  // caller's s0 at fp-16 (GCC's prologue: addi sp,sp,-N; sd ra,N-8(sp); sd s0,N-16(sp); addi s0,sp,N).
  frameRecord: { savedFp: -16, returnAddress: -8, callerSp: 0 },
  registerAliases: aliases,
  charSigned: false,
  // gdb sends 2 for a compressed instruction and 4 otherwise; QEMU's TCG gdbstub ignores the
  // kind (a breakpoint is a PC match), so one kind serves both sizes.
  breakpointKind: 4,
  bootImage: 'arch/riscv/boot/Image',
  registerView: riscv64RegisterView,
  // RVC: 2- and 4-byte instructions on 2-byte boundaries, so backwards decoding needs an anchor.
  disassembler: { decoder: 'riscv64', maxInstructionBytes: 4, alignment: 2, classify: classifyRiscv },
  kvmProbe: undefined,
};
