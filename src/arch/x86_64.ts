import { factsFor } from './facts';
import { ArchInfo } from './types';
import { x86_64RegisterView } from './x86_64-regs';

/**
 * A multiboot image (a.out-kludge header, loaded at 1 MiB) that runs `code` at 0x100020 in
 * 32-bit protected mode, straight after the firmware hands over.
 */
export function multibootImage(code: readonly number[]): Buffer {
  const img = Buffer.alloc(64);
  const magic = 0x1badb002;
  const flags = 0x00010000;
  img.writeUInt32LE(magic, 0);
  img.writeUInt32LE(flags, 4);
  img.writeUInt32LE((-(magic + flags)) >>> 0, 8);
  img.writeUInt32LE(0x100000, 12); // header_addr
  img.writeUInt32LE(0x100000, 16); // load_addr
  img.writeUInt32LE(0, 20); // load_end_addr: whole file
  img.writeUInt32LE(0, 24); // bss_end_addr: none
  img.writeUInt32LE(0x100020, 28); // entry
  Buffer.from(code).copy(img, 32);
  return img;
}

/**
 * Writes 1 to an isa-debug-exit port. QEMU then exits with status (1 << 1) | 1 = 3, which
 * proves the accelerator really executed guest code after the firmware handed over.
 */
function multibootExitImage(): Buffer {
  // mov al,1; out 0xf4,al; hlt; jmp $-1
  return multibootImage([0xb0, 0x01, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]);
}

export const x86_64: ArchInfo = {
  ...factsFor('x86_64'),
  tdescArchitecture: 'i386:x86-64',
  pointerSize: 8,
  machineArgs: ['-machine', 'pc'],
  console: 'ttyS0',
  pcRegister: 'rip',
  monitorPc: /\b[RE]IP=([0-9a-f]+)/,
  spRegister: 'rsp',
  fpRegister: 'rbp',
  // System V psABI numbering: 16 is the return-address column (rip).
  dwarfRegisters: ['rax', 'rdx', 'rcx', 'rbx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'],
  returnAddressColumn: 16,
  dwarfPc: 16,
  dwarfSp: 7,
  dwarfFp: 6,
  calleeSaved: [3, 6, 12, 13, 14, 15],
  returnAddress: { kind: 'stack', size: 8 },
  // push %rbp; mov %rsp,%rbp: [rbp] = caller's rbp, [rbp+8] = return address, above it the caller's stack.
  frameRecord: { savedFp: 0, returnAddress: 8, callerSp: 16 },
  traceFlag: { register: 'eflags', bit: 8 },
  charSigned: true,
  breakpointKind: 1,
  bootImage: 'arch/x86/boot/bzImage',
  registerView: x86_64RegisterView,
  disassembler: { decoder: 'x86_64', maxInstructionBytes: 15, alignment: 1 },
  kvmProbe: {
    args: ['-device', 'isa-debug-exit,iobase=0xf4,iosize=4'],
    image: multibootExitImage(),
    successExitCode: 3,
  },
};
