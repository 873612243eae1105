/**
 * Capstone 5.0 (the @alexaltea/capstone-js wasm build) behind a small typed API. The wasm
 * module (3 MB) is instantiated on first use, so a session that never disassembles never
 * pays for it. We call Capstone's C API through the module and read cs_insn / cs_detail at
 * the offsets of Capstone 5.0 on wasm32: the package's JS wrapper reads cs_detail at older
 * offsets and returns garbage operands.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CapstoneModule } from '@alexaltea/capstone-js';

/** Capstone's own constants (capstone.h, 5.0). */
const CS = {
  ARCH_ARM64: 1,
  ARCH_X86: 3,
  ARCH_RISCV: 15,
  MODE_LITTLE_ENDIAN: 0,
  MODE_64: 8,
  MODE_RISCV64: 2,
  MODE_RISCVC: 4,
  OPT_SYNTAX: 1,
  OPT_DETAIL: 2,
  OPT_ON: 3,
  SYNTAX_INTEL: 1,
  SYNTAX_ATT: 2,
} as const;

/** Which Capstone decoder a guest architecture needs (named by ArchInfo.disassembler). */
export type DecoderArch = 'x86_64' | 'arm64' | 'riscv64';
export type Syntax = 'att' | 'intel';

/** cs_insn on wasm32: id u32, address u64 @8, size u16 @16, bytes[24] @18, mnemonic[32] @42, op_str[160] @74, detail* @236. */
const INSN_SIZE = 240;
/** cs_detail: regs_read[20] u16, count, regs_write[20] u16, count, groups[8] @83, groups_count @91, writeback, arch union @96. */
const DETAIL_GROUPS = 83;
const DETAIL_GROUPS_COUNT = 91;
const DETAIL_ARCH = 96;
/** cs_x86: operands[8] of 48 bytes at +72, op_count at +64, cs_x86_encoding right after the operands. */
const X86_OP_COUNT = 64;
const X86_OPERANDS = 72;
const X86_OP_SIZE = 48;
const X86_ENCODING = X86_OPERANDS + 8 * X86_OP_SIZE;

/** cs_group_type values shared by every architecture. */
export const GROUP = { jump: 1, call: 2, ret: 3, int: 4, iret: 5, privilege: 6, branchRelative: 7 } as const;

export interface X86Memory {
  segment?: string;
  base?: string;
  index?: string;
  scale: number;
  disp: bigint;
}

export type X86Operand = ({ type: 'reg'; reg: string } | { type: 'imm'; imm: bigint } | { type: 'mem'; mem: X86Memory }) & { size: number };

export interface X86Detail {
  operands: X86Operand[];
  /** Size in bytes of the encoded displacement (0 when the ModRM form has none). */
  dispSize: number;
  /** Size in bytes of the encoded immediate. */
  immSize: number;
}

export interface RawInstruction {
  address: bigint;
  bytes: Buffer;
  mnemonic: string;
  opStr: string;
  groups: number[];
  x86?: X86Detail;
}

let loading: Promise<CapstoneModule> | undefined;

/** Where capstone.wasm is: beside the bundle (dist/, copied by scripts/build.mjs), or in node_modules. */
function wasmPath(): string {
  const tried = [path.join(__dirname, 'capstone.wasm')];
  try {
    tried.push(path.join(path.dirname(require.resolve('@alexaltea/capstone-js')), 'capstone.wasm'));
  } catch {
    // bundled: node_modules is not shipped
  }
  const found = tried.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`The disassembler's capstone.wasm is missing (looked in ${tried.join(', ')}). Rebuild with 'node scripts/build.mjs'.`);
  return found;
}

/** The wasm module, instantiated once on first use. */
export function loadCapstone(): Promise<CapstoneModule> {
  loading ??= (async () => {
    const wasmBinary = fs.readFileSync(wasmPath());
    const factory = (await import('@alexaltea/capstone-js')).default;
    return factory({ wasmBinary });
  })();
  loading.catch(() => (loading = undefined));
  return loading;
}

/** One Capstone handle (an architecture, a syntax, with or without operand details). */
export class Decoder {
  private readonly regNames = new Map<number, string>();

  private constructor(
    private readonly cs: CapstoneModule,
    private readonly handle: number,
    private readonly arch: DecoderArch,
    private readonly detail: boolean,
  ) {}

