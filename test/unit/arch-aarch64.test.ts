/**
 * The arm64 arch on real bytes: QEMU 7.2's target description and reset registers
 * (qemu-system-aarch64 -M virt, cortex-a57 and max, recorded by scripts/capture-rsp-fixture.mjs),
 * the decoders on those values and on values the Arm ARM defines for states a reset vCPU isn't
 * in, the DWARF numbering, the unwinder's link-register and frame-record rules, and the
 * disassembler against binutils' objdump.
 */
import * as assert from 'node:assert/strict';
import { aarch64, classifyA64 } from '../../src/arch/aarch64';
import { archForElfMachine, getArch } from '../../src/arch';
import { decodeFields, planGroups, type DecodedField } from '../../src/arch/regview';
import { Disassembler, callReturnAddress, type ReadCode } from '../../src/engine/disasm';
import { Unwinder } from '../../src/engine/unwind';
import { cachedGuest } from '../../src/guest/build';
import { EM_AARCH64 } from '../../src/symbols/elf';
import type { CallFrameInfo, UnwindRow } from '../../src/symbols/dwarf/frame';
import { assemble, haveCrossBinutils, nmSymbol, objdumpRange } from '../support/cross';
import { requireOrSkip } from '../support/env';
import { recording, resetState, type ResetState } from './arch-fixture';

const spec = aarch64.registerView;
const decode = (name: string, value: bigint): DecodedField[] => decodeFields(spec.layouts[name], value, () => undefined);
const set = (fields: DecodedField[]): string[] => fields.filter((f) => f.toggleable && f.value === 1n).map((f) => f.name);
const text = (fields: DecodedField[], name: string): string | undefined => fields.find((f) => f.name === name)?.text;

