/**
 * DWARF expression opcodes and location-list entry kinds (DWARF 5 numbering, section 7.7,
 * plus the GNU extensions GCC still emits), how each op's operands are encoded, and a
 * readelf-style disassembler. The evaluator (expr.ts) and describeExpression share one
 * decoder, so what is shown is exactly what is run.
 */
import { ByteReader, DwarfError } from './reader';

export const DW_OP = {
  addr: 0x03,
  deref: 0x06,
  const1u: 0x08,
  const1s: 0x09,
  const2u: 0x0a,
  const2s: 0x0b,
  const4u: 0x0c,
  const4s: 0x0d,
  const8u: 0x0e,
  const8s: 0x0f,
  constu: 0x10,
  consts: 0x11,
  dup: 0x12,
  drop: 0x13,
  over: 0x14,
  pick: 0x15,
  swap: 0x16,
  rot: 0x17,
  xderef: 0x18,
  abs: 0x19,
  and: 0x1a,
  div: 0x1b,
  minus: 0x1c,
  mod: 0x1d,
  mul: 0x1e,
  neg: 0x1f,
  not: 0x20,
  or: 0x21,
  plus: 0x22,
  plus_uconst: 0x23,
  shl: 0x24,
  shr: 0x25,
  shra: 0x26,
  xor: 0x27,
  bra: 0x28,
  eq: 0x29,
  ge: 0x2a,
  gt: 0x2b,
  le: 0x2c,
  lt: 0x2d,
  ne: 0x2e,
  skip: 0x2f,
  lit0: 0x30,
  lit31: 0x4f,
  reg0: 0x50,
  reg31: 0x6f,
  breg0: 0x70,
  breg31: 0x8f,
  regx: 0x90,
  fbreg: 0x91,
  bregx: 0x92,
  piece: 0x93,
  deref_size: 0x94,
  xderef_size: 0x95,
  nop: 0x96,
  push_object_address: 0x97,
  call2: 0x98,
  call4: 0x99,
  call_ref: 0x9a,
  form_tls_address: 0x9b,
  call_frame_cfa: 0x9c,
  bit_piece: 0x9d,
  implicit_value: 0x9e,
  stack_value: 0x9f,
  implicit_pointer: 0xa0,
  addrx: 0xa1,
  constx: 0xa2,
  entry_value: 0xa3,
  const_type: 0xa4,
  regval_type: 0xa5,
  deref_type: 0xa6,
  xderef_type: 0xa7,
  convert: 0xa8,
  reinterpret: 0xa9,
  GNU_push_tls_address: 0xe0,
  GNU_uninit: 0xf0,
  GNU_implicit_pointer: 0xf2,
  GNU_entry_value: 0xf3,
  GNU_const_type: 0xf4,
  GNU_regval_type: 0xf5,
  GNU_deref_type: 0xf6,
  GNU_convert: 0xf7,
  GNU_reinterpret: 0xf9,
  GNU_parameter_ref: 0xfa,
  GNU_addr_index: 0xfb,
  GNU_const_index: 0xfc,
  GNU_variable_value: 0xfd,
} as const;

/** Location list entry kinds of .debug_loclists (DWARF 5 section 7.7.3). */
export const DW_LLE = {
  end_of_list: 0x00,
  base_addressx: 0x01,
  startx_endx: 0x02,
  startx_length: 0x03,
  offset_pair: 0x04,
  default_location: 0x05,
  base_address: 0x06,
  start_end: 0x07,
  start_length: 0x08,
  /** GCC's location views inline in the list (-gvariable-location-views=incompat5). */
  GNU_view_pair: 0x09,
} as const;

const NAMES = new Map<number, string>();
for (const [name, code] of Object.entries(DW_OP)) NAMES.set(code, `DW_OP_${name}`);
for (let i = 0; i < 32; i++) {
  NAMES.set(DW_OP.lit0 + i, `DW_OP_lit${i}`);
  NAMES.set(DW_OP.reg0 + i, `DW_OP_reg${i}`);
  NAMES.set(DW_OP.breg0 + i, `DW_OP_breg${i}`);
}

/** "DW_OP_fbreg" for 0x91; a hex placeholder for opcodes nobody assigned. */
export function opName(op: number): string {
  return NAMES.get(op) ?? `DW_OP_<0x${op.toString(16)}>`;
}

