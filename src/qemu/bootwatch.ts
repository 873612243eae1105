/**
 * Is a booting guest getting anywhere? The evidence a kernel developer would look at: bytes
 * on the serial console, and where the vCPU's PC is. A kernel runs its decompressor and
 * firmware at low (physical) addresses and jumps to the upper half once the kernel proper
 * starts, so a PC with its top bit set means the kernel itself is running on every arch we
 * support, with or without KASLR. Read through QMP's HMP passthrough, which works while the
 * gdbstub has the guest running and never stops it.
 */
import * as fs from 'node:fs';
import type { ArchInfo } from '../arch';
import type { QmpClient } from './qmp';

export interface BootEvidence {
  /** Console bytes written since the watch began. */
  consoleBytes: number;
  /** The last non-empty console line, without control characters. */
  lastLine?: string;
  /** The PC last sampled, when the monitor answered. */
  pc?: bigint;
  /** Whether any sample found the PC in the kernel's upper half. */
  reachedKernel: boolean;
  /** The console's last lines, for an error report. */
  tail: string[];
}

/** The PC in HMP `info registers` output, per arch's printout. */
export function pcFromInfoRegisters(text: string, arch: ArchInfo): bigint | undefined {
  const m = arch.monitorPc.exec(text);
  return m ? BigInt('0x' + m[1]) : undefined;
}

/** The kernel proper runs in the upper half of the address space; firmware and decompressors don't. */
export function inKernelHalf(pc: bigint, arch: ArchInfo): boolean {
  return (pc >> BigInt(arch.pointerSize * 8 - 1)) === 1n;
}

function readFrom(file: string, start: number): Buffer {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    if (size <= start) return Buffer.alloc(0);
    // The tail is all a progress line or an error report needs.
    const from = Math.max(start, size - 16384);
    const buf = Buffer.alloc(size - from);
    fs.readSync(fd, buf, 0, buf.length, from);
    return buf;
  } catch {
    return Buffer.alloc(0);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Printable console lines: ANSI sequences and carriage returns go, so a tail quotes cleanly. */
export function consoleLines(text: string): string[] {
  return text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .split(/\r?\n|\r/)
    .map((l) => l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trimEnd())
    .filter((l) => l.trim() !== '');
}

export class BootWatch {
  private readonly start: number;
  private reached = false;
  private lastPc?: bigint;

  constructor(
    private readonly consoleLog: string,
    consoleLogStart: number,
    private readonly qmp: QmpClient,
    private readonly arch: ArchInfo,
  ) {
    this.start = consoleLogStart;
  }

  /** Sample the PC once (quietly nothing when QMP is gone or the monitor refuses). */
  async samplePc(): Promise<bigint | undefined> {
    if (this.qmp.isClosed) return undefined;
    try {
      const out = await this.qmp.execute<string>('human-monitor-command', { 'command-line': 'info registers' });
      const pc = pcFromInfoRegisters(out, this.arch);
      if (pc !== undefined) {
        this.lastPc = pc;
        if (inKernelHalf(pc, this.arch)) this.reached = true;
      }
      return pc;
    } catch {
      return undefined;
    }
  }

  evidence(): BootEvidence {
    const buf = readFrom(this.consoleLog, this.start);
    let size = 0;
    try {
      size = Math.max(0, fs.statSync(this.consoleLog).size - this.start);
    } catch {
      // No log yet: nothing written.
    }
    const lines = consoleLines(buf.toString('utf8'));
    return { consoleBytes: size, lastLine: lines[lines.length - 1], pc: this.lastPc, reachedKernel: this.reached, tail: lines.slice(-8) };
  }

  /** Progress seen: console output, or the kernel proper running. */
  progressed(): boolean {
    return this.reached || this.evidence().consoleBytes > 0;
  }
}

/** One sentence on what the guest did (or didn't), for messages. */
export function describeEvidence(e: BootEvidence, arch: ArchInfo): string {
  const pc = e.pc !== undefined ? `0x${e.pc.toString(16)}` : 'unknown';
  const where = e.pc === undefined ? '' : inKernelHalf(e.pc, arch) ? ' (in the kernel)' : ' (still in firmware or the kernel decompressor, below the kernel\'s addresses)';
  const console = e.consoleBytes ? `${e.consoleBytes} console bytes` : 'no console output';
  return `${console}, PC ${pc}${where}`;
}

/** The console's last lines quoted for an error message, or a note that there were none. */
export function quoteTail(e: BootEvidence): string {
  return e.tail.length ? `The console's last lines:\n${e.tail.map((l) => `  | ${l}`).join('\n')}` : 'The guest wrote nothing to its console.';
}