describe('arch/aarch64: QEMU 7.2 virt target description and reset state', () => {
  let a57: ResetState;
  let max: ResetState;

  before(async () => {
    a57 = await resetState(recording('qemu-aarch64-gdbstub'));
    max = await resetState(recording('qemu-aarch64-max-gdbstub'));
  });

  it('parses target.xml and its includes: core, FP/SIMD (SVE on max) and the system registers', () => {
    assert.equal(a57.desc.architecture, aarch64.tdescArchitecture);
    const features = (s: ResetState): string[] => [...new Set(s.desc.registers.map((r) => r.feature))];
    assert.deepEqual(features(a57), ['org.gnu.gdb.aarch64.core', 'org.gnu.gdb.aarch64.fpu', 'org.qemu.gdb.arm.sys.regs']);
    assert.deepEqual(features(max), ['org.gnu.gdb.aarch64.core', 'org.gnu.gdb.aarch64.sve', 'org.qemu.gdb.arm.sys.regs']);
    const byName = new Map(a57.desc.registers.map((r) => [r.name, r]));
    assert.deepEqual([byName.get('x0')?.regnum, byName.get('sp')?.regnum, byName.get('pc')?.regnum, byName.get('cpsr')?.regnum, byName.get('v0')?.regnum], [0, 31, 32, 33, 34]);
    assert.deepEqual([byName.get('cpsr')?.bitsize, byName.get('v31')?.bitsize, byName.get('fpcr')?.regnum], [32, 128, 67]);
    // QEMU's own names: SCTLR_EL1 is SCTLR, VBAR_EL1 VBAR; CurrentEL isn't readable raw, so absent.
    for (const n of ['SCTLR', 'TCR_EL1', 'TTBR0_EL1', 'TTBR1_EL1', 'ESR_EL1', 'FAR_EL1', 'VBAR', 'SP_EL0', 'MDSCR_EL1']) assert.ok(byName.has(n), n);
    for (const n of ['SCTLR_EL1', 'CurrentEL', 'CURRENTEL', 'DAIF', 'NZCV']) assert.ok(!byName.has(n), n);
    assert.ok(max.desc.registers.some((r) => r.name === 'z31' && r.bitsize === 2048));
  });

  it('reads the core registers from the g block and the rest with p, which agrees with g', () => {
    assert.deepEqual([...a57.block.keys()], [...Array.from({ length: 31 }, (_, i) => `x${i}`), 'sp', 'pc', 'cpsr']);
    for (const [name, v] of a57.block) assert.equal(a57.p.get(name), v, name);
    assert.equal(a57.refused.size, 0);
    assert.equal(a57.p.size, a57.desc.registers.length);
  });

  for (const which of ['cortex-a57', 'max'] as const) {
    it(`puts every register of ${which} in one of the arch's groups, none left to a fallback`, () => {
      const s = which === 'max' ? max : a57;
      const groups = planGroups(spec, s.desc.registers);
      const names = groups.map((g) => g.name);
      const arch = ['General', 'PSTATE', 'FP/SIMD', 'SVE', 'System', 'Timers', 'Debug', 'Performance monitors', 'Pointer authentication keys', 'ID', 'Other system'];
      assert.deepEqual(names.filter((n) => !arch.includes(n)), []);
      assert.equal(groups.reduce((n, g) => n + g.registers.length, 0), s.desc.registers.length);
      const members = (g: string): string[] => groups.find((x) => x.name === g)?.registers.map((r) => r.name) ?? [];
      assert.deepEqual(members('General'), [...Array.from({ length: 31 }, (_, i) => `x${i}`), 'sp', 'pc']);
      assert.deepEqual(members('PSTATE'), ['cpsr']);
      assert.deepEqual(members('System').slice(0, 6), ['SCTLR', 'TCR_EL1', 'TTBR0_EL1', 'TTBR1_EL1', 'MAIR_EL1', 'VBAR']);
      if (which === 'max') {
        assert.deepEqual([members('SVE').length, ...members('SVE').slice(-3)], [32 + 16 + 2, 'p15', 'ffr', 'vg']);
        assert.deepEqual(members('FP/SIMD'), ['fpsr', 'fpcr']);
        assert.ok(members('Pointer authentication keys').includes('APIAKEYLO_EL1'));
      } else assert.deepEqual(members('FP/SIMD').slice(-3), ['v31', 'fpsr', 'fpcr']);
    });
  }

  it('decodes cpsr at reset: EL1h with D, A, I, F masked, Z set (QEMU resets NZCV to 0100)', () => {
    assert.equal(a57.block.get('cpsr'), 0x400003c5n);
    const f = decode('cpsr', a57.block.get('cpsr') as bigint);
    assert.deepEqual(set(f), ['Z', 'D', 'A', 'I', 'F']);
    assert.equal(text(f, 'M'), '5 (EL1h: EL1 on SP_EL1)');
    assert.equal(text(f, 'nRW'), '0 (AArch64)');
    assert.equal(max.block.get('cpsr'), 0x400003c5n);
  });

  it('decodes PSTATE values the kernel runs in: EL1h with PAN, EL0t for a user task, and an AArch32 SPSR', () => {
    // 0x80400005: N, PAN, EL1h, interrupts enabled.
    const k = decode('cpsr', 0x80400005n);
    assert.deepEqual(set(k), ['N', 'PAN']);
    assert.equal(text(k, 'M'), '5 (EL1h: EL1 on SP_EL1)');
    assert.equal(text(decode('SPSR_EL1', 0x20000000n), 'M'), '0 (EL0t: EL0)');
    // A compat task's SPSR: nRW set, user mode 0x10, Thumb.
    const c = decode('SPSR_EL1', 0x30n);
    assert.equal(text(c, 'M'), '16 (usr)');
    assert.deepEqual(set(c), ['T']);
  });

  it('decodes SCTLR_EL1 (QEMU: SCTLR) at reset: MMU and caches off, the RES1 bits of ARMv8.0', () => {
    const v = a57.p.get('SCTLR') as bigint;
    assert.equal(v, 0xc50838n);
    assert.deepEqual(set(decode('SCTLR', v)), ['SA', 'SA0', 'CP15BEN', 'EOS', 'nTWI', 'nTWE', 'EIS', 'SPAN']);
    // Linux's INIT_SCTLR_EL1_MMU_ON adds M, C, I and (with CONFIG_ARM64_PTR_AUTH) the key enables.
    assert.deepEqual(set(decode('SCTLR_EL1', v | 0x1005n | (1n << 31n) | (1n << 27n))), ['M', 'C', 'SA', 'SA0', 'CP15BEN', 'EOS', 'I', 'nTWI', 'nTWE', 'EIS', 'SPAN', 'EnDA', 'EnIA']);
  });

  it('decodes TCR_EL1: zero at reset, and Linux\'s 48-bit, 4KB-granule setup', () => {
    assert.equal(a57.p.get('TCR_EL1'), 0n);
    const linux = 16n | (1n << 8n) | (1n << 10n) | (3n << 12n) | (16n << 16n) | (1n << 22n) | (1n << 24n) | (1n << 26n) | (3n << 28n) | (2n << 30n) | (4n << 32n) | (1n << 36n) | (1n << 37n);
    const f = decode('TCR_EL1', linux);
    assert.deepEqual(
      ['T0SZ', 'T1SZ', 'TG0', 'TG1', 'IPS', 'A1', 'AS', 'SH1', 'IRGN1'].map((n) => text(f, n)),
      ['16 (48-bit VA)', '16 (48-bit VA)', '0 (4KB)', '2 (4KB)', '4 (44 bits, 16TB)', '1 (TTBR1)', '1 (16 bits)', '3 (inner shareable)', '1 (write-back, write-allocate)'],
    );
    assert.deepEqual(set(f), ['A1', 'AS', 'TBI0']);
    assert.equal(text(decode('TCR_EL1', 25n | (25n << 16n)), 'T1SZ'), '25 (39-bit VA)');
  });

  it('decodes ESR_EL1: a kernel write fault, a BUG() brk, a system call; the reset value has EC 0', () => {
    assert.equal(text(decode('ESR_EL1', a57.p.get('ESR_EL1') as bigint), 'EC'), '0 (Unknown reason)');
    // "Unable to handle kernel paging request ... ESR = 0x96000047": DABT same EL, write, level 3 translation fault.
    const dabt = decode('ESR_EL1', 0x96000047n);
    assert.deepEqual(['EC', 'IL', 'WnR', 'DFSC'].map((n) => text(dabt, n)), ['37 (Data abort at the same EL)', '1 (32-bit)', '1 (write)', '7 (translation fault, level 3)']);
    const brk = decode('ESR_EL1', 0xf2000800n);
    assert.deepEqual(['EC', 'imm16'].map((n) => text(brk, n)), ['60 (BRK instruction)', String(0x800)]);
    assert.equal(text(decode('ESR_EL1', 0x56000000n), 'EC'), '21 (SVC in AArch64 (system call))');
    const iabt = decode('ESR_EL1', 0x8600000fn);
    assert.equal(text(iabt, 'IFSC'), '15 (permission fault, level 3)');
  });

  it('decodes TTBR1_EL1 into ASID and the table\'s physical address, and FPCR/FPSR', () => {
    const f = decode('TTBR1_EL1', (5n << 48n) | 0x41e3d000n | 1n);
    assert.deepEqual(f.map((x) => [x.name, x.text]), [['ASID', '5'], ['BADDR', '0x41e3d000'], ['CnP', '1']]);
    assert.equal(text(decode('fpcr', a57.p.get('fpcr') as bigint), 'RMode'), '0 (nearest)');
    assert.equal(text(decode('fpcr', 3n << 22n), 'RMode'), '3 (toward zero)');
    assert.deepEqual(set(decode('fpsr', 0x8000011n)), ['IOC', 'IXC', 'QC']);
    assert.equal(text(decode('CurrentEL', 4n), 'EL'), '1 (EL1)');
    assert.equal(text(decode('CPACR', 3n << 20n), 'FPEN'), '3 (not trapped)');
  });
});

