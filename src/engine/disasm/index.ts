/**
 * Guest code as instructions: bytes read live through the target (so ftrace's patched entry
 * and alternatives show as the CPU runs them), decoded by Capstone, spelled as objdump and
 * gdb spell them, with symbols: `func+0xoff` for each address and `<func+0xoff>` after
 * branch targets and %rip-relative operands.
 *
 * x86 cannot be decoded backwards, so "the N instructions before X" starts at a known
 * boundary: the start of the function holding X (from the ELF symbol table), repeated
 * function by function; where no symbol covers the code, the earliest start within a short
 * window whose decoding lands exactly on X.
 */
import type { ArchInfo } from '../../arch';
import type { SymbolLookup } from '../../symbols/symtab';
import { Decoder, GROUP, type RawInstruction, type Syntax } from './capstone';
import { completeX86, formatX86 } from './x86format';

export type { Syntax } from './capstone';
export const SYNTAXES: readonly Syntax[] = ['att', 'intel'];

export interface Instruction {
  address: bigint;
  /** The bytes decoded (empty when the memory could not be read). */
  bytes: Buffer;
  mnemonic: string;
  operands: string;
  /** `mnemonic operands` with symbol annotations, as gdb's x/i prints it. */
  text: string;
  /** Unreadable memory: a placeholder with no bytes. */
  invalid: boolean;
  /** Bytes that decode to no instruction (objdump's `(bad)`). */
  bad: boolean;
  isCall: boolean;
  /** A direct branch or call's target. */
  target?: bigint;
}

/**
 * How control leaves an instruction, as far as its bytes tell: 'next' falls through, 'call'
 * returns to the next instruction, 'branch' goes to `target` (or, for all we assume, falls
 * through), and 'leave' goes somewhere the bytes don't say: a return, an indirect jump, an
 * exception or a system instruction. Range stepping relies on this being conservative.
 */
export type Flow = 'next' | 'call' | 'branch' | 'leave';

/** One instruction as stepping sees it. */
export interface FlowStep {
  address: bigint;
  size: number;
  flow: Flow;
  target?: bigint;
  /** x86 rep-prefixed: a single step runs one iteration. */
  repeats: boolean;
  /** A no-op: it can't fault and leaves every register but the PC alone. */
  nop: boolean;
}

/** Control transfers Capstone knows but no encoding hook names (ret, br, eret, svc, ecall…). */
const LEAVING_GROUPS: readonly number[] = [GROUP.jump, GROUP.ret, GROUP.iret, GROUP.int, GROUP.privilege];

/** Guest memory: as many bytes from `addr` as can be read (a short buffer ends at unreadable memory). */
export type ReadCode = (addr: bigint, length: number) => Promise<Buffer>;

type Disasm = ArchInfo['disassembler'];

/** How far back an unsymbolized region is searched for a decoding that lands on the address asked about. */
const SYNC_WINDOW = 64;
/** Decode at most this many bytes of one function to find boundaries before an address. */
const MAX_ANCHOR_SPAN = 1 << 16;

const decoders = new Map<string, Promise<Decoder>>();

