/**
 * Register groups and bit decoders. Values come from the real QEMU 7.2 x86_64 gdbstub
 * exchange (a vCPU at reset: CR0 = 0x60000010, MXCSR = 0x1f80, CS = 0xf000) and, for
 * states a reset CPU is not in, from the bit positions the Intel SDM gives.
 */
import * as assert from 'node:assert/strict';
import { decodeFields, planGroups, type DecodedField } from '../../src/arch/regview';
import { x86_64 } from '../../src/arch/x86_64';
import { extendedToNumber } from '../../src/adapter/registers';
import { leToBigInt } from '../../src/engine/target';
import { parseTargetDescription, splitRegisterBlock, type RegisterInfo } from '../../src/rsp/targetxml';
import { fetchRecorded, payload } from './fixture';

const spec = x86_64.registerView;
const decode = (name: string, value: bigint, other: Record<string, bigint> = {}): DecodedField[] => decodeFields(spec.layouts[name], value, (n) => other[n]);
const set = (fields: DecodedField[]): string[] => fields.filter((f) => f.toggleable && f.value === 1n).map((f) => f.name);
const field = (fields: DecodedField[], name: string): DecodedField | undefined => fields.find((f) => f.name === name);

describe('arch/regview: x86_64 register groups and decoders', () => {
  let registers: RegisterInfo[];
  let reset: Map<string, bigint>;

  before(async () => {
    registers = (await parseTargetDescription('target.xml', fetchRecorded)).registers;
    const block = splitRegisterBlock(registers, Buffer.from(payload('g'), 'hex'));
    reset = new Map(registers.filter((r) => block.has(r.regnum)).map((r) => [r.name, leToBigInt(block.get(r.regnum) as Buffer)]));
  });

  it("puts every register QEMU's target.xml describes in a named group, none left over", () => {
    const groups = planGroups(spec, registers);
    assert.deepEqual(groups.map((g) => g.name), ['General', 'Flags', 'Segment', 'Control', 'FPU', 'SSE']);
    const names = (g: string): string[] => groups.find((x) => x.name === g)?.registers.map((r) => r.name) ?? [];
    assert.deepEqual(names('General'), ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip']);
    assert.deepEqual(names('Control'), ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer']);
    assert.deepEqual(names('SSE').slice(-2), ['xmm15', 'mxcsr']);
    assert.equal(groups.reduce((n, g) => n + g.registers.length, 0), registers.length);
  });

  it('sends registers no rule claims to their target.xml group, so a newer QEMU loses nothing', () => {
    const extra: RegisterInfo[] = [...registers, { name: 'pkru', bitsize: 32, regnum: 999, type: 'int', group: 'system', feature: 'x' }, { name: 'zz', bitsize: 64, regnum: 1000, type: 'int', feature: 'x' }];
    const groups = planGroups(spec, extra);
    assert.deepEqual(groups.slice(-2).map((g) => [g.name, g.registers.map((r) => r.name)]), [['System', ['pkru']], ['Other', ['zz']]]);
  });

  it('decodes CR0 of a vCPU at reset: caches off (CD, NW), ET; no paging, no protection', () => {
    assert.equal(reset.get('cr0'), 0x60000010n);
    const f = decode('cr0', reset.get('cr0') as bigint);
    assert.deepEqual(set(f).sort(), ['CD', 'ET', 'NW']);
    assert.equal(field(f, 'PG')?.bits, '31');
    assert.match(field(f, 'WP')?.description ?? '', /read-only/);
  });

  it('decodes EFLAGS: the reset value 0x2 has no flag set; IOPL is a two-bit level', () => {
    assert.deepEqual(set(decode('eflags', reset.get('eflags') as bigint)), []);
    const f = decode('eflags', 0x3246n);
    assert.deepEqual(set(f), ['PF', 'ZF', 'IF']);
    assert.deepEqual([field(f, 'IOPL')?.text, field(f, 'IOPL')?.bits, field(f, 'IOPL')?.toggleable], ['3 (ring 3)', '12..13', false]);
  });

  it('decodes MXCSR at reset: all exceptions masked, round to nearest', () => {
    const f = decode('mxcsr', reset.get('mxcsr') as bigint);
    assert.deepEqual(set(f), ['IM', 'DM', 'ZM', 'OM', 'UM', 'PM']);
    assert.equal(field(f, 'RC')?.text, '0 (nearest)');
  });

  it('decodes a segment selector: CS 0xf000 at reset, and the kernel and user code selectors', () => {
    assert.deepEqual(decode('cs', reset.get('cs') as bigint).map((x) => x.text), ['0 (kernel)', '0 (GDT)', String(0xf000 >> 3)]);
    assert.deepEqual(decode('cs', 0x10n).map((x) => x.text), ['0 (kernel)', '0 (GDT)', '2']);
    assert.deepEqual(decode('cs', 0x33n).map((x) => x.text), ['3 (user)', '0 (GDT)', '6']);
  });

  it('decodes CR4 and EFER bits by the SDM positions', () => {
    assert.deepEqual(set(decode('cr4', (1n << 5n) | (1n << 7n) | (1n << 17n) | (1n << 20n) | (1n << 21n))), ['PAE', 'PGE', 'PCIDE', 'SMEP', 'SMAP']);
    assert.deepEqual(set(decode('efer', 0xd01n)), ['SCE', 'LME', 'LMA', 'NXE']);
  });

  it('splits CR3 by CR4.PCIDE: PWT/PCD at bits 3/4 without it, a 12-bit PCID with it', () => {
    const cr3 = 0x1a0a000n | 0x18n;
    const plain = decode('cr3', cr3, { cr4: 0n });
    assert.deepEqual(plain.map((x) => [x.name, x.text]), [['PWT', '1'], ['PCD', '1'], ['PDBR', '0x1a0a000']]);
    const withPcid = decode('cr3', 0x1a0a000n | 0x805n, { cr4: 1n << 17n });
    assert.deepEqual(withPcid.map((x) => [x.name, x.text]), [['PCID', String(0x805)], ['PDBR', '0x1a0a000']]);
    assert.match(field(decode('cr3', 0n, { cr4: 1n << 12n }), 'PDBR')?.description ?? '', /PML5/);
  });

  it('reads x87 80-bit extended values', () => {
    assert.equal(extendedToNumber(reset.get('st0') as bigint), 0);
    assert.equal(extendedToNumber(0x3fff8000000000000000n), 1);
    assert.equal(extendedToNumber(0xc000a000000000000000n), -2.5);
    assert.equal(extendedToNumber(0x7fff8000000000000000n), Infinity);
    assert.ok(Number.isNaN(extendedToNumber(0x7fffc000000000000000n)));
  });
});
