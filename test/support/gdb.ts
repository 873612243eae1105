/** gdb 13 as the oracle: the same guest, the same stop, its view of the machine. */
import { execFileSync, spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getArch } from '../../src/arch';
import { GuestPaths } from '../../src/guest/build';
import type { Where } from './source';

/**
 * The sample tree has the kernel's vmlinux-gdb.py beside vmlinux (for the module oracle,
 * which sources it on purpose): elsewhere gdb must not try to auto-load it, or its refusal
 * lands in the output the tests parse.
 */
export const NO_AUTOLOAD = ['-iex', 'set auto-load python-scripts off', '-iex', 'set auto-load gdb-scripts off'];

/** gdb for the host arch; gdb-multiarch (Debian package) for the others. */
export function gdbFor(arch = 'x86_64'): string {
  return arch === 'x86_64' ? 'gdb' : 'gdb-multiarch';
}

export function haveGdb(arch = 'x86_64'): boolean {
  return spawnSync(gdbFor(arch), ['--version']).status === 0;
}

/**
 * Boot `guest` paused under QEMU (TCG), let gdb run `commands` after `target remote`, and
 * return gdb's output. QEMU is killed afterwards.
 */
export async function gdbSession(guest: GuestPaths, commands: string[], timeoutMs = 120_000): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-gdb-'));
  const sock = path.join(dir, 'gdb.sock');
  // The same machine our launches use, from the arch's own table.
  const arch = getArch(guest.arch ?? 'x86_64');
  const qemu = spawn(
    arch.qemuBinary,
    ['-nodefaults', '-no-user-config', '-display', 'none', ...arch.machineArgs, '-accel', 'tcg', '-m', '512M', '-smp', '1', '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', `console=${arch.console} nokaslr`, '-serial', `file:${path.join(dir, 'console.log')}`, '-gdb', `unix:${sock},server=on,wait=off`, '-S'],
    { stdio: 'ignore' },
  );
  try {
    // QEMU creates the socket before it starts its main loop; watch the folder for it.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('QEMU did not open its gdbstub socket')), 20_000);
      const w = fs.watch(dir, () => {
        if (fs.existsSync(sock)) done();
      });
      const done = (): void => {
        clearTimeout(timer);
        w.close();
        resolve();
      };
      if (fs.existsSync(sock)) done();
    });
    const args = ['-q', '-nx', '-batch', ...NO_AUTOLOAD, '-ex', 'set pagination off', '-ex', `target remote ${sock}`, ...commands.flatMap((c) => ['-ex', c]), guest.vmlinux];
    return await gdbOutput(spawn(gdbFor(guest.arch), args, { stdio: ['ignore', 'pipe', 'pipe'] }), timeoutMs);
  } finally {
    qemu.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `info registers` lines → name → value. */
export function parseInfoRegisters(text: string): Map<string, bigint> {
  const regs = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s+(0x[0-9a-f]+)\s/.exec(line);
    if (m) regs.set(m[1], BigInt(m[2]));
  }
  return regs;
}

/** `break NAME` for each name in one gdb run, parsed from `info breakpoints`. */
export function gdbBreakLocations(vmlinux: string, names: string[]): Map<string, string[]> {
  const args = ['-q', '-nx', '-batch', ...NO_AUTOLOAD, ...names.flatMap((n) => ['-ex', `break ${n}`]), '-ex', 'info breakpoints', vmlinux];
  const out = execFileSync('gdb', args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  const byNumber = new Map<number, string[]>();
  for (const line of out.split('\n')) {
    const single = /^(\d+)\s+breakpoint\s+keep\s+y\s+(0x[0-9a-f]+)\s/.exec(line);
    const sub = /^(\d+)\.\d+\s+y\s+(0x[0-9a-f]+)\s/.exec(line);
    const m = single ?? sub;
    if (m) byNumber.set(Number(m[1]), [...(byNumber.get(Number(m[1])) ?? []), '0x' + BigInt(m[2]).toString(16)]);
  }
  return new Map(names.map((n, i) => [n, byNumber.get(i + 1) ?? []]));
}

/** All a gdb process prints (stdout, then stderr as it comes), once it exits; killed after `timeoutMs`. */
export function gdbOutput(g: ChildProcessByStdio<null, Readable, Readable | null>, timeoutMs: number): Promise<string> {
  let out = '';
  g.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  g.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      g.kill('SIGKILL');
      reject(new Error(`gdb timed out; output so far:\n${out}`));
    }, timeoutMs);
    g.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/**
 * The same value, formatting aside: gdb's `(type) ` prefix before a scalar, symbol names
 * after addresses (gdb's choice among aliases differs, and it names NULL after the per-CPU
 * symbol at 0), and the NUL padding it prints in char arrays.
 */
export function normalizeValue(s: string): string {
  return s
    .trim()
    .replace(/", '\\000' <repeats \d+ times>/g, '"')
    .replace(/(\\000)+"/g, '"')
    .replace(/ <[^<>]*>/g, '')
    .replace(/^\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\s+(?=0x|-?\d)/, '');
}

/** gdb's `bt` lines with their pc (none for frame #0 and inlined frames). */
export function gdbFrames(text: string): Array<Where & { pc?: string }> {
  const out: Array<Where & { pc?: string }> = [];
  for (const line of text.split('\n')) {
    const m = /^#\d+\s+(?:(0x[0-9a-f]+) in )?([\w.]+) \(.*\) at (\S+):(\d+)\s*$/.exec(line);
    if (m) out.push({ pc: m[1], fn: m[2], file: m[3], line: Number(m[4]) });
  }
  return out;
}

/** gdb's output for commands run as `echo @@key@@\n` then the command: what each printed, by key. */
export class MarkedOutput {
  constructor(readonly text: string) {}

  static commands(key: string, cmd: string): string[] {
    return [`echo @@${key}@@\\n`, cmd];
  }

  section(key: string): string {
    const start = this.text.indexOf(`@@${key}@@\n`);
    if (start < 0) return '';
    const rest = this.text.slice(start + key.length + 5);
    const end = rest.indexOf('@@');
    return end < 0 ? rest : rest.slice(0, end);
  }

  /** The value of a `print`: what follows `$N = `. */
  printed(key: string): string {
    return /^\$\d+ = ([\s\S]*?)\s*$/m.exec(this.section(key).trim())?.[1] ?? `<gdb: ${this.section(key).trim()}>`;
  }
}
