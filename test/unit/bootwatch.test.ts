/**
 * Reading a boot's progress: the PC from HMP `info registers` as QEMU 7.2 prints it for each
 * arch (the texts below are its output, captured from the real QEMU: x86 in 32-bit protected
 * mode, where the decompressor starts, and in long mode), the kernel-half test, and console
 * lines cleaned for quoting.
 */
import * as assert from 'node:assert/strict';
import { getArch } from '../../src/arch';
import { consoleLines, describeEvidence, inKernelHalf, pcFromInfoRegisters, quoteTail } from '../../src/qemu/bootwatch';

const X86_PROTECTED =
  '\r\nCPU#0\r\nEAX=2badb002 EBX=00009500 ECX=00100020 EDX=00010511\r\nESI=00000000 EDI=00001000 EBP=00000000 ESP=00006f08\r\nEIP=00100020 EFL=00000006 [-----P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\r\n';
const X86_LONG =
  '\r\nCPU#0\r\nRAX=ffff8880000000cc RBX=ffffea000005a5f0 RCX=00000000000009e9 RDX=ffff8880019d2000\r\nRSI=0000000000000001 RDI=ffff8880019d2617 RBP=ffffc9000000bed0 RSP=ffffc9000000bea0\r\nR8 =00000000ffffffff R9 =ffffffff81affe40 R10=0000000000000001 R11=0000000000000000\r\nR12=ffffffff81945051 R13=ffffffff81a00000 R14=ffffffff819af000 R15=ffffffff819d2000\r\nRIP=ffffffff81122ad4 RFL=00000286 [--S--P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\r\n';
const AARCH64 = '\r\nCPU#0\r\n PC=0000000000000000 X00=0000000000000000 X01=0000000000000000\r\nX02=0000000000000000 X03=0000000000000000 X04=0000000000000000\r\n';
const RISCV64 = '\r\nCPU#0\r\n V      =   0\r\n pc       0000000000001000\r\n mhartid  0000000000000000\r\n mstatus  0000000a00000000\r\n';

describe('boot progress evidence', () => {
  const x86 = getArch('x86_64');
  const a64 = getArch('aarch64');
  const rv = getArch('riscv64');

  it('reads the PC from each arch\'s info registers, EIP before long mode and RIP after', () => {
    assert.equal(pcFromInfoRegisters(X86_PROTECTED, x86), 0x100020n);
    assert.equal(pcFromInfoRegisters(X86_LONG, x86), 0xffffffff81122ad4n);
    assert.equal(pcFromInfoRegisters(AARCH64, a64), 0n);
    assert.equal(pcFromInfoRegisters(RISCV64, rv), 0x1000n);
    // riscv's "mhartid" line must not be taken for the pc, nor x86's EBP for EIP.
    assert.equal(pcFromInfoRegisters('Error: no CPU', x86), undefined);
  });

  it('tells the kernel\'s half of the address space from firmware and the decompressor', () => {
    assert.equal(inKernelHalf(0xffffffff81045b30n, x86), true);
    assert.equal(inKernelHalf(0xffff800008000000n, a64), true);
    assert.equal(inKernelHalf(0xffffffff80000000n, rv), true);
    assert.equal(inKernelHalf(0x100020n, x86), false);
    assert.equal(inKernelHalf(0x40200000n, a64), false);
    assert.equal(inKernelHalf(0x7fffffffffffffffn, rv), false);
  });

  it('quotes console lines without colours, carriage returns or control bytes', () => {
    assert.deepEqual(consoleLines('\x1b[1;32mLinux version 6.1\x1b[0m\r\n\r\nCPU: 0\x07 up\r\n'), ['Linux version 6.1', 'CPU: 0 up']);
  });

  it('describes the evidence and the tail for a message', () => {
    const e = { consoleBytes: 0, pc: 0x10002an, reachedKernel: false, tail: [] };
    assert.equal(describeEvidence(e, x86), "no console output, PC 0x10002a (still in firmware or the kernel decompressor, below the kernel's addresses)");
    assert.equal(quoteTail(e), 'The guest wrote nothing to its console.');
    assert.equal(quoteTail({ ...e, tail: ['a', 'b'] }), "The console's last lines:\n  | a\n  | b");
  });
});