describe('arch/aarch64: ABI tables', () => {
  it('is found by name, by the kernel\'s name arm64, and by EM_AARCH64', () => {
    assert.equal(getArch('aarch64'), aarch64);
    assert.equal(getArch('arm64'), aarch64);
    assert.equal(archForElfMachine(EM_AARCH64), aarch64);
    assert.equal(EM_AARCH64, 183);
    assert.equal(archForElfMachine(62)?.name, 'x86_64');
  });

  it('numbers registers as AADWARF64 does, every name one QEMU describes, and round-trips', async () => {
    const names = new Set((await resetState(recording('qemu-aarch64-gdbstub'))).desc.registers.map((r) => r.name));
    const d = aarch64.dwarfRegisters;
    assert.deepEqual([d[0], d[29], d[30], d[31], d[32], d[64], d[95]], ['x0', 'x29', 'x30', 'sp', 'pc', 'v0', 'v31']);
    d.forEach((name, i) => {
      if (!name) return;
      assert.ok(names.has(name), name);
      assert.equal(d.indexOf(name), i);
    });
    assert.equal(d.filter(Boolean).length, 31 + 2 + 32);
    assert.deepEqual([d[aarch64.dwarfPc], d[aarch64.dwarfSp], d[aarch64.dwarfFp], d[aarch64.returnAddressColumn]], [aarch64.pcRegister, aarch64.spRegister, aarch64.fpRegister, 'x30']);
    assert.deepEqual(aarch64.returnAddress, { kind: 'register', dwarf: 30 });
    assert.deepEqual(aarch64.calleeSaved.map((n) => d[n]), ['x19', 'x20', 'x21', 'x22', 'x23', 'x24', 'x25', 'x26', 'x27', 'x28', 'x29']);
    for (const real of Object.values(aarch64.registerAliases ?? {})) assert.ok(names.has(real), real);
    assert.equal(aarch64.charSigned, false);
    assert.equal(aarch64.breakpointKind, 4);
  });
});

