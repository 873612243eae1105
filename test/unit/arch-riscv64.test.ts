/**
 * The riscv64 arch on real bytes: QEMU 7.2's target description, reset registers and reset-ROM
 * code (qemu-system-riscv64 -M virt -bios none, recorded by scripts/capture-rsp-fixture.mjs),
 * the CSR decoders on those values and on values the privileged spec defines for states a
 * hart at reset isn't in, the DWARF numbering, the unwinder's ra and frame-pointer rules, and
 * the disassembler (compressed instructions included) against binutils' objdump.
 */
import * as assert from 'node:assert/strict';
import { archForElfMachine, getArch } from '../../src/arch';
import { decodeFields, planGroups, type DecodedField } from '../../src/arch/regview';
import { classifyRiscv, riscv64 } from '../../src/arch/riscv64';
import { FREG_NAMES, XREG_NAMES } from '../../src/arch/riscv64-regs';
import { Disassembler, callReturnAddress, type Instruction, type ReadCode } from '../../src/engine/disasm';
import { Unwinder } from '../../src/engine/unwind';
import { cachedGuest } from '../../src/guest/build';
import { EM_RISCV } from '../../src/symbols/elf';
import { CallFrameInfo, type FrameSectionData, type UnwindRow } from '../../src/symbols/dwarf/frame';
import { assemble, disassembleBytes, haveCrossBinutils, nmSymbol, objdumpRange, type ObjdumpInsn } from '../support/cross';
import { requireOrSkip } from '../support/env';
import { recording, resetState, type ResetState } from './arch-fixture';

const spec = riscv64.registerView;
const decode = (name: string, value: bigint): DecodedField[] => decodeFields(spec.layouts[name], value, () => undefined);
const set = (fields: DecodedField[]): string[] => fields.filter((f) => f.toggleable && f.value === 1n).map((f) => f.name);
const text = (fields: DecodedField[], name: string): string | undefined => fields.find((f) => f.name === name)?.text;

