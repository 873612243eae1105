/**
 * The DAP side of the disassembly view: `disassemble` (a window of instructions around an
 * address, each with its bytes, symbol and source line) and `setInstructionBreakpoints`.
 * The decoder (wasm) loads on the first disassemble request.
 */
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { BreakpointResult, Debugger } from '../engine/debugger';
import { Disassembler, type Instruction, type ReadCode, type Syntax } from '../engine/disasm';
import type { InstructionBreakpointRequest } from '../engine/instbreakpoints';
import { MemoryError } from '../engine/memcache';
import type { SourceInfo } from '../engine/sourceinfo';
import type { SymbolLookup } from '../symbols/symtab';
import { errors } from '../util/errors';

/** More than any view shows at once; a larger request is a client bug, not a wish. */
const MAX_INSTRUCTIONS = 10_000;

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/** An address from a DAP reference (`0xffffffff81042a77`, or decimal) plus a byte offset. */
export function parseReference(ref: unknown, offset: unknown, what: string): bigint {
  if (typeof ref !== 'string' || !/^\s*(0x[0-9a-f]+|\d+)\s*$/i.test(ref)) {
    throw errors.unsupported(`${what}: '${String(ref)}' is not an address. Use a number such as 0xffffffff81000000 (the instructionPointerReference of a stack frame, or an address the disassembly returned).`);
  }
  if (offset !== undefined && (typeof offset !== 'number' || !Number.isInteger(offset))) {
    throw errors.unsupported(`${what}: offset ${JSON.stringify(offset)} must be a whole number of bytes.`);
  }
  return BigInt.asUintN(64, BigInt(ref.trim()) + BigInt(offset ?? 0));
}

export class DisassemblyView {
  private disassembler?: Promise<Disassembler>;

  constructor(
    private readonly dbg: Debugger,
    private readonly symbols: SymbolLookup | undefined,
    private readonly source: SourceInfo | undefined,
    private readonly syntax: Syntax,
  ) {}

  private get(): Promise<Disassembler> {
    this.disassembler ??= Disassembler.create(this.dbg.target.arch.disassembler, this.syntax, this.symbols);
    this.disassembler.catch(() => (this.disassembler = undefined));
    return this.disassembler;
  }

  /** Guest memory as the current vCPU sees it, through this stop's block cache; short at the first unreadable byte. */
  private reader(): ReadCode {
    const mem = this.dbg.target.memory(this.dbg.currentThread);
    return async (addr, length) => {
      try {
        return await mem.read(addr, length);
      } catch (e) {
        if (!(e instanceof MemoryError)) throw e;
        const readable = e.address > addr ? Number(e.address - addr) : 0;
        return readable > 0 && readable < length ? mem.read(addr, readable) : Buffer.alloc(0);
      }
    };
  }

  async disassemble(args: DebugProtocol.DisassembleArguments): Promise<DebugProtocol.DisassembleResponse['body']> {
    if (this.dbg.isRunning) throw errors.targetRunning('disassemble');
    const count = args.instructionCount;
    if (!Number.isInteger(count) || count < 0 || count > MAX_INSTRUCTIONS) {
      throw errors.unsupported(`disassemble: instructionCount ${JSON.stringify(count)} must be a whole number from 0 to ${MAX_INSTRUCTIONS}.`);
    }
    const offset = args.instructionOffset ?? 0;
    if (!Number.isInteger(offset)) throw errors.unsupported(`disassemble: instructionOffset ${JSON.stringify(offset)} must be a whole number of instructions.`);
    const base = parseReference(args.memoryReference, args.offset, 'disassemble memoryReference');
    const dis = await this.get();
    const insns = await dis.window(this.reader(), base, offset, count);
    return { instructions: insns.map((i) => this.describe(dis, i)) };
  }

  private describe(dis: Disassembler, i: Instruction): DebugProtocol.DisassembledInstruction {
    const out: DebugProtocol.DisassembledInstruction = { address: hex(i.address), instruction: i.text };
    if (i.invalid) {
      out.presentationHint = 'invalid';
      return out;
    }
    out.instructionBytes = [...i.bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const symbol = dis.symbolAt(i.address);
    if (symbol) out.symbol = symbol;
    const line = this.source?.lineAt(i.address);
    if (line && line.file) {
      const local = this.source?.mapper.toLocal(line.file) ?? line.file;
      out.location = { name: path.basename(local), path: local };
      out.line = line.line;
      out.endLine = line.line;
    }
    return out;
  }
}

/** setInstructionBreakpoints arguments as engine requests; a bad reference becomes an unverified breakpoint saying why. */
export function instructionBreakpointRequests(args: DebugProtocol.SetInstructionBreakpointsArguments): InstructionBreakpointRequest[] {
  return (args.breakpoints ?? []).map((b) => {
    let address: InstructionBreakpointRequest['address'];
    try {
      address = parseReference(b.instructionReference, b.offset, 'Instruction breakpoint instructionReference');
    } catch (e) {
      address = { error: (e as Error).message };
    }
    return { address, condition: b.condition, hitCondition: b.hitCondition };
  });
}

export function instructionBreakpoint(r: BreakpointResult): DebugProtocol.Breakpoint {
  return {
    id: r.id,
    verified: r.verified,
    message: r.message,
    instructionReference: r.address !== undefined ? hex(r.address) : undefined,
  };
}
