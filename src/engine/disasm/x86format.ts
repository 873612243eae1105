/**
 * x86 instruction text the way objdump and gdb print it (both use binutils' libopcodes), built
 * from Capstone's decoded operands. Capstone's own printer (LLVM's) differs in ways a kernel
 * developer notices when comparing with `objdump -d`: decimal small numbers, a size suffix on
 * every AT&T mnemonic, a dropped `0x0` displacement, no `,1` scale, no `%es:` on string
 * operands. The decoding is Capstone's; only the spelling is chosen here.
 */
import { GROUP, type RawInstruction, type X86Memory, type X86Operand } from './capstone';

export interface X86Text {
  mnemonic: string;
  operands: string;
  /** A direct branch or call's target: the caller appends ` <func+off>`. */
  branchTarget?: bigint;
  /** A %rip-relative operand's address: the caller appends `  # 0x… <sym>` as objdump does. */
  ripTarget?: bigint;
}

/** libopcodes' names for the repeat prefixes. */
const PREFIX_NAMES: Record<string, string> = { repne: 'repnz', repe: 'repz' };
/** Mnemonics Capstone spells differently in both syntaxes. */
const RENAMED: Record<string, string> = { wait: 'fwait', pushfq: 'pushf', popfq: 'popf' };
/**
 * Operations whose size is fixed in 64-bit mode (stack and control transfer, descriptor
 * tables): libopcodes prints them without an AT&T suffix even on a memory operand.
 */
const NO_SUFFIX = new Set(['call', 'jmp', 'push', 'pop', 'ljmp', 'lcall', 'lgdt', 'lidt', 'sgdt', 'sidt', 'sldt', 'lldt', 'str', 'ltr', 'smsw', 'lmsw']);
/** Implicit register operands that libopcodes lists and Capstone does not. */
const IMPLICIT: Record<string, string[]> = { monitor: ['rax', 'ecx', 'edx'], mwait: ['eax', 'ecx'], monitorx: ['rax', 'ecx', 'edx'], mwaitx: ['eax', 'ecx', 'ebx'] };
/** Segment overrides that have no effect in 64-bit mode: libopcodes shows them as prefix words. */
const NULL_SEGMENTS = new Set(['cs', 'ds', 'es', 'ss']);
const GPR32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const INTEL_SIZES: Record<number, string> = { 1: 'BYTE', 2: 'WORD', 4: 'DWORD', 6: 'FWORD', 8: 'QWORD', 10: 'TBYTE', 16: 'XMMWORD', 32: 'YMMWORD', 64: 'ZMMWORD' };

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

function signedHex(v: bigint): string {
  return v < 0n ? `-0x${(-v).toString(16)}` : hex(v);
}

/** An immediate as libopcodes prints it: unsigned, in the width of the operation. */
function immediate(op: X86Operand & { type: 'imm' }): bigint {
  return BigInt.asUintN(op.size > 0 ? op.size * 8 : 64, op.imm);
}

/**
 * `stosd` → `stos`, `movsq` → `movs`: the string operation, whatever its size. `movsd` and
 * `cmpsd` are also SSE instructions; those have xmm operands.
 */
function stringOp(mnemonic: string, ops: X86Operand[]): string | undefined {
  const m = /^(movs|stos|lods|scas|cmps|ins|outs)[bwdq]$/.exec(mnemonic);
  if (!m || ops.some((o) => o.type === 'reg' && o.reg.startsWith('xmm'))) return undefined;
  return m[1];
}

/** Legacy prefix bytes before the opcode (and REX): how many 0x66 there are. */
function operandSizePrefixes(bytes: Buffer): number {
  let n = 0;
  for (const b of bytes) {
    if (b === 0x66) n++;
    else if (![0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x67, 0xf0, 0xf2, 0xf3].includes(b)) break;
  }
  return n;
}

/** libopcodes calls the debug registers %db0–%db7. */
function regName(reg: string): string {
  return /^dr\d$/.test(reg) ? `db${reg.slice(2)}` : reg;
}

function split(mnemonic: string): { prefixes: string[]; base: string } {
  const words = mnemonic.trim().split(/\s+/);
  const base = words.pop() ?? '';
  return { prefixes: words.map((w) => PREFIX_NAMES[w] ?? w), base };
}

/** String instructions address es:(%rdi) and ds:(%rsi) implicitly; libopcodes names the segment. */
function implicitSegment(mem: X86Memory, isString: boolean): string | undefined {
  if (mem.segment || !isString) return mem.segment;
  if (mem.base === 'rdi' || mem.base === 'edi') return 'es';
  if (mem.base === 'rsi' || mem.base === 'esi') return 'ds';
  return undefined;
}

