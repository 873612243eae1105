/**
 * The language server's `Code:` hover and the kernel-log detection, on lines the sample
 * guests printed (x86_64's NULL dereference and BUG, aarch64's NULL dereference and BUG).
 * objdump, given the same bytes, is the oracle for the instructions.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { looksLikeKernelLog } from '../../src/kernel/logrefs';
import { codeMarkdown, disassembleCode } from '../../src/lsp/code';
import { parseCodeLine } from '../../src/lsp/codeline';

const X86_NULL =
  '[    1.668063] Code: 0c 48 89 d8 eb 07 48 c7 c0 f2 ff ff ff 48 83 c4 60 5b 41 5c 41 5d 5d c3 0f 1f 44 00 00 55 48 89 e5 50 48 89 7d f8 48 8b 45 f8 <8b> 00 c9 c3 0f 1f 44 00 00 8d 77 03 48 63 f6 48 83 fe 03 76 14 55';
const X86_BUG =
  '[    1.576057] Code: 03 76 14 55 48 c7 c7 80 20 00 c0 48 89 e5 e8 1e 0e 1d c1 31 c0 5d c3 31 c0 c3 0f 1f 44 00 00 55 85 ff 0f 9f c0 48 89 e5 7e 02 <0f> 0b 0f b6 c0 5d c3 0f 1f 44 00 00 55 48 89 e5 85 ff 7e 02 0f 0b';
const ARM64_NULL = '[    1.447952] Code: d10043ff d0000001 f90007e0 f94007e0 (b9400000) ';
const ARM64_BUG = '[    1.493348] Code: aa1e03e9 d503201f 7100001f 5400004d (d4210000) ';

/** objdump's instructions for bytes from `from` on: [offset, mnemonic]. */
function objdump(bytes: Buffer, machine: string, tool: string, from: number): Array<[number, string]> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-code-')), 'code.bin');
  fs.writeFileSync(file, bytes.subarray(from));
  try {
    return execFileSync(tool, ['-D', '-b', 'binary', '-m', machine, file], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2,8} )+\s*(\S+)/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && !m[2].startsWith('('))
      .map((m) => [parseInt(m[1], 16), m[2]]);
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

describe('kernel-log language server: Code lines', () => {
  it('reads the bytes and the marked instruction of each arch', () => {
    const x = parseCodeLine(X86_NULL);
    assert.ok(x);
    assert.equal(x.arch, 'x86_64');
    assert.equal(x.bytes.length, 64);
    assert.equal(x.fault, 42);
    assert.equal(x.bytes[x.fault], 0x8b);
    const a = parseCodeLine(ARM64_NULL);
    assert.ok(a);
    assert.equal(a.arch, 'arm64');
    assert.equal(a.fault, 16);
    // Printed as a number, stored little-endian.
    assert.deepEqual([...a.bytes.subarray(16)], [0x00, 0x00, 0x40, 0xb9]);
    // As an editor hands a line over, with its end.
    assert.equal(parseCodeLine(`${ARM64_NULL}\n`)?.fault, 16);
    assert.equal(parseCodeLine('[    1.0] Code: Unable to access opcode bytes at 0xffffffffc0000000.'), undefined);
    // A character the console log doubled makes a token of the wrong width: no guess.
    assert.equal(parseCodeLine(X86_NULL.replace(' 9f ', ' 99f ').replace('89 d8', '89 dd8')), undefined);
  });

  it('x86_64: from the fault on, the instructions objdump finds; before it, a start that lands on the fault', async () => {
    for (const line of [X86_NULL, X86_BUG]) {
      const code = parseCodeLine(line);
      assert.ok(code);
      const insns = await disassembleCode(code);
      const fault = insns.findIndex((i) => i.fault);
      assert.ok(fault > 0, 'instructions before the fault');
      const after = insns.slice(fault).map((i) => [i.delta, i.text.split(' ')[0]]);
      const oracle = objdump(code.bytes, 'i386:x86-64', 'objdump', code.fault).slice(0, after.length);
      assert.deepEqual(after.map((x) => x[0]), oracle.map((x) => x[0]));
      assert.deepEqual(after.map((x) => String(x[1]).replace(/q$|l$/, '')), oracle.map((x) => x[1].replace(/q$|l$/, '')));
      // The instructions before the fault end exactly where it starts.
      const last = insns[fault - 1];
      assert.equal(last.delta + last.bytes.split(' ').length, 0);
    }
    const nul = await disassembleCode(parseCodeLine(X86_NULL) as NonNullable<ReturnType<typeof parseCodeLine>>);
    assert.equal(nul.find((i) => i.fault)?.text, 'movl (%rax), %eax');
  });

  it('aarch64: the faulting word is the load through NULL, and BUG is brk', async () => {
    for (const [line, want] of [
      [ARM64_NULL, 'ldr'],
      [ARM64_BUG, 'brk'],
    ] as const) {
      const code = parseCodeLine(line);
      assert.ok(code);
      const insns = await disassembleCode(code);
      assert.equal(insns.length, 5);
      const oracle = objdump(code.bytes, 'aarch64', 'aarch64-linux-gnu-objdump', 0);
      assert.deepEqual(
        insns.map((i) => i.text.split(' ')[0]),
        oracle.map((o) => o[1]),
      );
      assert.equal(insns.find((i) => i.fault)?.text.split(' ')[0], want);
    }
  });

  it('names instructions after the report faulting reference and marks the fault', async () => {
    const md = codeMarkdown(await disassembleCode(parseCodeLine(X86_NULL) as NonNullable<ReturnType<typeof parseCodeLine>>, 0x12n), { func: 'qkd_sample_fault_null', offset: 0x12n });
    assert.match(md, /^=> qkd_sample_fault_null\+0x12:\s+movl \(%rax\), %eax$/m);
    assert.match(md, /^ {3}qkd_sample_fault_null\+0x14:\s+leave/m);
    assert.match(md, /^ {3}qkd_sample_fault_null\+0xe:\s+movq -8\(%rbp\), %rax$/m);
    // A branch's target reads as an offset in the function too (`jbe` at +0x25 jumps forward into the next one).
    assert.match(md, /^ {3}qkd_sample_fault_null\+0x25:\s+jbe 0x[0-9a-f]{2}$/m);
  });
});

describe('kernel-log detection', () => {
  it('takes a serial log with firmware lines first, and dmesg; not other logs', () => {
    const serial = ['SeaBIOS (version 1.16.2-debian-1.16.2-1)', 'Booting from ROM..', '[    0.000000] Linux version 6.1.0 (root@x) #1 SMP', '[    0.000000] Command line: console=ttyS0', '[    0.000000] x86/fpu: Supporting XSAVE', '[    0.000000] BIOS-provided physical RAM map:'].join('\n');
    assert.equal(looksLikeKernelLog(serial), true);
    assert.equal(looksLikeKernelLog('Booting Linux on physical CPU 0x0000000000 [0x000f0510]\nLinux version 6.1.0\n[    0.000000] Machine model: linux,dummy-virt\n[    0.000000] efi: UEFI not found.\n'), true);
    assert.equal(looksLikeKernelLog('2026-12-07 10:00:01 INFO server started\n2026-12-07 10:00:02 INFO listening on :80\n2026-12-07 10:00:03 WARN slow request\n'), false);
    assert.equal(looksLikeKernelLog('[    1.000000] one line only\n'), false);
  });
});
