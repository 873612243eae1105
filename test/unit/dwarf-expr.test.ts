/**
 * DWARF expressions and location lists: each op family on hand-assembled bytes against a
 * fake frame (registers, a small memory map), then the real location lists of the sample
 * vmlinux against readelf --debug-dump=loc as the oracle, and every expression in them run.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as readline from 'node:readline';
import { DW_AT, DW_TAG } from '../../src/symbols/dwarf/constants';
import type { CompileUnit } from '../../src/symbols/dwarf/cu';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { describeExpression, ENTRY_VALUE_UNAVAILABLE, evaluateLocation, evaluateValue, UnavailableError, type ExprContext, type ExprLocation } from '../../src/symbols/dwarf/expr';
import { expressionAt, locListIndex, readLocListV4, readLocListV5, type LocList } from '../../src/symbols/dwarf/loclists';
import { decodeExpression, DW_OP as OP, opName } from '../../src/symbols/dwarf/opcodes';
import type { RangeContext } from '../../src/symbols/dwarf/ranges';
import { DwarfError } from '../../src/symbols/dwarf/reader';
import { DwarfSections } from '../../src/symbols/dwarf/sections';
import type { Die } from '../../src/symbols/dwarf/unit';
import { ElfFile, type ElfSection } from '../../src/symbols/elf';
import { sampleGuest } from '../support/env';
import { nmAddress } from '../support/oracle';

/** LEB128 of v: unsigned, or signed when `signed`. */
function leb(v: number | bigint, signed: boolean): number[] {
  const out: number[] = [];
  for (let n = BigInt(v); ; ) {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    const done = signed ? (n === 0n && !(b & 0x40)) || (n === -1n && (b & 0x40) !== 0) : n === 0n;
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}
const uleb = (v: number | bigint): number[] => leb(v, false);
const sleb = (v: number | bigint): number[] => leb(v, true);

const le = (v: bigint, size: number): number[] => Array.from({ length: size }, (_, i) => Number((BigInt.asUintN(size * 8, v) >> BigInt(8 * i)) & 0xffn));
const X = (...parts: Array<number | number[]>): Buffer => Buffer.from(parts.flat());
const M64 = (v: bigint): bigint => BigInt.asUintN(64, v);
/** DW_OP_litN */
const L = (n: number): number => OP.lit0 + n;

const MEM_BASE = 0xffff888000001000n;
/** Byte i of the fake memory holds i, so any read's value says where it read from. */
const MEM = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const REGS = new Map<number, bigint>([[0, 0x100n], [3, 0x3333n], [6, MEM_BASE + 0x80n], [7, MEM_BASE + 0x40n], [16, 0x1600n]]);

function ctx(extra: Partial<ExprContext> = {}): ExprContext {
  return {
    addressSize: 8,
    readMemory: async (addr, size) => {
      const off = addr - MEM_BASE;
      if (off < 0n || off + BigInt(size) > BigInt(MEM.length)) throw new Error(`Cannot access memory at address 0x${addr.toString(16)}`);
      return Buffer.from(MEM.subarray(Number(off), Number(off) + size));
    },
    register: (n) => REGS.get(n),
    ...extra,
  };
}

const loc = (expr: Buffer, c: ExprContext = ctx(), stack?: bigint[]): Promise<ExprLocation> => evaluateLocation(expr, c, stack);
const val = (expr: Buffer, c: ExprContext = ctx(), stack?: bigint[]): Promise<bigint> => evaluateValue(expr, c, stack);
/** The value an expression computes, as DW_OP_stack_value would hand it over. */
const sv = async (...parts: Array<number | number[]>): Promise<bigint> => {
  const l = await loc(X(...parts, OP.stack_value));
  assert.equal(l.kind, 'value', JSON.stringify(l, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  return (l as { value: bigint }).value;
};

const rejectsDwarf = (p: Promise<unknown>, re: RegExp): Promise<void> => assert.rejects(p, (e: unknown) => e instanceof DwarfError && re.test(e.message));

describe('symbols/dwarf/expr: constants and stack operations', () => {
  it('pushes lit0..lit31 and every constN form with its sign', async () => {
    assert.equal(await sv(OP.lit0), 0n);
    assert.equal(await sv(OP.lit0 + 31), 31n);
    assert.equal(await sv(OP.const1u, 0xff), 255n);
    assert.equal(await sv(OP.const1s, 0xff), M64(-1n));
    assert.equal(await sv(OP.const2u, le(0xfefen, 2)), 0xfefen);
    assert.equal(await sv(OP.const2s, le(-2050n, 2)), M64(-2050n));
    assert.equal(await sv(OP.const4u, le(0xffffffffn, 4)), 0xffffffffn);
    assert.equal(await sv(OP.const4s, le(-5n, 4)), M64(-5n));
    assert.equal(await sv(OP.const8u, le(0x8877665544332211n, 8)), 0x8877665544332211n);
    assert.equal(await sv(OP.const8s, le(-2n, 8)), M64(-2n));
    assert.equal(await sv(OP.constu, uleb(36028799426231859n)), 36028799426231859n);
    assert.equal(await sv(OP.consts, sleb(-4194305)), M64(-4194305n));
    assert.deepEqual(await loc(X(OP.addr, le(0xffffffff81a11040n, 8))), { kind: 'memory', address: 0xffffffff81a11040n });
  });

  it('wraps to 32 bits with a 4-byte address size (addr reads 4 bytes)', async () => {
    const c = ctx({ addressSize: 4 });
    assert.equal(await val(X(OP.const1s, 0xff), c), 0xffffffffn);
    assert.equal(await val(X(OP.const4u, le(0xfffffff0n, 4), OP.plus_uconst, uleb(0x20)), c), 0x10n);
    assert.deepEqual(await loc(X(OP.addr, le(0xc0001000n, 4), OP.stack_value), c), { kind: 'value', value: 0xc0001000n });
  });

  it('dup, drop, over, pick, swap', async () => {
    assert.equal(await sv(L(3), OP.dup, OP.plus), 6n);
    assert.equal(await sv(L(3), L(4), OP.drop), 3n);
    assert.equal(await sv(L(3), L(4), OP.over), 3n);
    assert.equal(await sv(L(1), L(2), L(3), OP.pick, 2), 1n);
    assert.equal(await sv(L(1), L(2), L(3), OP.pick, 0), 3n);
    assert.equal(await sv(L(9), L(2), OP.swap, OP.minus), M64(-7n));
  });

  it('rot moves the top entry under the next two: [1 2 3] → [3 1 2]', async () => {
    const rot = [L(1), L(2), L(3), OP.rot];
    assert.equal(await sv(...rot), 2n);
    assert.equal(await sv(...rot, OP.drop), 1n);
    assert.equal(await sv(...rot, OP.drop, OP.drop), 3n);
  });
});

describe('symbols/dwarf/expr: arithmetic, logic and control flow', () => {
  it('plus, minus, mul and neg wrap modulo 2^64', async () => {
    assert.equal(await sv(OP.lit0, L(1), OP.minus), 0xffffffffffffffffn);
    assert.equal(await sv(OP.const8u, le(0x8000000000000000n, 8), L(2), OP.mul), 0n);
    assert.equal(await sv(OP.const8s, le(-1n, 8), L(2), OP.plus), 1n);
    assert.equal(await sv(L(5), OP.neg), M64(-5n));
    assert.equal(await sv(L(5), OP.plus_uconst, uleb(2097151)), 2097156n);
  });

  it('div is signed and truncates toward zero; mod of generic values is unsigned (as gdb)', async () => {
    assert.equal(await sv(OP.consts, sleb(-7), L(2), OP.div), M64(-3n));
    assert.equal(await sv(L(7), L(2), OP.div), 3n);
    assert.equal(await sv(OP.consts, sleb(-1), L(10), OP.mod), 0xffffffffffffffffn % 10n);
    assert.equal(await sv(OP.lit0 + 17, L(5), OP.mod), 2n);
  });

  it('abs, not, and, or, xor', async () => {
    assert.equal(await sv(OP.consts, sleb(-5), OP.abs), 5n);
    assert.equal(await sv(L(5), OP.abs), 5n);
    assert.equal(await sv(OP.lit0, OP.not), 0xffffffffffffffffn);
    assert.equal(await sv(OP.const1u, 0xf0, OP.const1u, 0x3c, OP.and), 0x30n);
    assert.equal(await sv(OP.const1u, 0xf0, OP.const1u, 0x3c, OP.or), 0xfcn);
    assert.equal(await sv(OP.const1u, 0xf0, OP.const1u, 0x3c, OP.xor), 0xccn);
  });

  it('shl, shr (logical) and shra (arithmetic), including shifts past the width', async () => {
    assert.equal(await sv(L(1), OP.const1u, 63, OP.shl), 1n << 63n);
    assert.equal(await sv(L(1), OP.const1u, 64, OP.shl), 0n);
    assert.equal(await sv(OP.consts, sleb(-16), L(2), OP.shr), 0x3ffffffffffffffcn);
    assert.equal(await sv(OP.consts, sleb(-16), L(2), OP.shra), M64(-4n));
    assert.equal(await sv(OP.consts, sleb(-16), OP.const1u, 200, OP.shra), M64(-1n));
    // GCC's sign extension of a 32-bit int: shl 32, shra 32.
    assert.equal(await sv(OP.const4u, le(0xfffffffen, 4), OP.const1u, 32, OP.shl, OP.const1u, 32, OP.shra), M64(-2n));
  });

  it('comparisons are signed and push 1 or 0', async () => {
    const m1 = [OP.consts, ...sleb(-1)];
    assert.equal(await sv(...m1, OP.lit0, OP.lt), 1n);
    assert.equal(await sv(...m1, OP.lit0, OP.gt), 0n);
    assert.equal(await sv(L(3), L(3), OP.ge), 1n);
    assert.equal(await sv(L(3), L(4), OP.le), 1n);
    assert.equal(await sv(L(4), L(3), OP.le), 0n);
    assert.equal(await sv(L(3), L(3), OP.eq), 1n);
    assert.equal(await sv(L(3), L(4), OP.ne), 1n);
    assert.equal(await sv(L(3), L(3), OP.ne), 0n);
  });

  it('bra jumps when the top is non-zero and falls through when it is zero', async () => {
    // lit1 bra +1 → skips lit5, leaving lit7
    assert.equal(await sv(L(1), OP.bra, le(1n, 2), L(5), L(7)), 7n);
    assert.equal(await sv(OP.lit0, OP.bra, le(1n, 2), L(5), L(7), OP.plus), 12n);
  });

  it('skip jumps forward, and backward branches make loops', async () => {
    assert.equal(await sv(L(2), OP.skip, le(2n, 2), L(9), OP.plus, L(4)), 4n);
    // acc=0; do acc += 2 while acc < 10
    const loop = X(OP.lit0, OP.plus_uconst, 2, OP.dup, L(10), OP.lt, OP.bra, le(-8n, 2), OP.stack_value);
    assert.deepEqual(await loc(loop), { kind: 'value', value: 10n });
  });

  it('rejects a jump into the middle of an operation or out of the expression', async () => {
    await rejectsDwarf(loc(X(OP.skip, le(1n, 2), OP.const1u, 5, OP.stack_value)), /jumps to offset 4.*not the start/);
    await rejectsDwarf(loc(X(OP.skip, le(40n, 2))), /jumps to offset 43/);
  });

  it('stops a runaway loop quickly with a DwarfError', async () => {
    const t0 = Date.now();
    await rejectsDwarf(loc(X(OP.nop, OP.skip, le(-3n, 2))), /more than 100000 operations.*loops/);
    assert.ok(Date.now() - t0 < 3000);
  });
});

describe('symbols/dwarf/expr: registers and memory', () => {
  it('regN and regx name a register; breg/bregx/fbreg compute addresses', async () => {
    assert.deepEqual(await loc(X(OP.reg0 + 5)), { kind: 'register', reg: 5 });
    assert.deepEqual(await loc(X(OP.reg0 + 31)), { kind: 'register', reg: 31 });
    assert.deepEqual(await loc(X(OP.regx, uleb(17))), { kind: 'register', reg: 17 });
    assert.deepEqual(await loc(X(OP.breg0 + 7, sleb(-8))), { kind: 'memory', address: MEM_BASE + 0x38n });
    assert.deepEqual(await loc(X(OP.bregx, uleb(16), sleb(8))), { kind: 'memory', address: 0x1608n });
    const fb = ctx({ frameBase: async () => 0xffffc90000013f00n });
    assert.deepEqual(await loc(X(OP.fbreg, sleb(-88)), fb), { kind: 'memory', address: 0xffffc90000013f00n - 88n });
    assert.deepEqual(await loc(X(OP.breg0 + 3, sleb(0), OP.stack_value)), { kind: 'value', value: 0x3333n });
  });

  it('a register the frame does not know makes the location unavailable, naming the register', async () => {
    assert.deepEqual(await loc(X(OP.breg0 + 12, sleb(8))), { kind: 'unavailable', reason: 'DWARF register 12 is not known in this frame' });
    assert.deepEqual(await loc(X(OP.bregx, uleb(40), sleb(0), OP.deref, OP.stack_value)), { kind: 'unavailable', reason: 'DWARF register 40 is not known in this frame' });
    const l = await loc(X(OP.fbreg, sleb(-8)));
    assert.equal(l.kind, 'unavailable');
    assert.match((l as { reason: string }).reason, /frame base/);
  });

  it('evaluateValue reads a register location; an unknown one throws UnavailableError', async () => {
    assert.equal(await val(X(OP.reg0 + 6)), MEM_BASE + 0x80n);
    await assert.rejects(val(X(OP.reg0 + 9)), (e: unknown) => e instanceof UnavailableError && /register 9/.test(e.message));
  });

  it('a register location followed by anything but a piece is an error', async () => {
    await rejectsDwarf(loc(X(OP.reg0 + 3, L(1), OP.plus)), /DW_OP_lit1 follows DW_OP_reg3/);
    await rejectsDwarf(loc(X(L(1), OP.stack_value, L(2))), /follows DW_OP_stack_value/);
    assert.deepEqual(await loc(X(OP.reg0, OP.GNU_uninit)), { kind: 'register', reg: 0 });
  });

  it('deref reads address-size bytes little-endian; deref_size zero-extends', async () => {
    assert.equal(await sv(OP.breg0 + 7, sleb(0), OP.deref), 0x4746454443424140n);
    assert.equal(await sv(OP.breg0 + 7, sleb(0xbc), OP.deref_size, 1), 0xfcn);
    assert.equal(await sv(OP.breg0 + 7, sleb(0xb0), OP.deref_size, 2), 0xf1f0n);
    assert.equal(await sv(OP.breg0 + 7, sleb(0xb0), OP.deref_size, 4), 0xf3f2f1f0n);
    const small = ctx({ addressSize: 4, readMemory: async (a, size) => (assert.equal(a, 0x1000n), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]).subarray(0, size)) });
    assert.equal(await val(X(OP.const2u, le(0x1000n, 2), OP.deref), small), 0x04030201n);
  });

  it('a memory read failure propagates as the reader\'s error; a bad size is a DwarfError', async () => {
    await assert.rejects(loc(X(L(8), OP.deref, OP.stack_value)), /Cannot access memory at address 0x8/);
    await rejectsDwarf(loc(X(OP.breg0 + 7, sleb(0), OP.deref_size, 9)), /deref_size of 9/);
  });

  it('memory location is the top of the stack; an initial stack is the object address', async () => {
    assert.deepEqual(await loc(X(OP.plus_uconst, uleb(16)), ctx(), [0x1000n]), { kind: 'memory', address: 0x1010n });
    assert.equal(await val(X(OP.plus_uconst, uleb(24)), ctx(), [0x2000n]), 0x2018n);
    assert.deepEqual(await loc(X(OP.push_object_address, OP.plus_uconst, 8), ctx({ objectAddress: 0x5000n })), { kind: 'memory', address: 0x5008n });
    assert.equal((await loc(X(OP.push_object_address))).kind, 'unavailable');
  });
});

describe('symbols/dwarf/expr: pieces and implicit locations', () => {
  it('register and memory pieces, in order', async () => {
    const l = await loc(X(OP.reg0 + 3, OP.piece, 4, OP.fbreg, sleb(-8), OP.piece, 4), ctx({ frameBase: async () => 0x9000n }));
    const pieces = [{ location: { kind: 'register', reg: 3 }, bitSize: 32, bitOffset: 0 }, { location: { kind: 'memory', address: 0x8ff8n }, bitSize: 32, bitOffset: 0 }];
    assert.deepEqual(l, { kind: 'pieces', pieces });
  });

  it('an empty piece is optimized out; bit pieces keep their offsets (a real GCC expression)', async () => {
    const l = await loc(X(OP.piece, 1, OP.reg0 + 3, OP.bit_piece, 3, 0, OP.bit_piece, 53, 0));
    const opt = { kind: 'optimized' };
    const want = [{ location: opt, bitSize: 8, bitOffset: 0 }, { location: { kind: 'register', reg: 3 }, bitSize: 3, bitOffset: 0 }, { location: opt, bitSize: 53, bitOffset: 0 }];
    assert.deepEqual(l, { kind: 'pieces', pieces: want });
    const off = await loc(X(OP.reg0 + 1, OP.bit_piece, 5, 11));
    assert.deepEqual(off, { kind: 'pieces', pieces: [{ location: { kind: 'register', reg: 1 }, bitSize: 5, bitOffset: 11 }] });
  });

  it('value, implicit and unavailable pieces sit beside available ones', async () => {
    const l = await loc(X(L(7), OP.stack_value, OP.piece, 4, OP.implicit_value, 2, 0xaa, 0xbb, OP.piece, 2, OP.entry_value, 1, 0x55, OP.stack_value, OP.piece, 8));
    assert.equal(l.kind, 'pieces');
    const p = (l as { pieces: Array<{ location: ExprLocation; bitSize: number }> }).pieces;
    assert.deepEqual(p[0].location, { kind: 'value', value: 7n });
    assert.deepEqual(p[1].location, { kind: 'implicit', bytes: Buffer.from([0xaa, 0xbb]) });
    assert.deepEqual(p[2].location, { kind: 'unavailable', reason: ENTRY_VALUE_UNAVAILABLE });
    assert.deepEqual(p.map((x) => x.bitSize), [32, 16, 64]);
  });

  it('evaluateValue refuses a composite location', async () => {
    await rejectsDwarf(val(X(OP.reg0, OP.piece, 8)), /composite/);
  });

  it('implicit_value carries its bytes; stack_value the top of the stack', async () => {
    assert.deepEqual(await loc(X(OP.implicit_value, 4, 0x22, 0, 0, 0x80)), { kind: 'implicit', bytes: Buffer.from([0x22, 0, 0, 0x80]) });
    assert.equal(await val(X(OP.implicit_value, 4, 0x22, 0, 0, 0x80)), 0x80000022n);
    assert.deepEqual(await loc(X(OP.addr, le(0xffffffff81a11040n, 8), OP.stack_value)), { kind: 'value', value: 0xffffffff81a11040n });
  });

  it('implicit_pointer (and the GNU form) names the DIE and offset, with 4- or 8-byte references', async () => {
    assert.deepEqual(await loc(X(OP.implicit_pointer, le(0x246ean, 4), sleb(-8))), { kind: 'implicitPointer', die: 0x246ea, offset: -8n });
    assert.deepEqual(await loc(X(OP.GNU_implicit_pointer, le(0x10n, 4), 0)), { kind: 'implicitPointer', die: 0x10, offset: 0n });
    assert.deepEqual(await loc(X(OP.implicit_pointer, le(0x123456789n, 8), 4), ctx({ offsetSize: 8 })), { kind: 'implicitPointer', die: 0x123456789, offset: 4n });
  });

  it('an empty expression is optimized out, and so is one of only GNU_uninit/nop', async () => {
    assert.deepEqual(await loc(Buffer.alloc(0)), { kind: 'optimized' });
    assert.deepEqual(await loc(X(OP.nop)), { kind: 'optimized' });
    await assert.rejects(val(Buffer.alloc(0)), UnavailableError);
  });
});

describe('symbols/dwarf/expr: values from the context, typed stack, calls', () => {
  it('entry_value hands the sub-expression to the context and uses its answer', async () => {
    const seen: Buffer[] = [];
    const c = ctx({ entryValue: async (sub) => (seen.push(sub), 0xffff888003a1c000n) });
    assert.deepEqual(await loc(X(OP.entry_value, 1, 0x55, OP.stack_value), c), { kind: 'value', value: 0xffff888003a1c000n });
    assert.deepEqual(await loc(X(OP.GNU_entry_value, 1, 0x55, OP.plus_uconst, 24), c), { kind: 'memory', address: 0xffff888003a1c018n });
    assert.deepEqual(seen, [Buffer.from([0x55]), Buffer.from([0x55])]);
  });

  it('an unresolved entry value makes the whole result unavailable, not an error', async () => {
    const want = { kind: 'unavailable', reason: ENTRY_VALUE_UNAVAILABLE };
    assert.deepEqual(await loc(X(OP.entry_value, 1, 0x55, OP.stack_value)), want);
    assert.deepEqual(await loc(X(OP.entry_value, 1, 0x55, OP.stack_value), ctx({ entryValue: async () => undefined })), want);
    assert.deepEqual(await loc(X(OP.entry_value, 1, 0x55, OP.plus_uconst, 24, OP.deref, L(3), OP.mul, OP.stack_value)), want);
    assert.deepEqual(await loc(X(OP.entry_value, 1, 0x55, OP.bra, le(0n, 2), L(1), OP.stack_value)), want);
    await assert.rejects(val(X(OP.entry_value, 1, 0x54)), (e: unknown) => e instanceof UnavailableError && e.reason === ENTRY_VALUE_UNAVAILABLE);
  });

  it('call_frame_cfa pushes the CFA (a frame base expression), unavailable without one', async () => {
    const c = ctx({ cfa: async () => 0xffffc90000013f58n });
    assert.equal(await val(X(OP.call_frame_cfa), c), 0xffffc90000013f58n);
    assert.deepEqual(await loc(X(OP.call_frame_cfa, OP.consts, sleb(-16), OP.plus), c), { kind: 'memory', address: 0xffffc90000013f48n });
    assert.equal((await loc(X(OP.call_frame_cfa))).kind, 'unavailable');
  });

  it('addrx/constx and the GNU index forms read .debug_addr through the context', async () => {
    const c = ctx({ addrx: (i) => 0xffffffff81000000n + BigInt(i) * 8n });
    assert.deepEqual(await loc(X(OP.addrx, uleb(3)), c), { kind: 'memory', address: 0xffffffff81000018n });
    assert.equal(await val(X(OP.constx, uleb(1), OP.stack_value), c), 0xffffffff81000008n);
    assert.equal(await val(X(OP.GNU_addr_index, uleb(2)), c), 0xffffffff81000010n);
    assert.equal(await val(X(OP.GNU_const_index, uleb(0)), c), 0xffffffff81000000n);
    await rejectsDwarf(loc(X(OP.addrx, 0)), /DW_OP_addrx needs \.debug_addr/);
  });

  const u64 = { byteSize: 8, signed: false };
  const s32 = { byteSize: 4, signed: true };
  const types = ctx({ baseType: (o) => (o === 0x2a ? u64 : o === 0x30 ? s32 : undefined), register: (n) => (n === 14 ? M64(-8n) : n === 13 ? 2n : REGS.get(n)) });
  const divide = X(OP.breg0 + 14, 0, OP.convert, 0x2a, OP.breg0 + 13, 0, OP.convert, 0x2a, OP.div, OP.convert, 0, OP.stack_value);

  it('GCC\'s convert-to-unsigned around div divides unsigned when the base type is known', async () => {
    assert.deepEqual(await loc(divide, types), { kind: 'value', value: M64(-8n) / 2n });
    // Without type information the documented fallback is the generic (signed) division.
    assert.deepEqual(await loc(divide, ctx({ register: types.register })), { kind: 'value', value: M64(-4n) });
    assert.equal(await val(X(OP.consts, sleb(-1), OP.convert, 0x2a, OP.lit0, OP.convert, 0x2a, OP.lt, OP.stack_value), types), 0n);
  });

  it('const_type, regval_type, deref_type, convert and reinterpret', async () => {
    // A signed 4-byte constant converts to the generic type sign-extended.
    assert.equal(await val(X(OP.const_type, 0x30, 4, le(-3n, 4), OP.convert, 0, OP.stack_value), types), M64(-3n));
    // Unknown type: the op's size still applies, unsigned.
    assert.equal(await val(X(OP.const_type, 0x77, 2, 0xfe, 0xff, OP.stack_value), types), 0xfffen);
    assert.equal(await val(X(OP.regval_type, 14, 0x30, OP.convert, 0, OP.stack_value), types), M64(-8n));
    assert.equal(await val(X(OP.breg0 + 7, 0, OP.deref_type, 2, 0x77, OP.stack_value), types), 0x4140n);
    assert.equal(await val(X(OP.consts, sleb(-1), OP.reinterpret, 0x30, OP.reinterpret, 0, OP.stack_value), types), 0xffffffffn);
    assert.equal(await val(X(OP.GNU_regval_type, 13, 0x2a, OP.GNU_convert, 0, OP.stack_value), types), 2n);
  });

  it('call2/call4/call_ref run the called DIE\'s expression on the same stack', async () => {
    const calls: number[] = [];
    const c = ctx({ cuOffset: 0x1000, callDie: async (o) => (calls.push(o), o === 0x1010 ? X(OP.plus_uconst, 5) : undefined) });
    assert.equal(await val(X(L(1), OP.call2, le(0x10n, 2), OP.stack_value), c), 6n);
    assert.equal(await val(X(L(1), OP.call4, le(0x20n, 4), OP.stack_value), c), 1n);
    assert.equal(await val(X(L(2), OP.call_ref, le(0x1010n, 4), OP.stack_value), c), 7n);
    assert.deepEqual(calls, [0x1010, 0x1020, 0x1010]);
    assert.equal((await loc(X(OP.call2, 0, 0))).kind, 'unavailable');
    const selfCall = ctx({ callDie: async () => X(OP.call_ref, le(0n, 4)) });
    await rejectsDwarf(loc(X(OP.call_ref, le(0n, 4)), selfCall), /nested more than/);
  });

  it('TLS, parameter_ref and variable_value are honestly unavailable; xderef is an error', async () => {
    assert.deepEqual(await loc(X(OP.const8u, le(8n, 8), OP.form_tls_address)), { kind: 'unavailable', reason: 'thread-local storage is not supported in the kernel' });
    assert.equal((await loc(X(OP.lit0, OP.GNU_push_tls_address))).kind, 'unavailable');
    const p = await loc(X(OP.GNU_parameter_ref, le(0x111500n, 4), OP.stack_value));
    assert.equal(p.kind, 'unavailable');
    assert.match((p as { reason: string }).reason, /GNU_parameter_ref/);
    assert.equal((await loc(X(OP.GNU_variable_value, le(0x40n, 4), OP.stack_value))).kind, 'unavailable');
    await rejectsDwarf(loc(X(OP.lit0, OP.lit0, OP.xderef)), /address spaces/);
  });
});

describe('symbols/dwarf/expr: malformed expressions', () => {
  it('an unknown opcode names itself in hex and its offset', async () => {
    await rejectsDwarf(loc(X(L(1), L(2), 0xff)), /DWARF expression at 0x2: unknown opcode 0xff/);
    await rejectsDwarf(loc(X(0xe5)), /at 0x0: unknown opcode 0xe5/);
  });

  it('stack underflow and division by zero are DwarfErrors naming the op', async () => {
    await rejectsDwarf(loc(X(L(1), OP.plus)), /at 0x1: stack underflow: DW_OP_plus needs 2/);
    await rejectsDwarf(loc(X(L(1), OP.pick, 1)), /underflow: DW_OP_pick/);
    await rejectsDwarf(loc(X(OP.stack_value)), /underflow/);
    await rejectsDwarf(loc(X(L(1), OP.drop)), /nothing on the stack/);
    await rejectsDwarf(loc(X(L(1), OP.lit0, OP.div)), /DW_OP_div: division by zero/);
    await rejectsDwarf(loc(X(L(1), OP.lit0, OP.mod)), /DW_OP_mod: division by zero/);
  });

  it('a truncated operand is a DwarfError at the operand', async () => {
    await rejectsDwarf(loc(X(OP.lit0, OP.const4u, 1, 2)), /at 0x2: truncated/);
    await rejectsDwarf(loc(X(OP.constu, 0x80)), /truncated LEB128/);
    await rejectsDwarf(loc(X(OP.implicit_value, 8, 1, 2)), /truncated/);
    await rejectsDwarf(loc(X(OP.addr, 1, 2, 3)), /truncated/);
  });

  it('describeExpression prints readelf\'s text and never throws', () => {
    const e = X(OP.breg0 + 7, 0, OP.fbreg, sleb(-88), OP.const1s, 0xff, OP.bit_piece, 3, 0, OP.entry_value, 1, 0x55, OP.convert, 0x2a, OP.convert, 0, OP.implicit_pointer, le(0x246ean, 4), 0);
    const want = 'DW_OP_breg7: 0; DW_OP_fbreg: -88; DW_OP_const1s: -1; DW_OP_bit_piece: size: 3 offset: 0; DW_OP_entry_value: (DW_OP_reg5); DW_OP_convert <0x12a>';
    assert.equal(describeExpression(e, 8, { cuOffset: 0x100 }), `${want}; DW_OP_convert <0>; DW_OP_implicit_pointer: <0x246ea> 0`);
    assert.equal(describeExpression(X(OP.implicit_value, 4, 0x22, 0, 0, 0x80, OP.regx, 17, OP.bregx, 16, 8), 8), 'DW_OP_implicit_value 4 byte block: 22 0 0 80; DW_OP_regx: 17; DW_OP_bregx: 16 8');
    assert.match(describeExpression(X(L(1), 0xff), 8), /^DW_OP_lit1; <.*unknown opcode 0xff>$/);
    assert.equal(opName(0x9c), 'DW_OP_call_frame_cfa');
  });
});

/** A DwarfSections whose only section is `name`, holding `bytes`, without a file. */
function fakeSections(name: string, bytes: Buffer): DwarfSections {
  const info: ElfSection = { name, type: 1, flags: 0n, addr: 0n, offset: 0, size: bytes.length, link: 0 };
  const elf = { path: 'synthetic', section: (n: string) => (n === name ? info : undefined), read: (o: number, l: number) => Buffer.from(bytes.subarray(o, o + l)) };
  return new DwarfSections(elf as unknown as ElfFile);
}

describe('symbols/dwarf/loclists: synthetic lists', () => {
  const rctx: RangeContext = { addressSize: 8, offsetSize: 4, base: 0x1000n, addrx: (i) => 0xa000n + BigInt(i) * 0x100n };

  it('reads every DW_LLE kind, view pairs included, and picks the entry covering a pc', () => {
    const e = (n: number): number[] => [1, OP.reg0 + n];
    const list = X(
      [0x09, 1, 2], // GNU view pair: skipped
      [0x04, ...uleb(0x10), ...uleb(0x20), ...e(0)], // offset_pair on the unit base
      [0x06, ...le(0x2000n, 8)], // base_address
      [0x04, 0, 8, ...e(1), 0x01, 2], // then base_addressx → 0xa200
      [0x04, 0, 4, ...e(2)],
      [0x02, 1, 3, ...e(3)], // startx_endx
      [0x03, 4, 0x10, ...e(4)], // startx_length
      [0x07, ...le(0x5000n, 8), ...le(0x5004n, 8), ...e(5)], // start_end
      [0x08, ...le(0x6000n, 8), 0x80, 0x01, ...e(6)], // start_length (ULEB 128)
      [0x05, 2, L(1), OP.stack_value, 0x00], // default_location, end_of_list
    );
    const s = fakeSections('.debug_loclists', Buffer.concat([Buffer.alloc(12), list, X(0xee)]));
    const l = readLocListV5(s, 12, rctx);
    const ranges = l.entries.map((x) => [x.start, x.end, x.expr[0] - OP.reg0]);
    const want = [[0x1010n, 0x1020n], [0x2000n, 0x2008n], [0xa200n, 0xa204n], [0xa100n, 0xa300n], [0xa400n, 0xa410n], [0x5000n, 0x5004n], [0x6000n, 0x6080n]];
    assert.deepEqual(ranges, want.map(([a, b], i) => [a, b, i]));
    assert.deepEqual(expressionAt(l, 0x2007n), X(OP.reg0 + 1));
    assert.equal(expressionAt(l, 0x2008n), l.fallback);
    assert.deepEqual(l.fallback, X(L(1), OP.stack_value));
    assert.equal(expressionAt({ entries: l.entries }, 0x9999n), undefined);
  });

  it('reads a list longer than the first read window, and reports a list with no end', () => {
    const long: number[] = [0x06, ...le(0x10000n, 8)];
    for (let i = 0; i < 600; i++) long.push(0x04, ...uleb(i * 4), ...uleb(i * 4 + 4), 1 + sleb(-i).length, OP.breg0 + 6, ...sleb(-i));
    long.push(0);
    const s = fakeSections('.debug_loclists', X(long));
    const l: LocList = readLocListV5(s, 0, rctx);
    assert.equal(l.entries.length, 600);
    assert.deepEqual(l.entries[599], { start: 0x10000n + 599n * 4n, end: 0x10000n + 600n * 4n, expr: X(OP.breg0 + 6, sleb(-599)) });
    const cut = fakeSections('.debug_loclists', X(long.slice(0, 200)));
    assert.throws(() => readLocListV5(cut, 0, rctx), (e: unknown) => e instanceof DwarfError && /\.debug_loclists at 0x/.test(e.message));
    const bad = fakeSections('.debug_loclists', X(0x0c));
    assert.throws(() => readLocListV5(bad, 0, rctx), /unknown location list entry kind 0xc/);
  });

  it('locListIndex reads DW_FORM_loclistx through the offsets table', () => {
    const s = fakeSections('.debug_loclists', X(new Array<number>(12).fill(0), le(0x40n, 4), le(0x55n, 4), new Array<number>(0x80).fill(0)));
    assert.equal(locListIndex(s, 12, 1, 4), 12 + 0x55);
    assert.equal(locListIndex(s, 12, 0, 4), 12 + 0x40);
  });

  it('reads v4 .debug_loc with base-address selection entries', () => {
    const max = 0xffffffffffffffffn;
    const bytes = X(le(0n, 8), le(8n, 8), le(1n, 2), OP.reg0, le(max, 8), le(0x7000n, 8), le(4n, 8), le(12n, 8), le(3n, 2), OP.fbreg, 0x70, OP.GNU_uninit, le(0n, 8), le(0n, 8));
    const l = readLocListV4(fakeSections('.debug_loc', bytes), 0, rctx);
    assert.deepEqual(l.entries, [{ start: 0x1000n, end: 0x1008n, expr: X(OP.reg0) }, { start: 0x7004n, end: 0x700cn, expr: X(OP.fbreg, 0x70, OP.GNU_uninit) }]);
  });
});

type OracleEntry = { start: bigint; end: bigint; text: string };

/** Every list readelf prints, by the offset of its first entry (view pairs precede lists and are skipped). */
async function readelfLocLists(vmlinux: string): Promise<Map<number, OracleEntry[]>> {
  const child = spawn('readelf', ['--debug-dump=loc', vmlinux], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lists = new Map<number, OracleEntry[]>();
  let cur: OracleEntry[] | undefined;
  const entry = /^\s*([0-9a-f]{16}) ([0-9a-f]{16}) \((.*?)\)(?: \[without DW_AT_frame_base\]| \(start [=>]=? end\))*$/;
  for await (const line of readline.createInterface({ input: child.stdout })) {
    const m = /^ {4}([0-9a-f]{8}) (.*)$/.exec(line);
    const rest = m ? m[2] : line;
    if (m) {
      if (rest === '<End of list>') cur = undefined;
      else if (!cur && !rest.endsWith('location view pair')) lists.set(parseInt(m[1], 16), (cur = []));
    }
    const e = entry.exec(rest);
    if (e && cur) cur.push({ start: BigInt('0x' + e[1]), end: BigInt('0x' + e[2]), text: e[3] });
  }
  return lists;
}

/** readelf's expression text without register names and with our spacing. */
const normal = (s: string): string => s.replace(/ \([a-z][a-z0-9]*\)/g, '').replace(/\s+/g, ' ').replace(/ ([;)])/g, '$1').trim();

describe('symbols/dwarf/loclists and expr on the sample vmlinux (readelf as oracle)', function () {
  this.timeout(120_000);
  let elf: ElfFile;
  let dwarf: Dwarf;
  let cu: CompileUnit;
  let rctx: RangeContext;
  let oracle: Map<number, OracleEntry[]>;
  const vars = new Map<string, Die>();
  let kernelClone: Die | undefined;
  let kc: bigint;

  before(async function () {
    const g = sampleGuest(this);
    elf = ElfFile.open(g.vmlinux);
    dwarf = Dwarf.open(elf) as Dwarf;
    kc = nmAddress(g.vmlinux, 'kernel_clone');
    cu = dwarf.unitForAddress(kc) as CompileUnit;
    rctx = { addressSize: cu.header.addressSize, offsetSize: cu.header.offsetSize, base: cu.baseAddress, addrx: (i) => cu.addrx(i) };
    const walk = (d: Die): void => {
      if (d.tag === DW_TAG.subprogram && cu.string(d, DW_AT.name) === 'kernel_clone' && d.attrs.has(DW_AT.low_pc)) kernelClone = d;
      d.children.forEach(walk);
    };
    walk(cu.dies());
    for (const c of kernelClone?.children ?? []) {
      const o = c.attrs.get(DW_AT.abstract_origin);
      const name = cu.string(c, DW_AT.name) ?? (o?.kind === 'ref' ? cu.string(cu.dieAt(o.value) as Die, DW_AT.name) : undefined);
      if (name) vars.set(name, c);
    }
    oracle = await readelfLocLists(g.vmlinux);
  });
  after(() => elf?.close());

  const listOf = (name: string): LocList => {
    const a = vars.get(name)?.attrs.get(DW_AT.location);
    assert.ok(a?.kind === 'secOffset', `${name}: DW_AT_location is a .debug_loclists offset (DW_FORM_sec_offset)`);
    return readLocListV5(cu.sections, a.value, rctx);
  };
  const texts = (l: LocList): string[] => l.entries.map((e) => `${e.start.toString(16)}-${e.end.toString(16)} ${describeExpression(e.expr, 8)}`);

  it('kernel_clone\'s args, trace and nr lists say what gdb says', () => {
    assert.equal(cu.name, 'kernel/fork.c');
    // args: in rdi from the entry, then kept in rbx, then only known as rdi's entry value.
    const args = listOf('args').entries;
    assert.equal(args[0].start, kc, 'args is located from the function entry');
    assert.deepEqual(
      texts(listOf('args')).map((t) => t.replace(/^[0-9a-f]+-[0-9a-f]+ /, '')),
      ['DW_OP_reg5', 'DW_OP_reg3', 'DW_OP_entry_value: (DW_OP_reg5); DW_OP_stack_value'],
    );
    for (let i = 1; i < args.length; i++) assert.equal(args[i].start, args[i - 1].end, 'the ranges follow each other');
    const trace = texts(listOf('trace'));
    assert.match(trace[0], /^[0-9a-f]+-[0-9a-f]+ DW_OP_lit0; DW_OP_stack_value$/);
    assert.match(trace[1], /^[0-9a-f]+-[0-9a-f]+ DW_OP_reg13$/);
    assert.ok(texts(listOf('nr')).length >= 2);
  });

  it('evaluates kernel_clone\'s args and trace at pcs in each range', async () => {
    const args = listOf('args');
    const at = (pc: bigint): Buffer => expressionAt(args, pc) as Buffer;
    // A pc inside each range: past its first byte, before its end.
    const inside = (i: number): bigint => (args.entries[i].start + args.entries[i].end) / 2n;
    assert.deepEqual(await loc(at(inside(0))), { kind: 'register', reg: 5 });
    assert.deepEqual(await loc(at(inside(1))), { kind: 'register', reg: 3 });
    assert.deepEqual(await loc(at(inside(2))), { kind: 'unavailable', reason: ENTRY_VALUE_UNAVAILABLE });
    assert.deepEqual(await loc(at(inside(2)), ctx({ entryValue: async () => 0xffffc90000013e80n })), { kind: 'value', value: 0xffffc90000013e80n });
    assert.equal(expressionAt(args, args.entries[2].end), undefined);
    const trace = listOf('trace').entries[0];
    assert.deepEqual(await loc(expressionAt(listOf('trace'), (trace.start + trace.end) / 2n) as Buffer), { kind: 'value', value: 0n });
    const fb = kernelClone?.attrs.get(DW_AT.frame_base);
    assert.ok(fb?.kind === 'block');
    assert.equal(describeExpression(fb.value, 8), 'DW_OP_call_frame_cfa');
    assert.equal(await val(fb.value, ctx({ cfa: async () => 0xffffc90000013f58n })), 0xffffc90000013f58n);
  });

  it('every location list of kernel/fork.c matches readelf: ranges and expressions', () => {
    let lists = 0;
    let entries = 0;
    const walk = (d: Die): void => {
      const a = d.attrs.get(DW_AT.location);
      if (a?.kind === 'secOffset') {
        const want = oracle.get(a.value);
        assert.ok(want, `readelf prints a list at 0x${a.value.toString(16)}`);
        const got = readLocListV5(cu.sections, a.value, rctx).entries.map((e) => `${e.start.toString(16)} ${e.end.toString(16)} ${describeExpression(e.expr, 8, { cuOffset: cu.offset })}`);
        assert.deepEqual(got, want.map((e) => `${e.start.toString(16)} ${e.end.toString(16)} ${normal(e.text)}`), `list at 0x${a.value.toString(16)}`);
        lists++;
        entries += got.length;
      }
      d.children.forEach(walk);
    };
    walk(cu.dies());
    assert.ok(lists > 1000 && entries > lists, `${lists} lists, ${entries} entries`);
  });

  it('every list in .debug_loclists parses as readelf reads it, and every expression evaluates', async () => {
    const anyUnit: RangeContext = { addressSize: 8, offsetSize: 4, base: 0n, addrx: () => assert.fail('no .debug_addr in this vmlinux') };
    // Fake registers and memory whose bytes are all non-zero, so GCC's divisions don't divide by zero.
    const big = 0x1111111111111111n;
    const c = ctx({ readMemory: async (_a, size) => Buffer.alloc(size, 0x11), register: (n) => big * BigInt((n % 15) + 1), entryValue: async () => big });
    c.frameBase = c.cfa = async () => 0xffffc90000013f58n;
    // Unit-relative type operands print with the unit's offset in readelf; we don't know the unit here.
    const unitRel = (s: string): string => s.replace(/<0x[0-9a-f]+>/g, '<N>');
    const kinds = new Map<string, number>();
    const failures: string[] = [];
    const ops = new Set<string>();
    for (const [offset, want] of oracle) {
      const got = readLocListV5(dwarf.sections, offset, anyUnit).entries;
      assert.equal(got.length, want.length, `entries of the list at 0x${offset.toString(16)}`);
      for (let i = 0; i < got.length; i++) {
        const text = describeExpression(got[i].expr, 8);
        if (got[i].end - got[i].start !== want[i].end - want[i].start || unitRel(text) !== unitRel(normal(want[i].text))) {
          assert.fail(`list at 0x${offset.toString(16)} entry ${i}: ${text} vs readelf ${want[i].text}`);
        }
        for (const o of decodeExpression(got[i].expr, 8)) ops.add(opName(o.op));
        try {
          const l = await evaluateLocation(got[i].expr, c);
          kinds.set(l.kind, (kinds.get(l.kind) ?? 0) + 1);
        } catch (e) {
          failures.push(`${text}: ${(e as Error).message}`);
        }
      }
    }
    assert.deepEqual(failures.slice(0, 5), []);
    for (const k of ['register', 'memory', 'value', 'pieces', 'implicit', 'implicitPointer', 'unavailable']) assert.ok((kinds.get(k) ?? 0) > 0, `some location is ${k}`);
    for (const op of ['DW_OP_entry_value', 'DW_OP_convert', 'DW_OP_bra', 'DW_OP_bit_piece', 'DW_OP_GNU_parameter_ref']) assert.ok(ops.has(op), `the kernel uses ${op}`);
  });
});