/**
 * Whether libopcodes shows the displacement: whenever the encoding has one, even 0, and for
 * an absolute address (no base, no index).
 */
function showDisp(mem: X86Memory, dispSize: number): boolean {
  return dispSize > 0 || (!mem.base && !mem.index) || mem.disp !== 0n;
}

function attMemory(mem: X86Memory, dispSize: number, segment: string | undefined): string {
  const seg = segment ? `%${segment}:` : '';
  if (!mem.base && !mem.index) return seg + hex(BigInt.asUintN(64, mem.disp));
  const disp = showDisp(mem, dispSize) ? signedHex(mem.disp) : '';
  const index = mem.index ? `,%${mem.index},${mem.scale}` : '';
  return `${seg}${disp}(${mem.base ? '%' + mem.base : ''}${index})`;
}

function intelMemory(mem: X86Memory, dispSize: number, segment: string | undefined): string {
  const seg = segment ? `${segment}:` : '';
  if (!mem.base && !mem.index) return `${seg || 'ds:'}${hex(BigInt.asUintN(64, mem.disp))}`;
  let inner = mem.base ?? '';
  if (mem.index) inner += `${inner ? '+' : ''}${mem.index}*${mem.scale}`;
  // libopcodes writes a %rip displacement unsigned (`[rip+0xfffffffffffffff2]`), others signed.
  if (mem.base === 'rip') inner += `+${hex(BigInt.asUintN(64, mem.disp))}`;
  else if (showDisp(mem, dispSize)) inner += mem.disp < 0n ? signedHex(mem.disp) : `+${hex(mem.disp)}`;
  return `${seg}[${inner}]`;
}

/** Registers that never decide an AT&T operation's size: a shift count and an I/O port. */
function sizesOperation(op: X86Operand, base: string): boolean {
  if (op.type !== 'reg') return false;
  if (op.reg === 'cl' && /^(sh|sa|ro|rc)[lr]|^sh[lr]d$/.test(base)) return false;
  if (op.reg === 'dx' && /^(in|out|ins|outs)[bwd]?$/.test(base)) return false;
  return true;
}

/** Memory operands that libopcodes prints without a size in Intel syntax. */
function intelSized(base: string, intelOpStr: string, index: number): boolean {
  // Address-only operands: the processor reads a structure, not a sized value.
  if (base === 'lea' || base === 'invpcid' || /^f?x(save|rstor)/.test(base)) return false;
  // Capstone's Intel printer and libopcodes agree on which operands carry `xxx ptr`.
  const parts = splitOperands(intelOpStr);
  return /\bptr\b/.test(parts[index] ?? '');
}

