/**
 * The DWARF expression evaluator, one op family at a time, over a fake frame (registers,
 * memory, CFA, frame base, entry values), and location lists parsed from the real sample
 * vmlinux with binutils' readelf as the oracle.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { describeExpression, evaluateLocation, evaluateValue, type ExprContext } from '../../src/symbols/dwarf/expr';
import { expressionAt, readLocListV5 } from '../../src/symbols/dwarf/loclists';
import { DwarfError } from '../../src/symbols/dwarf/reader';
import { scopeChain } from '../../src/symbols/dwarf/scopes';
import type { Die } from '../../src/symbols/dwarf/unit';
import { ElfFile } from '../../src/symbols/elf';
import { sampleGuest } from '../support/env';
import { nmAddress } from '../support/oracle';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);
const M64 = (1n << 64n) - 1n;

function ctx(over: Partial<ExprContext> = {}): ExprContext {
  const regs = new Map<number, bigint>([
    [0, 0x10n],
    [3, 0xffff888000001000n],
    [5, 0xffffc90000013e30n],
    [7, 0xffffc90000013e00n],
  ]);
  const mem = new Map<bigint, number>();
  for (let i = 0n; i < 16n; i++) mem.set(0xffffc90000013e00n + i, Number(0xa0n + i));
  return {
    addressSize: 8,
    register: (n) => regs.get(n),
    readMemory: async (addr, size) => {
      const out = Buffer.alloc(size);
      for (let i = 0; i < size; i++) {
        const v = mem.get(addr + BigInt(i));
        if (v === undefined) throw new Error(`Cannot access memory at address 0x${(addr + BigInt(i)).toString(16)}`);
        out[i] = v;
      }
      return out;
    },
    cfa: async () => 0xffffc90000013f00n,
    frameBase: async () => 0xffffc90000013f00n,
    ...over,
  };
}

describe('DWARF expression evaluator, per op family', () => {
  const value = (e: Buffer, c = ctx()): Promise<bigint> => evaluateValue(e, c);

  it('literals and constants: lit, const1u..8s, constu/consts, addr', async () => {
    assert.equal(await value(b(0x30 + 7)), 7n); // lit7
    assert.equal(await value(b(0x08, 0xff)), 0xffn); // const1u
    assert.equal(await value(b(0x09, 0xff)), M64); // const1s -1
    assert.equal(await value(b(0x0a, 0x34, 0x12)), 0x1234n); // const2u
    assert.equal(await value(b(0x0d, 0xfe, 0xff, 0xff, 0xff)), M64 - 1n); // const4s -2
    assert.equal(await value(b(0x10, 0xe5, 0x8e, 0x26)), 624485n); // constu (uleb)
    assert.equal(await value(b(0x11, 0x7f)), M64); // consts -1
    assert.equal(await value(b(0x03, 0x40, 0x1a, 0xa1, 0x81, 0xff, 0xff, 0xff, 0xff)), 0xffffffff81a11a40n); // addr init_task
  });

  it('stack ops: dup, drop, over, pick, swap, rot', async () => {
    assert.equal(await value(b(0x31, 0x12)), 1n); // lit1 dup → top 1
    assert.equal(await value(b(0x31, 0x32, 0x13)), 1n); // drop
    assert.equal(await value(b(0x31, 0x32, 0x14)), 1n); // over
    assert.equal(await value(b(0x31, 0x32, 0x33, 0x15, 0x02)), 1n); // pick 2
    assert.equal(await value(b(0x31, 0x32, 0x16)), 1n); // swap
    assert.equal(await value(b(0x31, 0x32, 0x33, 0x17)), 2n); // rot: 1 2 3 → 3 1 2
  });

  it('arithmetic and logic wrap at the address size; division is signed; compares are signed', async () => {
    assert.equal(await value(b(0x35, 0x33, 0x1c)), 2n); // 5 - 3
    assert.equal(await value(b(0x33, 0x35, 0x1c)), M64 - 1n); // 3 - 5 wraps
    assert.equal(await value(b(0x11, 0x79, 0x32, 0x1b)), M64 - 2n); // -7 / 2 = -3
    assert.equal(await value(b(0x37, 0x33, 0x1d)), 1n); // 7 mod 3
    assert.equal(await value(b(0x36, 0x37, 0x1e)), 42n); // mul
    assert.equal(await value(b(0x35, 0x1f)), M64 - 4n); // neg
    assert.equal(await value(b(0x30, 0x20)), M64); // not 0
    assert.equal(await value(b(0x11, 0x7b, 0x19)), 5n); // abs -5
    assert.equal(await value(b(0x3c, 0x36, 0x1a)), 4n); // 12 & 6
    assert.equal(await value(b(0x3c, 0x36, 0x21)), 14n); // or
    assert.equal(await value(b(0x3c, 0x36, 0x27)), 10n); // xor
    assert.equal(await value(b(0x31, 0x34, 0x24)), 16n); // shl
    assert.equal(await value(b(0x11, 0x70, 0x31, 0x25)), (M64 - 15n) >> 1n); // shr is logical
    assert.equal(await value(b(0x11, 0x70, 0x31, 0x26)), M64 - 7n); // shra is arithmetic
    assert.equal(await value(b(0x35, 0x23, 0x10)), 21n); // plus_uconst 16
    assert.equal(await value(b(0x11, 0x7f, 0x30, 0x2d)), 1n); // -1 < 0: signed lt
    assert.equal(await value(b(0x11, 0x7f, 0x30, 0x2a)), 0n); // ge
    assert.equal(await value(b(0x33, 0x33, 0x29)), 1n); // eq
    assert.equal(await value(b(0x33, 0x34, 0x2e)), 1n); // ne
    await assert.rejects(value(b(0x31, 0x30, 0x1b)), /[Dd]ivision by zero/);
  });

  it('control flow: bra and skip, and a runaway loop is stopped', async () => {
    // lit1; bra +1 (skip lit5); lit5 → stack: [] then lit7 at the end
    assert.equal(await value(b(0x31, 0x28, 0x01, 0x00, 0x35, 0x37)), 7n);
    assert.equal(await value(b(0x30, 0x28, 0x01, 0x00, 0x35)), 5n); // not taken
    assert.equal(await value(b(0x2f, 0x01, 0x00, 0x35, 0x36)), 6n); // skip over lit5
    await assert.rejects(value(b(0x2f, 0xfd, 0xff)), (e: Error) => e instanceof DwarfError && /ops|loop/i.test(e.message));
  });

  it('registers: regN, regx as locations; bregN, bregx, fbreg, call_frame_cfa as addresses', async () => {
    assert.deepEqual(await evaluateLocation(b(0x55), ctx()), { kind: 'register', reg: 5 });
    assert.deepEqual(await evaluateLocation(b(0x90, 0x21), ctx()), { kind: 'register', reg: 33 });
    assert.deepEqual(await evaluateLocation(b(0x77, 0x10), ctx()), { kind: 'memory', address: 0xffffc90000013e10n });
    assert.deepEqual(await evaluateLocation(b(0x92, 0x03, 0x78), ctx()), { kind: 'memory', address: 0xffff888000000ff8n });
    assert.deepEqual(await evaluateLocation(b(0x91, 0xa8, 0x7f), ctx()), { kind: 'memory', address: 0xffffc90000013f00n - 88n });
    assert.deepEqual(await evaluateLocation(b(0x9c), ctx()), { kind: 'memory', address: 0xffffc90000013f00n });
    assert.equal(await value(b(0x55)), 0xffffc90000013e30n, 'a register location as a value is its contents');
    const gone = await evaluateLocation(b(0x7e, 0x00), ctx()); // breg14: not known in this frame
    assert.equal(gone.kind, 'unavailable');
  });

  it('memory: deref and deref_size read little-endian; a bad address throws', async () => {
    assert.equal(await value(b(0x77, 0x00, 0x06)), 0xa7a6a5a4a3a2a1a0n);
    assert.equal(await value(b(0x77, 0x02, 0x94, 0x02)), 0xa3a2n);
    await assert.rejects(value(b(0x30, 0x06)), /Cannot access memory at address 0x0/);
  });

  it('pieces and bit pieces, with empty pieces optimized out', async () => {
    const loc = await evaluateLocation(b(0x53, 0x93, 0x04, 0x93, 0x04, 0x77, 0x00, 0x9d, 0x03, 0x02), ctx());
    assert.equal(loc.kind, 'pieces');
    assert.ok(loc.kind === 'pieces');
    assert.deepEqual(loc.pieces, [
      { location: { kind: 'register', reg: 3 }, bitSize: 32, bitOffset: 0 },
      { location: { kind: 'optimized' }, bitSize: 32, bitOffset: 0 },
      { location: { kind: 'memory', address: 0xffffc90000013e00n }, bitSize: 3, bitOffset: 2 },
    ]);
  });

  it('implicit values, stack values and implicit pointers', async () => {
    assert.deepEqual(await evaluateLocation(b(0x9e, 0x02, 0x34, 0x12), ctx()), { kind: 'implicit', bytes: b(0x34, 0x12) });
    assert.deepEqual(await evaluateLocation(b(0x3a, 0x9f), ctx()), { kind: 'value', value: 10n });
    assert.deepEqual(await evaluateLocation(b(0xa0, 0x10, 0x20, 0x00, 0x00, 0x04), ctx()), { kind: 'implicitPointer', die: 0x2010, offset: 4n });
    assert.deepEqual(await evaluateLocation(b(), ctx()), { kind: 'optimized' });
  });

  it('entry values: resolved through the context, honestly unavailable without it', async () => {
    const expr = b(0xa3, 0x01, 0x55, 0x9f); // entry_value(reg5); stack_value
    assert.deepEqual(await evaluateLocation(expr, ctx({ entryValue: async (sub) => (sub.equals(b(0x55)) ? 0x1234n : undefined) })), { kind: 'value', value: 0x1234n });
    const loc = await evaluateLocation(expr, ctx({ entryValue: async () => undefined }));
    assert.equal(loc.kind, 'unavailable');
    assert.match(loc.kind === 'unavailable' ? loc.reason : '', /entry/);
    assert.equal((await evaluateLocation(b(0xf3, 0x01, 0x55, 0x9f), ctx())).kind, 'unavailable'); // GNU_entry_value, no resolver
  });

  it('addrx and constx index .debug_addr through the context', async () => {
    const c = ctx({ addrx: (i) => 0xffffffff82000000n + BigInt(i) * 8n });
    assert.deepEqual(await evaluateLocation(b(0xa1, 0x02), c), { kind: 'memory', address: 0xffffffff82000010n });
    assert.equal(await evaluateValue(b(0xa2, 0x01), c), 0xffffffff82000008n);
  });

  it('errors name the op and the offset: unknown op, underflow, truncated operand', async () => {
    await assert.rejects(value(b(0x31, 0xb0)), (e: Error) => e instanceof DwarfError && /0xb0/.test(e.message));
    await assert.rejects(value(b(0x22)), (e: Error) => e instanceof DwarfError && /stack/i.test(e.message));
    await assert.rejects(value(b(0x0b, 0x01)), (e: Error) => e instanceof DwarfError && /truncated/.test(e.message));
  });
});

describe('location lists of the real sample vmlinux (readelf as oracle)', function () {
  this.timeout(120_000);

  it("kernel_clone's variables: ranges and expressions match readelf --debug-dump=loc", function () {
    const g = sampleGuest(this);
    const elf = ElfFile.open(g.vmlinux);
    try {
      const dwarf = Dwarf.open(elf);
      assert.ok(dwarf);
      const pc = nmAddress(g.vmlinux, 'kernel_clone');
      const cu = dwarf.unitForAddress(pc);
      assert.ok(cu);
      const fn = scopeChain(cu, pc)[0];
      const lists: Array<{ name: string; offset: number }> = [];
      const walk = (d: Die): void => {
        for (const c of d.children) {
          const l = c.attrs.get(0x02);
          if (l?.kind === 'secOffset') lists.push({ name: cu.string(c, 0x03) ?? '?', offset: l.value });
          if (c.tag === 0x0b) walk(c);
        }
      };
      walk(fn);
      assert.ok(lists.length >= 6, 'kernel_clone has location lists');
      // readelf: entry lines "<offset> ... for:" then "<start> <end> (<ops>)"; blocks end at <End of list>.
      const out = execFileSync('readelf', ['--debug-dump=loc', g.vmlinux], { encoding: 'utf8', maxBuffer: 1 << 30 });
      const theirs = new Map<number, string[]>();
      let block: string[] = [];
      const lines = out.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const head = /^\s+([0-9a-f]{8}) (?:[0-9a-f]{16} \(base address\)|v\d+ v\d+ views at [0-9a-f]+ for:)$/.exec(lines[i]);
        if (head) theirs.set(parseInt(head[1], 16), block);
        const entry = /^\s+([0-9a-f]{16}) ([0-9a-f]{16}) \((.*)\)(?: \[without DW_AT_frame_base\])?$/.exec(lines[i]);
        if (entry) block.push(`${BigInt('0x' + entry[1]).toString(16)} ${BigInt('0x' + entry[2]).toString(16)} ${entry[3].replace(/ \((?:[re]?[a-z0-9]+)\)/g, '').replace(/^(DW_OP_breg\d+): /, '$1: ')}`);
        if (/<End of list>/.test(lines[i])) block = [];
      }
      for (const l of lists) {
        const ours = readLocListV5(cu.sections, l.offset, { addressSize: 8, offsetSize: 4, base: cu.baseAddress, addrx: (i) => cu.addrx(i) });
        const mine = ours.entries.map((e) => `${e.start.toString(16)} ${e.end.toString(16)} ${describeExpression(e.expr, 8)}`);
        assert.deepEqual(mine, theirs.get(l.offset), `${l.name} at .debug_loclists 0x${l.offset.toString(16)}`);
      }
      const args = lists.find((l) => l.name === 'args');
      assert.ok(args);
      const list = readLocListV5(cu.sections, args.offset, { addressSize: 8, offsetSize: 4, base: cu.baseAddress, addrx: (i) => cu.addrx(i) });
      assert.deepEqual(expressionAt(list, pc), b(0x55), 'args is in rdi at the entry');
      const end = list.entries.reduce((m, e) => (e.end > m ? e.end : m), 0n);
      assert.ok(expressionAt(list, end - 1n), 'args is somewhere up to its last range');
      assert.equal(expressionAt(list, end), undefined, 'and nowhere past it');
    } finally {
      elf.close();
    }
  });
});
