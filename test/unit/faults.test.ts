/**
 * The pure parts of the exception filters: which reporters a kernel has, the kernel's own
 * notations (taint letters, Code: lines, printf) and the header line an Oops printed before
 * die(). Expected texts are lines the sample guests' kernels printed.
 */
import * as assert from 'node:assert/strict';
import { codeLine, ptRegsMembers, reportersFor, taintText, ubsanCheck } from '../../src/kernel/faults';
import { formatKernelPrintf } from '../../src/kernel/printf';
import { reportHeader } from '../../src/engine/faultreport';
import type { LogRecord } from '../../src/kernel/printk';

const rec = (text: string): LogRecord => ({ seq: 0n, tsNsec: 0n, level: 4, caller: 'T1', text });

describe('exception filters: reporters and the kernel\'s notations', () => {
  it('finds the reporters per arch, with die\'s argument order, and says why a filter has none', () => {
    const have = new Set(['panic', '__die', 'die', 'report_bug', 'kfence_report_error', '__ubsan_handle_out_of_bounds', 'print_cpu_stall']);
    const x86 = reportersFor('x86_64', (f) => have.has(f));
    assert.deepEqual(x86.reporters.find((r) => r.kind === 'die'), { fn: '__die', kind: 'die', strArg: 0, regsArg: 1 });
    assert.deepEqual(reportersFor('riscv64', (f) => have.has(f)).reporters.find((r) => r.kind === 'die'), { fn: 'die', kind: 'die', regsArg: 0, strArg: 1 });
    assert.deepEqual(reportersFor('aarch64', (f) => have.has(f)).reporters.find((r) => r.kind === 'die'), { fn: 'die', kind: 'die', strArg: 0, regsArg: 1 });
    assert.deepEqual(x86.reporters.filter((r) => r.kind === 'ubsan').map((r) => r.fn), ['__ubsan_handle_out_of_bounds']);
    assert.equal(x86.missing.size, 0);
    // 6.17+: panic() calls vpanic(); one breakpoint on vpanic serves both.
    assert.deepEqual(reportersFor('x86_64', (f) => f === 'vpanic' || f === 'panic').reporters.filter((r) => r.kind === 'panic' || r.kind === 'vpanic').map((r) => r.fn), ['vpanic']);
    const bare = reportersFor('x86_64', (f) => f === 'panic' || f === '__die');
    assert.match(bare.missing.get('bug') ?? '', /CONFIG_BUG/);
    assert.match(bare.missing.get('sanitizer') ?? '', /CONFIG_KASAN, CONFIG_KFENCE and CONFIG_UBSAN/);
    assert.match(bare.missing.get('lockup') ?? '', /DETECT_HUNG_TASK/);
  });

  it('prints taint as print_tainted() does (the sample guest after an Oops, a WARN and loading qkd_sample)', () => {
    assert.equal(taintText(0n), 'Not tainted');
    // TAINT_DIE (7), TAINT_WARN (9), TAINT_OOT_MODULE (12): "Tainted: G      D W  O      " on the console.
    assert.equal(taintText((1n << 7n) | (1n << 9n) | (1n << 12n)), 'Tainted: G      D W  O');
    assert.equal(taintText(1n), 'Tainted: P');
  });

  it('writes Code: as each arch\'s kernel does, the faulting unit marked', () => {
    const x86 = Buffer.from([0x90, 0x48, 0x8b, 0x07, 0xc3]);
    assert.equal(codeLine('x86_64', x86, 3), 'Code: 90 48 8b <07> c3');
    const arm = Buffer.alloc(8);
    arm.writeUInt32LE(0xd503233f, 0);
    arm.writeUInt32LE(0xb9400000, 4);
    assert.equal(codeLine('aarch64', arm, 4), 'Code: d503233f (b9400000)');
    const rv = Buffer.from([0x01, 0x00, 0x83, 0x27]);
    assert.equal(codeLine('riscv64', rv, 2), 'Code: 0001 (2783)');
  });

  it('maps pt_regs members to DWARF registers (x86 ip is rip, 16; arm64 regs[] and pc; riscv epc is the PC column 64)', () => {
    assert.deepEqual(new Map(ptRegsMembers('x86_64')).get('ip'), 16);
    assert.deepEqual(new Map(ptRegsMembers('x86_64')).get('bp'), 6);
    assert.deepEqual(new Map(ptRegsMembers('aarch64')).get('regs[29]'), 29);
    assert.deepEqual(new Map(ptRegsMembers('aarch64')).get('pc'), 32);
    assert.deepEqual(new Map(ptRegsMembers('riscv64')).get('epc'), 64);
    assert.deepEqual(new Map(ptRegsMembers('riscv64')).get('s0'), 8);
    assert.equal(ubsanCheck('__ubsan_handle_out_of_bounds'), 'array-index-out-of-bounds');
    assert.equal(ubsanCheck('__ubsan_handle_type_mismatch_v1'), 'type-mismatch');
  });

  it('formats panic()\'s message from its arguments as vsprintf does', async () => {
    const strings = new Map<bigint, string>([[0x1000n, 'panic']]);
    const host = { string: async (a: bigint) => strings.get(a), symbol: (a: bigint) => `f+0x${a.toString(16)}/0x20` };
    assert.equal(await formatKernelPrintf('qkd_sample: panic on request (fault %s)', [0x1000n], host), 'qkd_sample: panic on request (fault panic)');
    assert.equal(await formatKernelPrintf('%d %u %5d|%-4x|%08lx %c %% %pS %s', [BigInt.asUintN(64, -3n), 7n, 42n, 0xabn, 0x1234n, 0x41n, 0x10n, 0n], host), '-3 7    42|ab  |00001234 A % f+0x10/0x20 (null)');
    assert.equal(await formatKernelPrintf('Attempted to kill init! exitcode=0x%08x\n', [0x9n], host), 'Attempted to kill init! exitcode=0x00000009\n');
  });

  it('finds the line that says what faulted, not one from an earlier report', () => {
    const log = ['qkd_sample: fault null on request', 'BUG: kernel NULL pointer dereference, address: 0000000000000000', '#PF: supervisor read access in kernel mode'].map(rec);
    assert.equal(reportHeader(log), 'BUG: kernel NULL pointer dereference, address: 0000000000000000');
    const older = ['BUG: kernel NULL pointer dereference, address: 0000000000000000', '---[ end trace 0000000000000000 ]---', 'something else'].map(rec);
    assert.equal(reportHeader(older), undefined);
    assert.equal(reportHeader([rec('Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000')]), 'Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000');
  });
});
