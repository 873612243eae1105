/**
 * Fuzzing the DWARF expression decoder, describer and evaluator: location expressions taken
 * from the corpus gcc builds (mutated), and op sequences built from the whole opcode set with
 * hostile operands (stack underflow, branches anywhere, loops, self-calls, huge typed values).
 * Every run ends in a location, an UnavailableError, the context's own memory fault, or a
 * DwarfError naming the expression offset, within the per-case bound.
 */
import * as fc from 'fast-check';
import { DW_AT } from '../../src/symbols/dwarf/constants';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { describeExpression, evaluateLocation, evaluateValue, UnavailableError, type ExprContext } from '../../src/symbols/dwarf/expr';
import { DW_OP } from '../../src/symbols/dwarf/opcodes';
import { DwarfError } from '../../src/symbols/dwarf/reader';
import { ElfFile } from '../../src/symbols/elf';
import { compileCorpus } from './fuzzcorpus';
import { CASE_MS, fuzzAsync, le, longLeb, mutate, mutations, runsFor, uleb, type Tally } from './fuzzkit';

/** A case evaluates three times, and a looping expression may run MAX_EXPR_OPS ops of up to 255-byte values each time. */
const EVAL_MS = 3 * CASE_MS;

/** What the test's memory does for an unreadable address: the caller's error, passed through. */
class MemoryFault extends Error {
  override name = 'MemoryFault';
}

const sleb = (n: number | bigint): number[] => {
  const out: number[] = [];
  let v = BigInt(n);
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && !(b & 0x40)) || (v === -1n && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
};

const small = fc.oneof(fc.integer({ min: -4, max: 40 }), fc.constantFrom(0, 1, 7, 63, 64, 255, 256, 0x7fffffff, -0x80000000));
const big = fc.oneof(small.map((n) => BigInt.asUintN(64, BigInt(n))), fc.constantFrom(0n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n, 1n << 70n), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const NO_OPERAND_OPS = [
  DW_OP.deref, DW_OP.dup, DW_OP.drop, DW_OP.over, DW_OP.swap, DW_OP.rot, DW_OP.abs, DW_OP.and, DW_OP.div, DW_OP.minus, DW_OP.mod, DW_OP.mul, DW_OP.neg,
  DW_OP.not, DW_OP.or, DW_OP.plus, DW_OP.shl, DW_OP.shr, DW_OP.shra, DW_OP.xor, DW_OP.eq, DW_OP.ge, DW_OP.gt, DW_OP.le, DW_OP.lt, DW_OP.ne, DW_OP.nop,
  DW_OP.push_object_address, DW_OP.form_tls_address, DW_OP.call_frame_cfa, DW_OP.stack_value, DW_OP.xderef,
];

/** One operation, its operands shaped as the decoder expects (mostly) or not at all (sometimes). */
const op: fc.Arbitrary<number[]> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x30, max: 0x4f }).map((lit) => [lit]) },
  { weight: 6, arbitrary: fc.constantFrom(...NO_OPERAND_OPS).map((o) => [o]) },
  { weight: 2, arbitrary: fc.integer({ min: 0x50, max: 0x6f }).map((reg) => [reg]) },
  { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 0x70, max: 0x8f }), small).map(([o, n]) => [o, ...sleb(n)]) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(DW_OP.constu, DW_OP.plus_uconst, DW_OP.regx, DW_OP.piece, DW_OP.addrx, DW_OP.constx, DW_OP.convert, DW_OP.reinterpret), big).map(([o, n]) => [o, ...uleb(n)]) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(DW_OP.consts, DW_OP.fbreg), big).map(([o, n]) => [o, ...sleb(BigInt.asIntN(64, n))]) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(DW_OP.const1u, DW_OP.const1s, DW_OP.pick, DW_OP.deref_size), fc.integer({ min: 0, max: 255 })).map(([o, n]) => [o, n]) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(DW_OP.const2u, DW_OP.const4u, DW_OP.const8u, DW_OP.const8s), big).map(([o, n]) => [o, ...le(n, o === DW_OP.const2u ? 2 : o === DW_OP.const4u ? 4 : 8)]) },
  // Branches: small distances land inside the expression, large ones anywhere.
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(DW_OP.bra, DW_OP.skip), fc.oneof(fc.integer({ min: -12, max: 12 }), fc.integer({ min: -32768, max: 32767 }))).map(([o, n]) => [o, ...le(BigInt.asUintN(16, BigInt(n)), 2)]) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(DW_OP.bregx, DW_OP.bit_piece, DW_OP.regval_type, DW_OP.deref_type), small, small).map(([o, a, b]) => (o === DW_OP.deref_type ? [o, a & 0xff, ...uleb(Math.abs(b))] : o === DW_OP.bregx ? [o, ...uleb(Math.abs(a)), ...sleb(b)] : [o, ...uleb(Math.abs(a)), ...uleb(Math.abs(b))])) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(DW_OP.implicit_value, DW_OP.entry_value), fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 12 })).map(([o, bytes]) => [o, ...uleb(bytes.length), ...bytes]) },
  { weight: 1, arbitrary: fc.tuple(small, fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 20 })).map(([t, bytes]) => [DW_OP.const_type, ...uleb(Math.abs(t)), bytes.length, ...bytes]) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(DW_OP.call2, DW_OP.call4), fc.integer({ min: 0, max: 3 })).map(([o, n]) => [o, ...le(n, o === DW_OP.call2 ? 2 : 4)]) },
  { weight: 1, arbitrary: fc.tuple(big, small).map(([d, off]) => [DW_OP.implicit_pointer, ...le(d, 4), ...sleb(off)]) },
  { weight: 1, arbitrary: fc.constantFrom(longLeb(20), [DW_OP.constu, ...longLeb(20)], [DW_OP.piece, ...longLeb(11)], [DW_OP.implicit_value, ...uleb(2 ** 40)]) },
  { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }) },
);