/** A stack of 8-byte words for the unwinder. */
function memoryOf(words: Array<[bigint, bigint]>): (addr: bigint, size: number) => Promise<Buffer | undefined> {
  const m = new Map(words);
  return async (addr, size) => {
    const v = m.get(addr);
    if (v === undefined || size !== 8) return undefined;
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return b;
  };
}

describe('arch/aarch64: unwinding through x30 and frame records', () => {
  const F = 0xffff800008100000n; // a function
  const C = 0xffff800008200000n; // its caller
  const sp = 0xffff80000a003e00n;

  it('takes the return address from x30 at a function\'s first instruction (no CFI rule for it yet)', async () => {
    const entry: UnwindRow = { start: F, end: F + 4n, cfa: { kind: 'regOffset', reg: 31, offset: 0 }, regs: new Map() };
    // The caller, after its prologue: CFA = x29 + 32, x29 and x30 saved at CFA-32 and CFA-24.
    const caller: UnwindRow = {
      start: C,
      end: C + 0x100n,
      cfa: { kind: 'regOffset', reg: 29, offset: 32 },
      regs: new Map([
        [29, { kind: 'offset', offset: -32 }],
        [30, { kind: 'offset', offset: -24 }],
      ]),
    };
    const cfi = { rowAt: (pc: bigint) => [entry, caller].find((r) => pc >= r.start && pc < r.end) } as unknown as CallFrameInfo;
    const fp = sp; // the caller's frame record, at its sp
    const unwinder = new Unwinder(aarch64, (pc) => cfi.rowAt(pc), (pc) => pc >= C && pc < C + 0x100n, memoryOf([[fp, 0n], [fp + 8n, 0n]]));
    const frames = await unwinder.unwind(new Map([[32, F], [31, sp], [29, fp], [30, C + 0x44n]]));
    assert.deepEqual(frames.map((f) => [f.pc, f.method]), [[F, 'cfi'], [C + 0x44n, 'cfi']]);
    // A call through x30 pushes nothing: the caller's sp is the callee's at entry.
    assert.equal(frames[0].cfa, sp);
    assert.equal(frames[1].regs.get(31), sp);
    assert.equal(frames[1].regs.get(30), C + 0x44n);
  });

  it('walks frame records [x29] = caller\'s x29, [x29+8] = x30 where there is no CFI, until x29 is 0', async () => {
    const fp1 = sp + 0x20n;
    const fp2 = sp + 0x80n;
    const mem = memoryOf([
      [fp1, fp2],
      [fp1 + 8n, C + 0x10n],
      [fp2, 0n],
      [fp2 + 8n, C + 0x80n],
    ]);
    const frames = await new Unwinder(aarch64, () => undefined, () => true, mem).unwind(new Map([[32, F], [31, sp], [29, fp1], [30, 0n]]));
    assert.deepEqual(frames.map((f) => f.pc), [F, C + 0x10n, C + 0x80n]);
    assert.deepEqual(frames.map((f) => f.method), ['frame-pointer', 'frame-pointer', 'none']);
    // The record sits at the bottom of the frame: where the caller's sp was is not known.
    assert.equal(frames[0].cfa, undefined);
    assert.equal(frames[1].regs.get(31), undefined);
  });

  it('stops on a frame record that points down the stack (a loop)', async () => {
    const fp1 = sp + 0x40n;
    const mem = memoryOf([
      [fp1, sp + 0x20n],
      [fp1 + 8n, C + 0x10n],
    ]);
    const frames = await new Unwinder(aarch64, () => undefined, () => true, mem).unwind(new Map([[32, F], [31, sp], [29, fp1]]));
    assert.deepEqual(frames.map((f) => f.pc), [F]);
  });
});

