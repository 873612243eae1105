/**
 * CFI rules written as DWARF expressions (DW_CFA_def_cfa_expression, DW_CFA_expression,
 * DW_CFA_val_expression), which GCC emits for signal frames and some arm64 code: the unwinder
 * evaluates them with the CFA pushed first, reading the frame's registers and memory.
 */
import * as assert from 'node:assert/strict';
import { x86_64 } from '../../src/arch/x86_64';
import { Unwinder } from '../../src/engine/unwind';
import type { CallFrameInfo, UnwindRow } from '../../src/symbols/dwarf/frame';

describe('unwinding through CFI expression rules', () => {
  it('computes the CFA and saved registers from expressions', async () => {
    const sp = 0xffffc90000013f00n;
    const stack = new Map<bigint, bigint>([
      [sp + 0x10n, 0xffffffff81000123n], // return address, at CFA-8
      [sp + 0x08n, 0xffffc90000013f80n], // saved rbp, at CFA-16
    ]);
    const row: UnwindRow = {
      start: 0xffffffff81000000n,
      end: 0xffffffff81001000n,
      // CFA = rsp + 0x18, as an expression: DW_OP_breg7 0x18
      cfa: { kind: 'expression', expr: Buffer.from([0x77, 0x18]) },
      regs: new Map([
        // rip saved at CFA-8: DW_OP_consts -8; DW_OP_plus (the CFA is already on the stack)
        [16, { kind: 'expression', expr: Buffer.from([0x11, 0x78, 0x22]) }],
        // rbp saved at CFA-16
        [6, { kind: 'expression', expr: Buffer.from([0x11, 0x70, 0x22]) }],
        // rbx's value is CFA+1 (a val_expression, not a memory slot)
        [3, { kind: 'valExpression', expr: Buffer.from([0x23, 0x01]) }],
      ]),
    };
    const cfi = { rowAt: (pc: bigint) => (pc >= row.start && pc < row.end ? row : undefined) } as unknown as CallFrameInfo;
    const unwinder = new Unwinder(x86_64, (pc) => cfi.rowAt(pc), () => true, async (addr, size) => {
      const v = stack.get(addr);
      if (v === undefined || size !== 8) return undefined;
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      return b;
    });
    const top = new Map<number, bigint>([
      [16, 0xffffffff81000010n],
      [7, sp],
      [6, 0n],
      [3, 7n],
    ]);
    const frames = await unwinder.unwind(top, 2);
    assert.equal(frames[0].cfa, sp + 0x18n);
    assert.equal(frames[0].method, 'cfi');
    assert.equal(frames[1].pc, 0xffffffff81000123n);
    assert.equal(frames[1].regs.get(6), 0xffffc90000013f80n);
    assert.equal(frames[1].regs.get(3), sp + 0x19n);
    assert.equal(frames[1].regs.get(7), sp + 0x18n);
    assert.equal(await unwinder.cfaOf(top), sp + 0x18n);
  });
});
