/**
 * Cross binutils (binutils-aarch64-linux-gnu, binutils-riscv64-linux-gnu) as the oracle for
 * arm64 and riscv64 code: assemble a snippet, or disassemble bytes or a vmlinux range, and read
 * objdump's listing back as address, bytes, mnemonic, operands and direct branch target.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type CrossArch = 'aarch64' | 'riscv64';

const PREFIX: Record<CrossArch, string> = { aarch64: 'aarch64-linux-gnu-', riscv64: 'riscv64-linux-gnu-' };
/** objdump's -m name for raw binaries. */
const MACHINE: Record<CrossArch, string> = { aarch64: 'aarch64', riscv64: 'riscv:rv64' };

export const crossTool = (arch: CrossArch, tool: string): string => PREFIX[arch] + tool;

export function haveCrossBinutils(arch: CrossArch): boolean {
  return spawnSync(crossTool(arch, 'objdump'), ['--version']).status === 0 && spawnSync(crossTool(arch, 'as'), ['--version']).status === 0;
}

export interface ObjdumpInsn {
  address: bigint;
  /** The instruction's bytes, in memory order. */
  bytes: Buffer;
  mnemonic: string;
  operands: string;
  /** A direct branch's target as objdump prints it (`bl ffff8000080b1234 <foo>`). */
  target?: bigint;
  /** objdump's `<symbol+off>` after the target. */
  targetSymbol?: string;
}

/**
 * objdump -d's listing. arm64 prints each instruction as one 32-bit word; riscv as one 16- or
 * 32-bit parcel; both little-endian values, turned back into memory order here.
 */
export function parseObjdump(out: string): ObjdumpInsn[] {
  const insns: ObjdumpInsn[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*([0-9a-f]+):\t([0-9a-f]+(?: [0-9a-f]+)*)\s*\t(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const bytes = Buffer.concat(m[2].split(' ').map((w) => Buffer.from(w.match(/../g)?.reverse().join('') ?? '', 'hex')));
    const operands = m[4].replace(/\s*(#|\/\/) .*$/, '').trim();
    const t = /(?:^|[ ,])([0-9a-f]+) <([^>]+)>$/.exec(operands);
    insns.push({ address: BigInt('0x' + m[1]), bytes, mnemonic: m[3], operands, target: t ? BigInt('0x' + t[1]) : undefined, targetSymbol: t?.[2] });
  }
  return insns;
}

/** Assemble `source`; the bytes of .text and objdump's listing of them. */
export function assemble(arch: CrossArch, source: string, asFlags: string[] = []): { code: Buffer; listing: ObjdumpInsn[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-as-'));
  try {
    const src = path.join(dir, 'a.s');
    const obj = path.join(dir, 'a.o');
    const bin = path.join(dir, 'a.bin');
    fs.writeFileSync(src, source);
    execFileSync(crossTool(arch, 'as'), [...asFlags, '-o', obj, src]);
    execFileSync(crossTool(arch, 'objcopy'), ['-O', 'binary', '-j', '.text', obj, bin]);
    const listing = parseObjdump(execFileSync(crossTool(arch, 'objdump'), ['-d', obj], { encoding: 'utf8' }));
    return { code: fs.readFileSync(bin), listing };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** objdump's listing of raw bytes loaded at `vma` (code read from guest memory). */
export function disassembleBytes(arch: CrossArch, code: Buffer, vma: bigint): ObjdumpInsn[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-objdump-'));
  try {
    const bin = path.join(dir, 'code.bin');
    fs.writeFileSync(bin, code);
    return parseObjdump(execFileSync(crossTool(arch, 'objdump'), ['-D', '-b', 'binary', '-m', MACHINE[arch], `--adjust-vma=0x${vma.toString(16)}`, bin], { encoding: 'utf8' }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** objdump's listing of a vmlinux range. */
export function objdumpRange(arch: CrossArch, vmlinux: string, start: bigint, stop: bigint): ObjdumpInsn[] {
  const args = ['-d', `--start-address=0x${start.toString(16)}`, `--stop-address=0x${stop.toString(16)}`, vmlinux];
  return parseObjdump(execFileSync(crossTool(arch, 'objdump'), args, { encoding: 'utf8', maxBuffer: 64 << 20 }));
}

/** A text symbol's address and size from the cross nm. */
export function nmSymbol(arch: CrossArch, vmlinux: string, name: string): { address: bigint; size: bigint } | undefined {
  const out = execFileSync(crossTool(arch, 'nm'), ['-S', vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const m = new RegExp(`^([0-9a-f]{16}) ([0-9a-f]{16}) [Tt] ${name}$`, 'm').exec(out);
  return m ? { address: BigInt('0x' + m[1]), size: BigInt('0x' + m[2]) } : undefined;
}