  static async open(arch: DecoderArch, syntax: Syntax, detail: boolean): Promise<Decoder> {
    const cs = await loadCapstone();
    const [csArch, mode] =
      arch === 'x86_64' ? [CS.ARCH_X86, CS.MODE_64] : arch === 'arm64' ? [CS.ARCH_ARM64, CS.MODE_LITTLE_ENDIAN] : [CS.ARCH_RISCV, CS.MODE_RISCV64 | CS.MODE_RISCVC];
    const hp = cs._malloc(4);
    try {
      const err = cs.ccall('cs_open', 'number', ['number', 'number', 'number'], [csArch, mode, hp]);
      if (err !== 0) throw new Error(`Capstone cannot open a ${arch} decoder (error ${err}).`);
      const handle = Number(cs.getValue(hp, 'i32'));
      if (arch === 'x86_64') cs.ccall('cs_option', 'number', ['number', 'number', 'number'], [handle, CS.OPT_SYNTAX, syntax === 'att' ? CS.SYNTAX_ATT : CS.SYNTAX_INTEL]);
      if (detail) cs.ccall('cs_option', 'number', ['number', 'number', 'number'], [handle, CS.OPT_DETAIL, CS.OPT_ON]);
      return new Decoder(cs, handle, arch, detail);
    } finally {
      cs._free(hp);
    }
  }

  /** Decode up to `count` instructions from the start of `code`; stops early at bytes that are no instruction. */
  decode(code: Uint8Array, address: bigint, count: number): RawInstruction[] {
    const cs = this.cs;
    if (code.length === 0) return [];
    const buf = cs._malloc(code.length);
    const out = cs._malloc(4);
    try {
      cs.writeArrayToMemory(code, buf);
      const n = cs.ccall('cs_disasm', 'number', ['number', 'number', 'number', 'number', 'number', 'number'], [this.handle, buf, code.length, BigInt.asUintN(64, address), count, out]);
      const insns = Number(cs.getValue(out, 'i32'));
      const result: RawInstruction[] = [];
      try {
        for (let i = 0; i < n; i++) result.push(this.read(insns + i * INSN_SIZE));
      } finally {
        if (n > 0) cs.ccall('cs_free', null, ['number', 'number'], [insns, n]);
      }
      return result;
    } finally {
      cs._free(out);
      cs._free(buf);
    }
  }

  private u8(p: number): number {
    return Number(this.cs.getValue(p, 'i8')) & 0xff;
  }

  private i32(p: number): number {
    return Number(this.cs.getValue(p, 'i32'));
  }

  private i64(p: number): bigint {
    return BigInt(this.cs.getValue(p, 'i64'));
  }

  private reg(id: number): string | undefined {
    if (id === 0) return undefined;
    let name = this.regNames.get(id);
    if (name === undefined) {
      const p = this.cs.ccall('cs_reg_name', 'number', ['number', 'number'], [this.handle, id]);
      name = p ? this.cs.UTF8ToString(p) : `r${id}`;
      this.regNames.set(id, name);
    }
    return name;
  }

  private read(p: number): RawInstruction {
    const size = Number(this.cs.getValue(p + 16, 'i16')) & 0xffff;
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = this.u8(p + 18 + i);
    const insn: RawInstruction = {
      address: BigInt.asUintN(64, this.i64(p + 8)),
      bytes,
      mnemonic: this.cs.UTF8ToString(p + 42),
      opStr: this.cs.UTF8ToString(p + 74),
      groups: [],
    };
    const d = this.detail ? this.i32(p + 236) : 0;
    if (!d) return insn;
    const ng = this.u8(d + DETAIL_GROUPS_COUNT);
    for (let i = 0; i < ng; i++) insn.groups.push(this.u8(d + DETAIL_GROUPS + i));
    if (this.arch === 'x86_64') insn.x86 = this.x86(d + DETAIL_ARCH);
    return insn;
  }

  private x86(x: number): X86Detail {
    const operands: X86Operand[] = [];
    const count = this.u8(x + X86_OP_COUNT);
    for (let i = 0; i < count; i++) {
      const o = x + X86_OPERANDS + i * X86_OP_SIZE;
      const size = this.u8(o + 32);
      switch (this.i32(o)) {
        case 1:
          operands.push({ type: 'reg', reg: this.reg(this.i32(o + 8)) ?? '?', size });
          break;
        case 2:
          operands.push({ type: 'imm', imm: this.i64(o + 8), size });
          break;
        case 3:
          operands.push({
            type: 'mem',
            mem: { segment: this.reg(this.i32(o + 8)), base: this.reg(this.i32(o + 12)), index: this.reg(this.i32(o + 16)), scale: this.i32(o + 20), disp: this.i64(o + 24) },
            size,
          });
          break;
      }
    }
    return { operands, dispSize: this.u8(x + X86_ENCODING + 2), immSize: this.u8(x + X86_ENCODING + 4) };
  }
}