function decoder(arch: Disasm['decoder'], syntax: Syntax, detail: boolean): Promise<Decoder> {
  const key = `${arch}/${syntax}/${detail}`;
  let d = decoders.get(key);
  if (!d) {
    d = Decoder.open(arch, syntax, detail);
    d.catch(() => decoders.delete(key));
    decoders.set(key, d);
  }
  return d;
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

export class Disassembler {
  private constructor(
    private readonly arch: Disasm,
    private readonly syntax: Syntax,
    private readonly symbols: SymbolLookup | undefined,
    /** Decodes with operand details (Intel syntax on x86: the formatter reorders for AT&T). */
    private readonly main: Decoder,
    /** x86 AT&T only: Capstone's AT&T mnemonics (movzbl, cltq…), which Intel spells otherwise. */
    private readonly att: Decoder | undefined,
  ) {}

  /** Loads the wasm decoder on first use. */
  static async create(arch: Disasm, syntax: Syntax, symbols?: SymbolLookup): Promise<Disassembler> {
    const x86 = arch.decoder === 'x86_64';
    const main = await decoder(arch.decoder, x86 ? 'intel' : syntax, true);
    const att = x86 && syntax === 'att' ? await decoder(arch.decoder, 'att', false) : undefined;
    return new Disassembler(arch, syntax, symbols, main, att);
  }

  /** `func+0xoff` for an address in code, or undefined when no symbol covers it. */
  symbolAt(addr: bigint): string | undefined {
    return this.symbols?.locate(addr) ? this.symbols.describe(addr) : undefined;
  }

  /** One raw decode at `addr` from `code` (which starts at addr), or undefined for bytes that are no instruction. */
  private decodeOne(code: Buffer, addr: bigint): { intel: RawInstruction; att?: RawInstruction } | undefined {
    let [insn] = this.main.decode(code.subarray(0, this.arch.maxInstructionBytes), addr, 1);
    if (!insn) return undefined;
    if (this.arch.decoder === 'x86_64') insn = completeX86(insn, code[insn.bytes.length]);
    const att = this.att?.decode(insn.bytes, addr, 1)[0];
    return { intel: insn, att };
  }

  private build(raw: { intel: RawInstruction; att?: RawInstruction }): Instruction {
    const insn = raw.intel;
    if (this.arch.decoder !== 'x86_64') return this.buildRisc(insn);
    const isCall = insn.groups.includes(GROUP.call);
    const f = formatX86(insn, raw.att, this.syntax);
    let text = join(f.mnemonic, f.operands);
    if (f.branchTarget !== undefined) {
      const s = this.symbolAt(f.branchTarget);
      if (s) text += ` <${s}>`;
    }
    if (f.ripTarget !== undefined) {
      const s = this.symbolAt(f.ripTarget) ?? this.dataSymbol(f.ripTarget);
      text += `        # ${hex(f.ripTarget)}${s ? ` <${s}>` : ''}`;
    }
    return { address: insn.address, bytes: insn.bytes, mnemonic: f.mnemonic, operands: f.operands, text, invalid: false, bad: false, isCall, target: f.branchTarget };
  }

  /**
   * arm64 and riscv64: Capstone's text, with calls and direct targets as the arch's encoding
   * hook says, the target written as an address (Capstone prints riscv's relative to the
   * instruction) and annotated `<func+0xoff>` as gdb and objdump do.
   */
  private buildRisc(insn: RawInstruction): Instruction {
    const classify = this.arch.classify;
    const branch = classify?.(insn.bytes, insn.address);
    const isCall = classify ? branch?.call === true : insn.groups.includes(GROUP.call);
    const target = branch?.target;
    let operands = insn.opStr;
    if (target !== undefined && this.arch.decoder === 'riscv64') operands = operands.replace(/(^|, )-?(0x[0-9a-f]+|\d+)$/, (_m, sep: string) => `${sep}0x${target.toString(16)}`);
    let text = join(insn.mnemonic, operands);
    const s = target !== undefined ? this.symbolAt(target) : undefined;
    if (s) text += ` <${s}>`;
    return { address: insn.address, bytes: insn.bytes, mnemonic: insn.mnemonic, operands, text, invalid: false, bad: false, isCall, target };
  }

  private dataSymbol(addr: bigint): string | undefined {
    const loc = this.symbols?.locateData(addr);
    if (!loc) return undefined;
    return loc.offset === 0n ? loc.symbol.name : `${loc.symbol.name}+${hex(loc.offset)}`;
  }

  private placeholder(address: bigint): Instruction {
    return { address, bytes: Buffer.alloc(0), mnemonic: '', operands: '', text: '<unreadable memory>', invalid: true, bad: false, isCall: false };
  }

  private bad(address: bigint, bytes: Buffer): Instruction {
    return { address, bytes, mnemonic: '(bad)', operands: '', text: '(bad)', invalid: false, bad: true, isCall: false };
  }

  /** `count` instructions from `start`, decoded forward; unreadable memory gives placeholders. */
  async forward(read: ReadCode, start: bigint, count: number): Promise<Instruction[]> {
    const out: Instruction[] = [];
    const max = this.arch.maxInstructionBytes;
    const step = BigInt(this.arch.alignment);
    let addr = start;
    let buf: Buffer = Buffer.alloc(0);
    let bufAt = start;
    let exhausted = false;
    while (out.length < count) {
      let off = Number(addr - bufAt);
      if (!exhausted && buf.length - off < max) {
        // Refill: what is left of this buffer and enough bytes for the instructions still wanted.
        const want = Math.max(max, (count - out.length) * Math.min(max, 8));
        buf = await read(addr, want);
        bufAt = addr;
        off = 0;
        exhausted = buf.length < want;
      }
      const code = buf.subarray(off);
      if (code.length === 0) {
        out.push(this.placeholder(addr));
        addr += step;
        // Past unreadable memory the next read starts afresh.
        exhausted = false;
        buf = Buffer.alloc(0);
        bufAt = addr;
        continue;
      }
      const raw = this.decodeOne(code, addr);
      if (!raw) {
        out.push(this.bad(addr, Buffer.from(code.subarray(0, this.arch.alignment))));
        addr += step;
        continue;
      }
      out.push(this.build(raw));
      addr += BigInt(raw.intel.bytes.length);
    }
    return out;
  }

  /**
   * The control flow of every instruction from `start` up to `end`, from one read, without
   * the text (stepping asks this on every line). Undefined when the bytes are unreadable,
   * don't decode, or the last instruction runs past `end` (not a real range).
   */
  async flows(read: ReadCode, start: bigint, end: bigint): Promise<FlowStep[] | undefined> {
    const length = Number(end - start);
    const code = await read(start, length);
    if (code.length < length) return undefined;
    const out: FlowStep[] = [];
    let off = 0;
    while (off < length) {
      const address = start + BigInt(off);
      const [insn] = this.main.decode(code.subarray(off, off + this.arch.maxInstructionBytes), address, 1);
      if (!insn) return undefined;
      out.push(this.flowOf(insn));
      off += insn.bytes.length;
    }
    return off === length ? out : undefined;
  }

  /** Run the decoder a little, so the wasm is compiled at full speed before a step needs it. */
  async warmUp(): Promise<void> {
    const nops = Buffer.alloc(64, this.arch.decoder === 'x86_64' ? 0x90 : 0);
    for (let i = 0; i < 50; i++) await this.flows(async (_a, n) => nops.subarray(0, n), 0x1000n, 0x1000n + BigInt(this.arch.decoder === 'x86_64' ? 64 : 0));
  }

  private flowOf(insn: RawInstruction): FlowStep {
    const base = { address: insn.address, size: insn.bytes.length, repeats: /^rep/.test(insn.mnemonic), nop: /^nop/.test(insn.mnemonic) };
    const g = insn.groups;
    if (this.arch.decoder === 'x86_64') {
      const op = insn.x86?.operands[0];
      const target = op?.type === 'imm' ? BigInt.asUintN(64, op.imm) : undefined;
      if (g.includes(GROUP.call)) return { ...base, flow: 'call', target };
      if (g.includes(GROUP.jump)) return target === undefined ? { ...base, flow: 'leave' } : { ...base, flow: 'branch', target };
      return { ...base, flow: g.some((x) => LEAVING_GROUPS.includes(x)) ? 'leave' : 'next' };
    }
    const branch = this.arch.classify?.(insn.bytes, insn.address);
    if (branch?.call) return { ...base, flow: 'call', target: branch.target };
    if (branch?.target !== undefined) return { ...base, flow: 'branch', target: branch.target };
    return { ...base, flow: branch || g.some((x) => LEAVING_GROUPS.includes(x)) ? 'leave' : 'next' };
  }

  /**
   * The instruction boundaries a linear decode from `start` finds before `end`, and whether
   * it lands exactly on `end` (rather than inside an instruction that straddles it).
   */
  private async boundaries(read: ReadCode, start: bigint, end: bigint): Promise<{ starts: bigint[]; landed: boolean }> {
    const span = Number(end - start);
    const code = await read(start, span + this.arch.maxInstructionBytes);
    const starts: bigint[] = [];
    let off = 0;
    while (off < span && off < code.length) {
      const insn = this.decodeOne(code.subarray(off), start + BigInt(off));
      starts.push(start + BigInt(off));
      off += insn ? insn.intel.bytes.length : this.arch.alignment;
    }
    return { starts, landed: off === span };
  }

  /** Instruction boundaries before `end`, from a known boundary that decodes onto `end`. */
  private async anchor(read: ReadCode, end: bigint, want: number): Promise<bigint[] | undefined> {
    const { alignment, maxInstructionBytes } = this.arch;
    if (alignment === maxInstructionBytes) {
      const span = BigInt(want * alignment);
      const start = end > span ? end - span : 0n;
      const out: bigint[] = [];
      for (let a = start; a < end; a += BigInt(alignment)) out.push(a);
      return out;
    }
    const loc = this.symbols?.locate(end - 1n);
    if (loc && loc.offset < BigInt(MAX_ANCHOR_SPAN)) {
      const b = await this.boundaries(read, loc.symbol.value, end);
      if (b.landed) return b.starts;
    }
    // No symbol (or data inside the function): the earliest nearby start that lands on `end`.
    for (let back = BigInt(Math.min(SYNC_WINDOW, want * maxInstructionBytes)); back > 0n; back--) {
      if (back > end) continue;
      const b = await this.boundaries(read, end - back, end);
      if (b.landed) return b.starts;
    }
    return undefined;
  }

  /** Up to `count` instruction addresses just before `end`, oldest first. */
  async before(read: ReadCode, end: bigint, count: number): Promise<bigint[]> {
    let found: bigint[] = [];
    let at = end;
    while (found.length < count && at > 0n) {
      const chunk = await this.anchor(read, at, count - found.length);
      if (!chunk?.length) break;
      found = [...chunk, ...found];
      at = chunk[0];
    }
    return found.slice(Math.max(0, found.length - count));
  }

  /**
   * The DAP window: `count` instructions starting `offset` instructions from the one at
   * `base` (negative: before it). Always exactly `count`, padded with placeholders where
   * there is no code to show.
   */
  async window(read: ReadCode, base: bigint, offset: number, count: number): Promise<Instruction[]> {
    if (count <= 0) return [];
    if (offset >= 0) {
      if (offset === 0) return this.forward(read, base, count);
      // Skip `offset` instructions by decoding them: their lengths decide where the window starts.
      const skipped = await this.forward(read, base, offset);
      const last = skipped[skipped.length - 1];
      return this.forward(read, last.address + BigInt(Math.max(last.bytes.length, this.arch.alignment)), count);
    }
    const need = -offset;
    const starts = await this.before(read, base, need);
    const out: Instruction[] = [];
    // Missing instructions before the earliest one found become placeholders at aligned addresses below it.
    const first = starts[0] ?? base;
    for (let i = need - starts.length; i > 0; i--) out.push(this.placeholder(first - BigInt(i * this.arch.alignment)));
    if (starts.length) out.push(...(await this.forward(read, starts[0], starts.length)));
    const rest = count - out.length;
    if (rest > 0) out.push(...(await this.forward(read, base, rest)));
    return out.slice(0, count);
  }
}

function join(mnemonic: string, operands: string): string {
  return operands ? `${mnemonic.padEnd(6)} ${operands}` : mnemonic;
}

/**
 * gdb's nexti: when the instruction at `pc` is a call, the address it returns to (the
 * instruction after it); undefined for anything else.
 */
export async function callReturnAddress(arch: Disasm, read: ReadCode, pc: bigint): Promise<bigint | undefined> {
  const dis = await Disassembler.create(arch, 'intel');
  const [insn] = await dis.forward(read, pc, 1);
  return insn && insn.isCall && !insn.invalid ? pc + BigInt(insn.bytes.length) : undefined;
}