describe('arch/riscv64: QEMU 7.2 virt target description and reset state', () => {
  let s: ResetState;

  before(async () => {
    s = await resetState(recording('qemu-riscv64-gdbstub'));
  });

  it('parses target.xml and its includes: cpu, fpu, the virtual priv register and the CSRs', () => {
    assert.equal(s.desc.architecture, riscv64.tdescArchitecture);
    assert.deepEqual([...new Set(s.desc.registers.map((r) => r.feature))], ['org.gnu.gdb.riscv.cpu', 'org.gnu.gdb.riscv.fpu', 'org.gnu.gdb.riscv.virtual', 'org.gnu.gdb.riscv.csr']);
    const byName = new Map(s.desc.registers.map((r) => [r.name, r]));
    assert.deepEqual(s.desc.registers.slice(0, 32).map((r) => r.name), XREG_NAMES);
    assert.deepEqual([byName.get('pc')?.regnum, byName.get('ft0')?.regnum, byName.get('ft11')?.regnum, byName.get('priv')?.regnum], [32, 33, 64, 65]);
    // QEMU numbers a CSR 66 + its CSR number: sstatus 0x100, satp 0x180, mstatus 0x300.
    assert.deepEqual(['sstatus', 'satp', 'mstatus', 'mhartid'].map((n) => (byName.get(n)?.regnum ?? 0) - 66), [0x100, 0x180, 0x300, 0xf14]);
    // fflags/frm/fcsr are listed only when the FPU is on as the vCPU is created; at reset FS is Off.
    for (const n of ['fflags', 'frm', 'fcsr', 's0']) assert.ok(!byName.has(n), n);
  });

  it('reads x0-x31 and pc from the g block; p agrees, and refuses only pmpcfg1/3, which RV64 lacks', () => {
    assert.deepEqual([...s.block.keys()], [...XREG_NAMES, 'pc']);
    for (const [name, v] of s.block) assert.equal(s.p.get(name), v, name);
    assert.equal(s.block.get('pc'), 0x1000n);
    assert.deepEqual([...s.refused.keys()], ['pmpcfg1', 'pmpcfg3']);
  });

  it('puts every register in one of the arch\'s groups, none left to a fallback', () => {
    const groups = planGroups(spec, s.desc.registers);
    const arch = ['General', 'FPU', 'Supervisor CSRs', 'Machine CSRs', 'Hypervisor CSRs', 'Counters', 'PMP', 'Debug triggers', 'Other CSRs'];
    assert.deepEqual(groups.map((g) => g.name).filter((n) => !arch.includes(n)), []);
    assert.equal(groups.reduce((n, g) => n + g.registers.length, 0), s.desc.registers.length);
    const members = (g: string): string[] => groups.find((x) => x.name === g)?.registers.map((r) => r.name) ?? [];
    assert.deepEqual(members('General'), [...XREG_NAMES, 'pc']);
    assert.deepEqual(members('FPU'), FREG_NAMES);
    assert.deepEqual(members('Supervisor CSRs').slice(0, 9), ['priv', 'sstatus', 'sie', 'sip', 'stvec', 'sepc', 'scause', 'stval', 'satp']);
    assert.ok(members('Hypervisor CSRs').includes('hgatp') && members('Hypervisor CSRs').includes('vsatp'));
    assert.equal(members('PMP').length, 4 + 16);
    // Nothing QEMU 7.2 lists needs the catch-all: every CSR it has is placed on purpose.
    assert.deepEqual(members('Other CSRs'), []);
  });

  it('decodes the reset state: M-mode, SXL/UXL 64-bit, FPU off, misa rv64 IMAFDC+H+S+U, a pending M timer', () => {
    assert.equal(text(decode('priv', s.p.get('priv') as bigint), 'PRV'), '3 (machine)');
    const m = decode('mstatus', s.p.get('mstatus') as bigint);
    assert.equal(s.p.get('mstatus'), 0xa00000000n);
    assert.deepEqual(['UXL', 'SXL', 'FS', 'MPP'].map((n) => text(m, n)), ['2 (64-bit)', '2 (64-bit)', '0 (Off)', '0 (user)']);
    assert.deepEqual(set(m), []);
    assert.equal(text(decode('sstatus', s.p.get('sstatus') as bigint), 'UXL'), '2 (64-bit)');
    const misa = decode('misa', s.p.get('misa') as bigint);
    assert.equal(text(misa, 'MXL'), '2 (64-bit)');
    assert.deepEqual(set(misa), ['A', 'C', 'D', 'F', 'H', 'I', 'M', 'S', 'U']);
    assert.deepEqual(set(decode('mip', s.p.get('mip') as bigint)), ['MTI']);
    assert.equal(text(decode('satp', s.p.get('satp') as bigint), 'MODE'), '0 (Bare: no translation)');
  });

  it('decodes sstatus as the kernel runs: SPP, SPIE, a dirty FPU and SD; SUM during uaccess', () => {
    const f = decode('sstatus', 0x8000000200006120n);
    assert.deepEqual(set(f), ['SPIE', 'SPP', 'SD']);
    assert.deepEqual(['SPP', 'FS', 'UXL'].map((n) => text(f, n)), ['1 (supervisor)', '3 (Dirty)', '2 (64-bit)']);
    assert.deepEqual(set(decode('sstatus', (1n << 18n) | 2n)), ['SIE', 'SUM']);
  });

  it('decodes scause by its interrupt bit: timer interrupt, page faults, system calls', () => {
    assert.deepEqual(decode('scause', 0x8000000000000005n).map((f) => [f.name, f.text]), [['Interrupt', '1 (interrupt)'], ['Interrupt code', '5 (Supervisor timer interrupt)']]);
    assert.deepEqual(decode('scause', 13n).map((f) => [f.name, f.text]), [['Interrupt', '0 (exception)'], ['Exception code', '13 (Load page fault)']]);
    assert.equal(text(decode('scause', 15n), 'Exception code'), '15 (Store/AMO page fault)');
    assert.equal(text(decode('mcause', 9n), 'Exception code'), '9 (Environment call from S-mode (SBI call))');
    assert.equal(text(decode('scause', 0x8000000000000009n), 'Interrupt code'), '9 (Supervisor external interrupt)');
  });

  it('decodes satp: Sv39/Sv48/Sv57, the ASID, and the PPN as the root table\'s physical address', () => {
    const f = decode('satp', (8n << 60n) | (3n << 44n) | 0x80a3dn);
    assert.deepEqual(f.map((x) => [x.name, x.text]), [['MODE', '8 (Sv39)'], ['ASID', '3'], ['PPN', `${0x80a3d} (root table at 0x80a3d000)`]]);
    assert.equal(text(decode('satp', 9n << 60n), 'MODE'), '9 (Sv48)');
    assert.equal(text(decode('satp', 10n << 60n), 'MODE'), '10 (Sv57)');
  });

  it('decodes sie/sip, stvec, medeleg and the FP CSRs a later QEMU lists', () => {
    assert.deepEqual(set(decode('sie', 0x222n)), ['SSI', 'STI', 'SEI']);
    assert.deepEqual(decode('stvec', 0xffffffff8000369cn).map((f) => f.text), ['0xffffffff8000369c', '0 (Direct: every trap to BASE)']);
    // OpenSBI delegates misaligned fetches, breakpoints, user ecalls and page faults to the kernel.
    assert.deepEqual(set(decode('medeleg', 0xb109n)), ['E0', 'E3', 'E8', 'E12', 'E13', 'E15']);
    const fcsr = decode('fcsr', 0x21n);
    assert.deepEqual([set(fcsr), text(fcsr, 'FRM')], [['NX'], '1 (RTZ: toward zero)']);
  });
});