const SNIPPET = `
.arch armv8.3-a
.text
f:
  stp x29, x30, [sp, #-32]!
  mov x29, sp
  bl g
  blr x3
  br x4
  b g
  b.ne f
  cbz x1, f
  tbnz w2, #3, g
  ldr x0, [sp, #16]
  adrp x0, f
  svc #0
  mrs x0, sctlr_el1
  msr daifset, #2
  blraa x5, sp
  paciasp
  brk #0x800
  ldp x29, x30, [sp], #32
  ret
g:
  ret
`;

const CALLS = new Set(['bl', 'blr', 'blraa', 'blraaz', 'blrab', 'blrabz']);
const BRANCHES = /^(b|bl|b\..*|cbn?z|tbn?z)$/;

describe('arch/aarch64: disassembly (aarch64-linux-gnu-objdump as oracle)', function () {
  this.timeout(60_000);

  const readFrom = (code: Buffer, at: bigint): ReadCode => async (addr, length) => {
    if (addr < at || addr >= at + BigInt(code.length)) return Buffer.alloc(0);
    return code.subarray(Number(addr - at), Number(addr - at) + length);
  };

  it('decodes assembled code as objdump does: boundaries, mnemonics, branch targets, calls', async function () {
    requireOrSkip(this, haveCrossBinutils('aarch64'), 'binutils-aarch64-linux-gnu is not installed');
    const { code, listing } = assemble('aarch64', SNIPPET);
    const dis = await Disassembler.create(aarch64.disassembler, 'intel');
    const ours = await dis.forward(readFrom(code, 0n), 0n, listing.length);
    assert.deepEqual(ours.map((i) => [i.address, i.bytes.toString('hex'), i.mnemonic]), listing.map((o) => [o.address, o.bytes.toString('hex'), o.mnemonic]));
    for (const [k, o] of listing.entries()) {
      assert.equal(ours[k].isCall, CALLS.has(o.mnemonic), `${o.mnemonic} ${o.operands}`);
      if (BRANCHES.test(o.mnemonic)) assert.equal(ours[k].target, o.target, `${o.mnemonic} ${o.operands}`);
    }
    assert.equal(await callReturnAddress(aarch64.disassembler, readFrom(code, 0n), 8n), 12n);
    assert.equal(await callReturnAddress(aarch64.disassembler, readFrom(code, 0n), 0x10n), undefined);
    // Fixed-size instructions decode backwards from any address.
    const back = await dis.window(readFrom(code, 0n), 0x48n, -3, 4);
    assert.deepEqual(back.map((i) => [i.address, i.mnemonic]), [[0x3cn, 'paciasp'], [0x40n, 'brk'], [0x44n, 'ldp'], [0x48n, 'ret']]);
  });

  it('classifies calls and branches from the encoding, pointer-authenticated calls included', () => {
    const w = (v: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v >>> 0);
      return b;
    };
    assert.deepEqual(classifyA64(w(0x97fffffe), 0x1000n), { call: true, target: 0xff8n });
    assert.deepEqual(classifyA64(w(0xd63f0060), 0n), { call: true });
    assert.deepEqual(classifyA64(w(0xd63f081f), 0n), { call: true }); // blraaz x0
    assert.deepEqual(classifyA64(w(0xd73f0c22), 0n), { call: true }); // blrab x1, x2
    assert.equal(classifyA64(w(0xd71f0864), 0n), undefined); // braa x3, x4
    assert.equal(classifyA64(w(0xd65f0bff), 0n), undefined); // retaa
    assert.equal(classifyA64(w(0xd61f0080), 0n), undefined); // br x4
    assert.equal(classifyA64(w(0xd65f03c0), 0n), undefined); // ret
    assert.deepEqual(classifyA64(w(0x17ffffff), 0xffff800008000000n), { call: false, target: 0xffff800007fffffcn });
  });

  it('decodes kernel_clone of the arm64 sample vmlinux as objdump does, when that guest is built', async function () {
    const guest = cachedGuest('aarch64');
    if (!guest || !haveCrossBinutils('aarch64')) {
      // The assembled snippet above covers the decoder; this adds the kernel's real code when it is there.
      console.log('      skipped: the aarch64 sample guest is not built (node dist/cli.js guest build --arch aarch64)');
      this.skip();
    }
    const sym = nmSymbol('aarch64', guest.vmlinux, 'kernel_clone');
    assert.ok(sym, 'kernel_clone in vmlinux');
    const listing = objdumpRange('aarch64', guest.vmlinux, sym.address, sym.address + sym.size);
    const code = Buffer.concat(listing.map((o) => o.bytes));
    const { ElfFile } = await import('../../src/symbols/elf');
    const { SymbolTable } = await import('../../src/symbols/symtab');
    const elf = ElfFile.open(guest.vmlinux);
    try {
      const dis = await Disassembler.create(aarch64.disassembler, 'intel', SymbolTable.fromElf(elf));
      const ours = await dis.forward(readFrom(code, sym.address), sym.address, listing.length);
      assert.deepEqual(ours.map((i) => [i.address, i.mnemonic]), listing.map((o) => [o.address, o.mnemonic]));
      let calls = 0;
      for (const [k, o] of listing.entries()) {
        assert.equal(ours[k].isCall, CALLS.has(o.mnemonic), `${o.address.toString(16)}: ${o.mnemonic} ${o.operands}`);
        if (BRANCHES.test(o.mnemonic)) assert.equal(ours[k].target, o.target, `${o.address.toString(16)}: ${o.mnemonic} ${o.operands}`);
        if (o.mnemonic === 'bl' && o.targetSymbol) {
          calls++;
          assert.ok(ours[k].text.endsWith(`<${o.targetSymbol}>`), `${ours[k].text} vs <${o.targetSymbol}>`);
        }
      }
      assert.ok(calls > 3, `kernel_clone makes calls (${calls})`);
    } finally {
      elf.close();
    }
  });
});