/** The section name DwarfErrors from expressions carry; their offsets are within the expression. */
export const EXPR_SECTION = 'DWARF expression';

/**
 * Operand encodings: u/s are ULEB/SLEB, u8…s64 fixed little-endian, addr an address, ref a
 * .debug_info offset (offset-size wide), block a ULEB length and bytes, block1 a one-byte
 * length and bytes. Ops not listed (and lit, reg) have none.
 */
type Operands = 'addr' | 'u8' | 's8' | 'u16' | 's16' | 'u32' | 's32' | 'u64' | 's64' | 'u' | 's' | 'u s' | 'u u' | 'ref' | 'ref s' | 'block' | 'u block1' | 'u8 u';

const OPERANDS = new Map<number, Operands>();
const NO_OPERANDS = new Set<number>();
function operands(kind: Operands | '', ...ops: number[]): void {
  for (const op of ops) {
    if (kind === '') NO_OPERANDS.add(op);
    else OPERANDS.set(op, kind);
  }
}
const O = DW_OP;
operands('addr', O.addr);
operands('u8', O.const1u, O.pick, O.deref_size, O.xderef_size);
operands('s8', O.const1s);
operands('u16', O.const2u, O.call2);
operands('s16', O.const2s, O.bra, O.skip);
operands('u32', O.const4u, O.call4, O.GNU_parameter_ref);
operands('s32', O.const4s);
operands('u64', O.const8u);
operands('s64', O.const8s);
operands('u', O.constu, O.plus_uconst, O.regx, O.piece, O.addrx, O.constx, O.GNU_addr_index, O.GNU_const_index);
operands('u', O.convert, O.GNU_convert, O.reinterpret, O.GNU_reinterpret);
operands('s', O.consts, O.fbreg);
operands('u s', O.bregx);
operands('u u', O.bit_piece, O.regval_type, O.GNU_regval_type);
operands('ref', O.call_ref, O.GNU_variable_value);
operands('ref s', O.implicit_pointer, O.GNU_implicit_pointer);
operands('block', O.implicit_value, O.entry_value, O.GNU_entry_value);
operands('u block1', O.const_type, O.GNU_const_type);
operands('u8 u', O.deref_type, O.GNU_deref_type, O.xderef_type);
operands('', O.deref, O.dup, O.drop, O.over, O.swap, O.rot, O.xderef, O.abs, O.and, O.div, O.minus, O.mod, O.mul, O.neg);
operands('', O.not, O.or, O.plus, O.shl, O.shr, O.shra, O.xor, O.eq, O.ge, O.gt, O.le, O.lt, O.ne, O.nop);
operands('', O.push_object_address, O.form_tls_address, O.call_frame_cfa, O.stack_value, O.GNU_push_tls_address, O.GNU_uninit);
for (let i = 0; i < 32; i++) {
  operands('', O.lit0 + i, O.reg0 + i);
  operands('s', O.breg0 + i);
}

/** One decoded operation: operands in `a`/`b` in encoding order, a block in `block`. */
export interface DecodedOp {
  offset: number;
  op: number;
  a: bigint;
  b: bigint;
  block?: Buffer;
  /** Offset of the next op. */
  end: number;
}