/** Top-level comma-separated operands of an op_str (commas inside brackets are not separators). */
function splitOperands(opStr: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of opStr) {
    if (c === '[' || c === '(' || c === '{') depth++;
    if (c === ']' || c === ')' || c === '}') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/**
 * Spell one instruction. `intel` carries the operand details (decoded in Intel syntax, so
 * operands are in Intel order); `att` is the same bytes decoded in AT&T syntax, for the
 * mnemonics that only AT&T spells differently (movzbl, cltq, movabs…).
 */
export function formatX86(intel: RawInstruction, att: RawInstruction | undefined, syntax: 'att' | 'intel'): X86Text {
  const detail = intel.x86;
  if (!detail) return { mnemonic: (syntax === 'att' ? att ?? intel : intel).mnemonic, operands: (syntax === 'att' ? att ?? intel : intel).opStr };
  const special = specialCase(intel, syntax);
  if (special) return special;
  const { prefixes, base: rawBase } = split(intel.mnemonic);
  const intelBase = RENAMED[rawBase] ?? rawBase;
  // An immediate the encoding doesn't hold is implicit (the 1 of `shr %rcx`): libopcodes
  // omits it in AT&T and writes a plain `1` in Intel syntax.
  const implicitImm = (o: X86Operand): boolean => o.type === 'imm' && detail.immSize === 0 && !intel.groups.includes(GROUP.branchRelative);
  const ops = syntax === 'att' ? detail.operands.filter((o) => !implicitImm(o)) : detail.operands;
  const isBranch = intel.groups.includes(GROUP.jump) || intel.groups.includes(GROUP.call);
  const relative = isBranch && intel.groups.includes(GROUP.branchRelative);
  const str = stringOp(intelBase, ops);
  const io = intelBase === 'in' || intelBase === 'out' || str === 'ins' || str === 'outs';
  const end = intel.address + BigInt(intel.bytes.length);
  const words = [...Array(Math.max(0, operandSizePrefixes(intel.bytes) - 1)).fill('data16'), ...prefixes];
  let ripTarget: bigint | undefined;
  let branchTarget: bigint | undefined;

  const text = ops.map((op): string => {
    if (op.type === 'reg') {
      if (syntax === 'intel') return op.reg;
      const r = regName(op.reg);
      return io && r === 'dx' ? '(%dx)' : `%${r}`;
    }
    if (op.type === 'imm') {
      if (implicitImm(op)) return op.imm.toString();
      if (relative) {
        branchTarget = BigInt.asUintN(64, op.imm);
        return hex(branchTarget);
      }
      const v = immediate(op);
      return syntax === 'att' ? `$${hex(v)}` : hex(v);
    }
    let seg = implicitSegment(op.mem, str !== undefined);
    if (seg && NULL_SEGMENTS.has(seg) && !str) {
      words.push(seg);
      seg = undefined;
    }
    if (op.mem.base === 'rip') ripTarget = BigInt.asUintN(64, end + op.mem.disp);
    if (syntax === 'att') return attMemory(op.mem, detail.dispSize, seg);
    const m = intelMemory(op.mem, detail.dispSize, seg);
    const size = INTEL_SIZES[op.size];
    return size && intelSized(intelBase, intel.opStr, detail.operands.indexOf(op)) ? `${size} PTR ${m}` : m;
  });
  if (syntax === 'att') for (const r of IMPLICIT[intelBase] ?? []) text.push(`%${r}`);

  let mnemonic: string;
  let operands: string[];
  if (syntax === 'intel') {
    mnemonic = str && ops.length ? str : intelBase === 'sysret' ? 'sysretd' : intelBase;
    operands = text;
  } else {
    operands = IMPLICIT[intelBase] ? text : [...text].reverse();
    if (isBranch && !relative && ops.length) operands[0] = `*${operands[0]}`;
    mnemonic = attMnemonic(intelBase, att ? split(att.mnemonic).base : intelBase, ops, str);
  }
  return { mnemonic: [...words, mnemonic].join(' '), operands: operands.join(','), branchTarget, ripTarget };
}

/**
 * Where Capstone's decoding itself differs from libopcodes': `66 90` is `xchg %ax,%ax` to
 * libopcodes (Capstone: `nop`), and UD1 takes a ModRM byte (Capstone stops after `0f b9`;
 * the kernel's static-call trampolines end in `0f b9 cc`, `ud1 %esp,%ecx`).
 */
function specialCase(insn: RawInstruction, syntax: 'att' | 'intel'): X86Text | undefined {
  const b = insn.bytes;
  if (b.length === 2 && b[0] === 0x66 && b[1] === 0x90) return { mnemonic: 'xchg', operands: syntax === 'att' ? '%ax,%ax' : 'ax,ax' };
  if (insn.mnemonic === 'ud1' && b.length === 3 && b[2] >= 0xc0) {
    const reg = GPR32[(b[2] >> 3) & 7];
    const rm = GPR32[b[2] & 7];
    return { mnemonic: 'ud1', operands: syntax === 'att' ? `%${rm},%${reg}` : `${reg},${rm}` };
  }
  return undefined;
}

/**
 * libopcodes adds an AT&T size suffix only where the operands leave the size open (a memory
 * operand and no register that sizes the operation); Capstone adds one everywhere.
 */
function attMnemonic(intelBase: string, attBase: string, ops: X86Operand[], str: string | undefined): string {
  const suffix = attBase.length === intelBase.length + 1 && attBase.startsWith(intelBase) && 'bwlq'.includes(attBase.slice(-1));
  const ambiguous = ops.some((o) => o.type === 'mem') && !ops.some((o) => sizesOperation(o, intelBase));
  if (str) return ambiguous ? `${str}${attBase.slice(-1)}` : str;
  // Far transfers: `ljmpl` → `ljmp`.
  if (attBase.startsWith(`l${intelBase}`)) return `l${intelBase}`;
  if (intelBase === 'sysret') return attBase === 'sysret' ? 'sysretl' : attBase;
  if (attBase === intelBase || NO_SUFFIX.has(intelBase)) return intelBase;
  if (suffix) return ambiguous ? attBase : intelBase;
  return RENAMED[attBase] ?? attBase;
}

/** Capstone's UD1 without its ModRM byte, completed from the bytes that follow it (register form only). */
export function completeX86(insn: RawInstruction, next: number | undefined): RawInstruction {
  if (insn.mnemonic !== 'ud1' || insn.bytes.length !== 2 || next === undefined || next < 0xc0) return insn;
  return { ...insn, bytes: Buffer.concat([insn.bytes, Buffer.from([next])]) };
}