describe('arch/riscv64: ABI tables', () => {
  it('is found by name, by the kernel\'s name riscv, and by EM_RISCV', () => {
    assert.equal(getArch('riscv64'), riscv64);
    assert.equal(getArch('riscv'), riscv64);
    assert.equal(archForElfMachine(EM_RISCV), riscv64);
    assert.equal(EM_RISCV, 243);
  });

  it('numbers registers as the psABI does, every name one QEMU describes, and round-trips', async () => {
    const names = new Set((await resetState(recording('qemu-riscv64-gdbstub'))).desc.registers.map((r) => r.name));
    const d = riscv64.dwarfRegisters;
    assert.deepEqual([d[0], d[1], d[2], d[8], d[10], d[31], d[32], d[42], d[63], d[64]], ['zero', 'ra', 'sp', 'fp', 'a0', 't6', 'ft0', 'fa0', 'ft11', 'pc']);
    d.forEach((name, i) => {
      assert.ok(names.has(name), name);
      assert.equal(d.indexOf(name), i);
    });
    assert.deepEqual([d[riscv64.dwarfPc], d[riscv64.dwarfSp], d[riscv64.dwarfFp], d[riscv64.returnAddressColumn]], [riscv64.pcRegister, riscv64.spRegister, riscv64.fpRegister, 'ra']);
    assert.deepEqual(riscv64.returnAddress, { kind: 'register', dwarf: 1 });
    assert.deepEqual(riscv64.calleeSaved.map((n) => d[n]), ['fp', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11']);
    const aliases = riscv64.registerAliases ?? {};
    assert.deepEqual([aliases.x8, aliases.s0, aliases.x1, aliases.f10], ['fp', 'fp', 'ra', 'fa0']);
    for (const real of Object.values(aliases)) assert.ok(names.has(real), real);
    assert.equal(riscv64.charSigned, false);
  });
});

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

describe('arch/riscv64: unwinding through ra and s0', () => {
  it('reads GCC\'s riscv CFI, whose CIE sets the CFA register before any CFA (real bytes of the sample vmlinux)', () => {
    // The first CIE and FDE of the riscv64 sample vmlinux's .debug_frame; readelf --debug-dump=frames:
    //   CIE: data align -4, RA column 1; DW_CFA_def_cfa_register: r2 (sp)
    //   FDE pc=ffffffff80002008..ffffffff8000203c: advance 2, def_cfa_offset 32; advance 8, s0 at cfa-16,
    //   s1 at cfa-24, ra at cfa-8, s2 at cfa-32; advance 2, def_cfa: r8 (s0) ofs 0; …
    const bytes = Buffer.from(
      '0c000000ffffffff0300017c010d0200' + '340000000000000008200080ffffffff' + '3400000000000000420e204888048906' + '81029208420c08005cc142c80c022042' + 'c942d2440e000000',
      'hex',
    );
    const sec: FrameSectionData = { name: '.debug_frame', size: bytes.length, info: { addr: 0n }, all: () => bytes };
    const cfi = new CallFrameInfo({ get: (n) => (n === '.debug_frame' ? sec : undefined) });
    const at = (pc: bigint): UnwindRow | undefined => cfi.rowAt(pc);
    assert.deepEqual(at(0xffffffff80002008n)?.cfa, { kind: 'regOffset', reg: 2, offset: 0 });
    assert.deepEqual(at(0xffffffff8000200an)?.cfa, { kind: 'regOffset', reg: 2, offset: 32 });
    const saved = at(0xffffffff80002012n);
    assert.deepEqual([1, 8, 9, 18].map((r) => saved?.regs.get(r)), [-8, -16, -24, -32].map((offset) => ({ kind: 'offset', offset })));
    assert.deepEqual(at(0xffffffff80002014n)?.cfa, { kind: 'regOffset', reg: 8, offset: 0 });
  });

  const F = 0xffffffff80100000n;
  const C = 0xffffffff80200000n;
  const sp = 0xff20000000813e00n;

  it('walks the frame-pointer chain: ra at s0-8, the caller\'s s0 at s0-16, s0 the caller\'s sp', async () => {
    const fp1 = sp + 0x30n;
    const fp2 = sp + 0x90n;
    const mem = memoryOf([
      [fp1 - 16n, fp2],
      [fp1 - 8n, C + 0x20n],
      [fp2 - 16n, 0n],
      [fp2 - 8n, C + 0x84n],
    ]);
    const frames = await new Unwinder(riscv64, () => undefined, () => true, mem).unwind(new Map([[64, F], [2, sp], [8, fp1], [1, C + 0x20n]]));
    assert.deepEqual(frames.map((f) => f.pc), [F, C + 0x20n, C + 0x84n]);
    assert.deepEqual(frames.map((f) => f.cfa), [fp1, fp2, undefined]);
    assert.equal(frames[1].regs.get(2), fp1);
    assert.equal(frames[1].regs.get(8), fp2);
  });

  it('takes the return address from ra in a leaf whose CFI saves nothing', async () => {
    const leaf: UnwindRow = { start: F, end: F + 0x10n, cfa: { kind: 'regOffset', reg: 2, offset: 0 }, regs: new Map() };
    const caller: UnwindRow = { start: C, end: C + 0x100n, cfa: { kind: 'regOffset', reg: 2, offset: 32 }, regs: new Map([[1, { kind: 'offset', offset: -8 }]]) };
    const cfi = { rowAt: (pc: bigint) => [leaf, caller].find((r) => pc >= r.start && pc < r.end) } as unknown as CallFrameInfo;
    const unwinder = new Unwinder(riscv64, (pc) => cfi.rowAt(pc), (pc) => pc >= C && pc < C + 0x100n, memoryOf([[sp + 24n, 0n]]));
    const frames = await unwinder.unwind(new Map([[64, F + 4n], [2, sp], [1, C + 0x40n]]));
    assert.deepEqual(frames.map((f) => [f.pc, f.cfa]), [[F + 4n, sp], [C + 0x40n, sp + 32n]]);
  });
});

/** objdump's view of whether a jump links a return address: rd ra (implicit in `jal x`/`jalr x`) or t0. */
function objdumpCall(o: ObjdumpInsn): boolean {
  if (o.mnemonic !== 'jal' && o.mnemonic !== 'jalr') return false;
  const ops = o.operands.split(',');
  return ops.length === 1 || ops[0] === 'ra' || ops[0] === 't0';
}

/**
 * Capstone names compressed instructions `c.*` where objdump prints the base instruction or
 * its alias (`c.addi4spn` as `add`, `c.jr ra` as `ret`); the family must agree. objdump also
 * prints an immediate form by its register form's name (`addi` as `add`, `addiw` as `addw`).
 */
function sameMnemonic(ours: Instruction, o: ObjdumpInsn): boolean {
  if (ours.bytes.length === 4) return ours.mnemonic === o.mnemonic || ours.mnemonic === `${o.mnemonic}i` || ours.mnemonic === o.mnemonic.replace(/w$/, 'iw');
  const base = ours.mnemonic.replace(/^c\./, '');
  const theirs = o.mnemonic === 'ret' ? 'jr' : o.mnemonic === 'sext.w' ? 'addiw' : o.mnemonic;
  return base.startsWith(theirs);
}

const SNIPPET = `
.option norelax
.text
f:
  addi sp, sp, -16
  sd ra, 8(sp)
  sd s0, 0(sp)
  addi s0, sp, 16
  jal ra, g
  jal t0, g
  jal zero, g
  jalr ra, 0(a5)
  jalr zero, 0(a5)
  c.jalr a5
  c.jr a5
  c.j f
  c.beqz a0, f
  bne a0, a1, g
  bltu a2, a3, f
  csrr a0, sstatus
  sfence.vma
  c.ebreak
  ld ra, 8(sp)
  ld s0, 0(sp)
  addi sp, sp, 16
  ret
g:
  ret
`;

describe('arch/riscv64: disassembly (riscv64-linux-gnu-objdump as oracle)', function () {
  this.timeout(60_000);

  const readFrom = (code: Buffer, at: bigint): ReadCode => async (addr, length) => {
    if (addr < at || addr >= at + BigInt(code.length)) return Buffer.alloc(0);
    return code.subarray(Number(addr - at), Number(addr - at) + length);
  };

  const compare = (ours: Instruction[], listing: ObjdumpInsn[]): void => {
    assert.deepEqual(ours.map((i) => [i.address, i.bytes.toString('hex')]), listing.map((o) => [o.address, o.bytes.toString('hex')]));
    for (const [k, o] of listing.entries()) {
      const what = `${o.address.toString(16)}: ${o.mnemonic} ${o.operands} / ${ours[k].text}`;
      assert.ok(sameMnemonic(ours[k], o), what);
      assert.equal(ours[k].isCall, objdumpCall(o), what);
      if (o.target !== undefined && /^(j|jal|b[a-z]*)$/.test(o.mnemonic)) assert.equal(ours[k].target, o.target, what);
    }
  };

  it('decodes the reset ROM QEMU really runs (read from guest memory at 0x1000) as objdump does', async function () {
    requireOrSkip(this, haveCrossBinutils('riscv64'), 'binutils-riscv64-linux-gnu is not installed');
    const rom = Buffer.from(recording('qemu-riscv64-gdbstub').payload('m1000,20'), 'hex').subarray(0, 0x18);
    const listing = disassembleBytes('riscv64', rom, 0x1000n);
    const dis = await Disassembler.create(riscv64.disassembler, 'intel');
    const ours = await dis.forward(readFrom(rom, 0x1000n), 0x1000n, listing.length);
    compare(ours, listing);
    assert.deepEqual(ours.map((i) => i.mnemonic), ['auipc', 'addi', 'csrr', 'ld', 'ld', 'jr']);
    // `jr t0` jumps to the firmware: not a call, so nexti steps it rather than running over it.
    assert.equal(await callReturnAddress(riscv64.disassembler, readFrom(rom, 0x1000n), 0x1014n), undefined);
  });

  it('decodes assembled code, compressed instructions included: boundaries, targets, calls by link register', async function () {
    requireOrSkip(this, haveCrossBinutils('riscv64'), 'binutils-riscv64-linux-gnu is not installed');
    const { code, listing } = assemble('riscv64', SNIPPET, ['-march=rv64gc']);
    assert.ok(listing.some((o) => o.bytes.length === 2) && listing.some((o) => o.bytes.length === 4));
    const dis = await Disassembler.create(riscv64.disassembler, 'intel');
    const ours = await dis.forward(readFrom(code, 0n), 0n, listing.length);
    compare(ours, listing);
    // Targets are absolute, as objdump and gdb print them (Capstone's are pc-relative).
    const j = ours.find((i) => i.mnemonic === 'jal' && i.operands.startsWith('t0'));
    assert.equal(j?.operands, `t0, 0x${listing[listing.length - 1].address.toString(16)}`);
    const read = readFrom(code, 0n);
    const at = (m: string): bigint => ours.find((i) => i.mnemonic === m)?.address ?? -1n;
    assert.equal(await callReturnAddress(riscv64.disassembler, read, at('c.jalr')), at('c.jalr') + 2n);
    assert.equal(await callReturnAddress(riscv64.disassembler, read, at('jal')), at('jal') + 4n);
    assert.equal(await callReturnAddress(riscv64.disassembler, read, at('c.jr')), undefined);
    // Mixed 2- and 4-byte instructions: going back needs a boundary to decode from (the start here).
    const back = await dis.window(read, at('sfence.vma'), -2, 3);
    assert.deepEqual(back.map((i) => i.mnemonic), ['bltu', 'csrr', 'sfence.vma']);
  });

  it('classifies jumps by the link register they write', () => {
    const h = (v: number): Buffer => Buffer.from([v & 0xff, v >> 8]);
    const w = (v: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v >>> 0);
      return b;
    };
    assert.deepEqual(classifyRiscv(w(0x03a000ef), 8n), { call: true, target: 0x42n }); // jal ra
    assert.deepEqual(classifyRiscv(w(0x0320006f), 0x10n), { call: false, target: 0x42n }); // j
    assert.deepEqual(classifyRiscv(w(0x000780e7), 0n), { call: true }); // jalr a5
    assert.deepEqual(classifyRiscv(w(0x00078067), 0n), { call: false }); // jr a5
    assert.deepEqual(classifyRiscv(h(0x9782), 0n), { call: true }); // c.jalr a5
    assert.deepEqual(classifyRiscv(h(0x8082), 0n), { call: false }); // ret
    assert.equal(classifyRiscv(h(0x9002), 0n), undefined); // c.ebreak
    assert.deepEqual(classifyRiscv(h(0xb7c5), 0x20n), { call: false, target: 0n }); // c.j back
    assert.equal(classifyRiscv(w(0x10002573), 0n), undefined); // csrr
  });

  it('decodes kernel_clone of the riscv64 sample vmlinux as objdump does, when that guest is built', async function () {
    const guest = cachedGuest('riscv64');
    if (!guest || !haveCrossBinutils('riscv64')) {
      console.log('      skipped: the riscv64 sample guest is not built (node dist/cli.js guest build --arch riscv64)');
      this.skip();
    }
    const sym = nmSymbol('riscv64', guest.vmlinux, 'kernel_clone');
    assert.ok(sym, 'kernel_clone in vmlinux');
    const listing = objdumpRange('riscv64', guest.vmlinux, sym.address, sym.address + sym.size);
    const code = Buffer.concat(listing.map((o) => o.bytes));
    const dis = await Disassembler.create(riscv64.disassembler, 'intel');
    const ours = await dis.forward(readFrom(code, sym.address), sym.address, listing.length);
    compare(ours, listing);
    assert.ok(listing.filter(objdumpCall).length > 3, 'kernel_clone makes calls');
  });
});