/** The ops of an expression in order; a DwarfError at an unknown opcode or a truncated operand. */
export function* decodeExpression(expr: Buffer, addressSize: 4 | 8, offsetSize: 4 | 8 = 4): Generator<DecodedOp> {
  const r = new ByteReader(expr, EXPR_SECTION);
  while (!r.atEnd()) {
    const offset = r.pos;
    const op = r.u8();
    const kind = OPERANDS.get(op);
    if (kind === undefined && !NO_OPERANDS.has(op)) r.fail(`unknown opcode 0x${op.toString(16)}`, offset);
    let a = 0n;
    let b = 0n;
    let block: Buffer | undefined;
    switch (kind) {
      case undefined:
        break;
      case 'addr':
        a = r.address(addressSize);
        break;
      case 'u8':
        a = BigInt(r.u8());
        break;
      case 's8':
        a = BigInt(r.i8());
        break;
      case 'u16':
        a = BigInt(r.u16());
        break;
      case 's16':
        a = BigInt.asIntN(16, BigInt(r.u16()));
        break;
      case 'u32':
        a = BigInt(r.u32());
        break;
      case 's32':
        a = BigInt(r.i32());
        break;
      case 'u64':
        a = r.u64();
        break;
      case 's64':
        a = BigInt.asIntN(64, r.u64());
        break;
      case 'u':
        a = r.ulebBig();
        break;
      case 's':
        a = r.slebBig();
        break;
      case 'u s':
        a = r.ulebBig();
        b = r.slebBig();
        break;
      case 'u u':
        a = r.ulebBig();
        b = r.ulebBig();
        break;
      case 'ref':
        a = BigInt(r.offsetOf(offsetSize));
        break;
      case 'ref s':
        a = BigInt(r.offsetOf(offsetSize));
        b = r.slebBig();
        break;
      case 'block':
        block = r.bytes(r.uleb());
        break;
      case 'u block1':
        a = r.ulebBig();
        block = r.bytes(r.u8());
        break;
      case 'u8 u':
        a = BigInt(r.u8());
        b = r.ulebBig();
        break;
    }
    yield { offset, op, a, b, block, end: r.pos };
  }
}

export interface DescribeOptions {
  offsetSize?: 4 | 8;
  /** Added to unit-relative DIE operands (types, call2/call4, parameter_ref) as readelf does. */
  cuOffset?: number;
}

/**
 * Human-readable disassembly in readelf's format without register names:
 * "DW_OP_fbreg: -88; DW_OP_stack_value". Never throws: undecodable bytes end the text with
 * the reason in angle brackets.
 */
export function describeExpression(expr: Buffer, addressSize: 4 | 8, options: DescribeOptions = {}): string {
  const out: string[] = [];
  const cu = BigInt(options.cuOffset ?? 0);
  const hex = (v: bigint): string => `0x${v.toString(16)}`;
  const block = (b: Buffer | undefined): string => `${b?.length ?? 0} byte block: ${[...(b ?? [])].map((x) => x.toString(16)).join(' ')}`;
  try {
    for (const o of decodeExpression(expr, addressSize, options.offsetSize ?? 4)) {
      const name = opName(o.op);
      switch (o.op) {
        case O.addr:
          out.push(`${name}: ${o.a.toString(16)}`);
          break;
        case O.bregx:
        case O.bit_piece:
          out.push(o.op === O.bregx ? `${name}: ${o.a} ${o.b}` : `${name}: size: ${o.a} offset: ${o.b}`);
          break;
        case O.implicit_value:
          out.push(`${name} ${block(o.block)}`);
          break;
        case O.implicit_pointer:
        case O.GNU_implicit_pointer:
          out.push(`${name}: <${hex(o.a)}> ${o.b}`);
          break;
        case O.entry_value:
        case O.GNU_entry_value:
          out.push(`${name}: (${describeExpression(o.block ?? Buffer.alloc(0), addressSize, options)})`);
          break;
        case O.const_type:
        case O.GNU_const_type:
          out.push(`${name}: <${hex(o.a + cu)}> ${block(o.block)}`);
          break;
        case O.regval_type:
        case O.GNU_regval_type:
        case O.deref_type:
        case O.GNU_deref_type:
        case O.xderef_type:
          out.push(`${name}: ${o.a} <${hex(o.b + cu)}>`);
          break;
        case O.convert:
        case O.GNU_convert:
        case O.reinterpret:
        case O.GNU_reinterpret:
          out.push(`${name} <${o.a === 0n ? '0' : hex(o.a + cu)}>`);
          break;
        case O.addrx:
        case O.constx:
        case O.GNU_addr_index:
        case O.GNU_const_index:
          out.push(`${name} <${hex(o.a)}>`);
          break;
        case O.call2:
        case O.call4:
        case O.GNU_parameter_ref:
          out.push(`${name}: <${hex(o.a + cu)}>`);
          break;
        case O.call_ref:
        case O.GNU_variable_value:
          out.push(`${name}: <${hex(o.a)}>`);
          break;
        default:
          // Every other op has no operand or one plain number.
          out.push(OPERANDS.has(o.op) ? `${name}: ${o.a}` : name);
      }
    }
  } catch (e) {
    if (!(e instanceof DwarfError)) throw e;
    out.push(`<${e.message}>`);
  }
  return out.join('; ');
}