interface Ctx {
  addressSize: 4 | 8;
  knownRegs: number;
  faultMask: number;
  typeSize: number;
  frameBase: boolean;
}

const ctxArb: fc.Arbitrary<Ctx> = fc.record({
  addressSize: fc.constantFrom(4 as const, 8 as const),
  knownRegs: fc.integer({ min: 0, max: 0xffff }),
  faultMask: fc.constantFrom(0, 1, 0xff),
  // Base type sizes a corrupt DW_AT_byte_size could give the evaluator.
  typeSize: fc.constantFrom(0, 1, 2, 3, 4, 8, 16, 32, 255, 4096, 1 << 20, 2 ** 31),
  frameBase: fc.boolean(),
});

function context(c: Ctx, calls: Buffer[]): ExprContext {
  return {
    addressSize: c.addressSize,
    async readMemory(addr, size) {
      if (c.faultMask && (Number(addr & 0xffn) & c.faultMask) === c.faultMask) throw new MemoryFault(`no memory at 0x${addr.toString(16)}`);
      const b = Buffer.alloc(size);
      for (let i = 0; i < size; i++) b[i] = Number((addr + BigInt(i)) & 0xffn) ^ 0x5a;
      return b;
    },
    register: (r) => ((c.knownRegs >> (r & 15)) & 1 ? BigInt(r) * 0x1000n + 0xffff800000000000n : undefined),
    frameBase: async () => (c.frameBase ? 0xffffc90000001000n : undefined),
    cfa: async () => (c.frameBase ? 0xffffc90000002000n : undefined),
    addrx: (i) => {
      if (i > 16) throw new DwarfError('.debug_addr', i * c.addressSize, 'index past the table');
      return 0xffffffff81000000n + BigInt(i) * 8n;
    },
    entryValue: async (sub) => (sub.length === 1 && c.frameBase ? 42n : undefined),
    objectAddress: c.frameBase ? 0xffff888000000000n : undefined,
    callDie: async (off) => calls[off % Math.max(1, calls.length)],
    baseType: (off) => (off % 3 === 0 ? undefined : { byteSize: c.typeSize, signed: off % 2 === 0 }),
  };
}

function check(e: unknown): string | undefined {
  if (e instanceof DwarfError) return / at 0x[0-9a-f]+: /.test(e.message) && e.message.startsWith(e.section) ? undefined : 'a DwarfError without section and offset';
  if (e instanceof UnavailableError || e instanceof MemoryFault) return undefined;
  return 'not a typed error (crash)';
}

async function evaluate(expr: Buffer, c: Ctx, tally: Tally): Promise<void> {
  describeExpression(expr, c.addressSize);
  // A self-call, a call to a short loop, and a call to nothing: recursion must stay bounded.
  const ctx = context(c, [expr, Buffer.from([DW_OP.lit0 + 1, DW_OP.skip, 0xfd, 0xff]), Buffer.alloc(0)]);
  await tally.stageAsync(() => evaluateLocation(expr, ctx), check);
  await tally.stageAsync(() => evaluateValue(expr, ctx, [0x1000n]), check);
  await tally.stageAsync(() => evaluateLocation(expr, ctx, [1n, 2n, 3n]), check);
  tally.endCase();
}

describe('fuzz: DWARF expression decoder and evaluator', function () {
  this.timeout(600_000);
  let real: Buffer[] = [];

  before(function () {
    // Location expressions as gcc wrote them: DW_AT_location and DW_AT_frame_base blocks.
    try {
      for (const c of compileCorpus()) {
        const d = Dwarf.open(ElfFile.fromBuffer(c.file, c.bytes));
        for (const h of d?.unitHeaders() ?? []) {
          const stack = [d?.unit(h.offset).dies()];
          for (let die = stack.pop(); die; die = stack.pop()) {
            for (const at of [DW_AT.location, DW_AT.frame_base]) {
              const v = die.attrs.get(at);
              if (v?.kind === 'block' && v.value.length) real.push(Buffer.from(v.value));
            }
            stack.push(...die.children);
          }
        }
      }
    } catch {
      // No compiler: the generated expressions below still run.
    }
    if (!real.length) real = [Buffer.from([DW_OP.fbreg, 0x70]), Buffer.from([DW_OP.breg0 + 7, 8, DW_OP.deref, DW_OP.stack_value])];
  });

  it(`op sequences from the whole opcode set, with hostile operands: ${runsFor(20)} cases`, async function () {
    const arb = fc.tuple(fc.array(op, { minLength: 1, maxLength: 24 }), ctxArb).map(([ops, c]) => ({ expr: Buffer.from(ops.flat()), c }));
    await fuzzAsync({ parser: 'dwarf expression', property: 'generated ops', runs: runsFor(20), caseMs: EVAL_MS }, arb, ({ expr, c }, tally) => evaluate(expr, c, tally));
  });

  it(`gcc's location expressions, mutated: ${runsFor(10)} cases`, async function () {
    const arb = fc.nat(real.length - 1).chain((i) => fc.tuple(fc.constant(i), mutations(real[i].length, undefined, 3), ctxArb));
    await fuzzAsync({ parser: 'dwarf expression', property: 'mutated real expressions', runs: runsFor(10), caseMs: EVAL_MS }, arb, ([i, ms, c], tally) => evaluate(mutate(real[i], ms), c, tally));
  });
});
