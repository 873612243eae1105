/**
 * Launch configuration: the fields a user writes, their defaults, and validation whose
 * messages name the field at fault.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ArchInfo, getArch } from '../arch';
import { errors } from '../util/errors';

export type Accel = 'auto' | 'kvm' | 'tcg';
export type DisassemblySyntax = 'att' | 'intel';

/** `disassemblySyntax`, shared by launch and attach: "att" (the default) or "intel". */
export function disassemblySyntax(raw: Record<string, unknown>): DisassemblySyntax {
  const v = raw.disassemblySyntax ?? 'att';
  if (v !== 'att' && v !== 'intel') throw errors.invalidField('disassemblySyntax', `has unknown value ${JSON.stringify(v)}`, 'Use "att" (AT&T, as gdb and objdump print by default) or "intel".');
  return v;
}

/** The launch fields shared by the editor, the CLI and any DAP client. */
export interface LaunchConfig {
  arch?: string;
  kernel?: string;
  vmlinux?: string;
  initrd?: string;
  append?: string;
  memory?: string;
  smp?: number;
  accel?: Accel;
  qemuPath?: string;
  qemuArgs?: string[];
  consoleLog?: string;
  stopOnEntry?: boolean;
  rspLog?: string;
  /** Assembly syntax of the disassembly view: AT&T (gdb's and objdump's default) or Intel. */
  disassemblySyntax?: DisassemblySyntax;
  /** Use the sample guest (built or taken from the cache) for kernel, vmlinux and initrd. */
  sampleGuest?: boolean;
  /** Compile-time path prefix → local path prefix, for a vmlinux built elsewhere. */
  sourceMap?: Record<string, string>;
  /** The kernel source tree (defaults: the workspace or the vmlinux's directory when they are one). */
  source?: string;
  /** Set by the editor: the workspace folder, checked for a kernel tree. */
  cwd?: string;
}

export interface ResolvedLaunch {
  arch: ArchInfo;
  kernel: string;
  vmlinux?: string;
  initrd?: string;
  append: string;
  memory: string;
  smp: number;
  accel: Accel;
  qemuPath: string;
  qemuArgs: string[];
  consoleLog: string;
  stopOnEntry: boolean;
  rspLog?: string;
}

export const DEFAULT_MEMORY = '512M';

/** Add `console=` for the arch and `nokaslr` (symbols match addresses) unless the user chose otherwise. */
export function effectiveAppend(append: string | undefined, arch: ArchInfo): string {
  const words = (append ?? '').trim().split(/\s+/).filter(Boolean);
  if (!words.some((w) => w.startsWith('console='))) words.push(`console=${arch.console}`);
  if (!words.some((w) => /(^|no)kaslr$/.test(w))) words.push('nokaslr');
  return words.join(' ');
}

export function defaultConsoleLog(): string {
  const state = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.join(state, 'qemu-kernel-debug', 'logs', `console-${stamp}-${process.pid}.log`);
}

/** Find an executable by name on PATH (or check an explicit path). */
export function findExecutable(name: string): string | undefined {
  const isExec = (p: string): boolean => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (name.includes('/')) return isExec(name) ? path.resolve(name) : undefined;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExec(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

function optString(raw: Record<string, unknown>, field: string): string | undefined {
  const v = raw[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw errors.invalidField(field, `must be a string, not ${typeof v}`, `Write it as "${field}": "..."`);
  return v;
}

function requireFile(field: string, file: string | undefined, fix: string): string {
  if (!file) throw errors.missingField(field, fix);
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw errors.fileNotFound(field, abs, fix);
  if (!fs.statSync(abs).isFile()) throw errors.invalidField(field, `('${abs}') is not a regular file`, fix);
  return abs;
}

/**
 * Validate and fill in defaults. `needVmlinux` is false for plain booting (qkd boot),
 * where symbols are not needed.
 */
export function resolveLaunchConfig(input: unknown, needVmlinux = true): ResolvedLaunch {
  if (typeof input !== 'object' || input === null) throw errors.invalidField('(launch config)', 'is not an object', 'Pass a JSON object.');
  const raw = input as Record<string, unknown>;
  const arch = getArch(optString(raw, 'arch') ?? 'x86_64');

  const kernel = requireFile('kernel', optString(raw, 'kernel'), `Point it at the kernel image QEMU should boot, e.g. <tree>/${arch.bootImage}.`);

  let vmlinux = optString(raw, 'vmlinux');
  if (!vmlinux && needVmlinux) {
    const guess = guessVmlinux(kernel, arch);
    if (!guess) throw errors.missingField('vmlinux', `It was not found beside '${kernel}'. Set it to the ELF vmlinux at the top of the kernel build tree.`);
    vmlinux = guess;
  }
  if (vmlinux) vmlinux = requireFile('vmlinux', vmlinux, 'Set it to the ELF vmlinux at the top of the kernel build tree.');

  const initrdRaw = optString(raw, 'initrd');
  const initrd = initrdRaw ? requireFile('initrd', initrdRaw, 'Point it at an initramfs (cpio) file, or remove the field.') : undefined;

  const memory = optString(raw, 'memory') ?? DEFAULT_MEMORY;
  if (!/^\d+[KMGT]?$/i.test(memory)) throw errors.invalidField('memory', `('${memory}') is not a size`, 'Use a number with an optional K/M/G suffix, e.g. "512M" or "2G".');

  const smpRaw = raw.smp ?? 1;
  if (typeof smpRaw !== 'number' || !Number.isInteger(smpRaw) || smpRaw < 1 || smpRaw > 64)
    throw errors.invalidField('smp', `(${JSON.stringify(smpRaw)}) must be a whole number from 1 to 64`, 'Set the number of vCPUs, e.g. "smp": 2.');

  const accel = (optString(raw, 'accel') ?? 'auto') as Accel;
  if (!['auto', 'kvm', 'tcg'].includes(accel)) throw errors.invalidField('accel', `has unknown value '${accel}'`, 'Use "auto", "kvm" or "tcg".');

  const qemuPathRaw = optString(raw, 'qemuPath');
  const qemuPath = findExecutable(qemuPathRaw ?? arch.qemuBinary);
  if (!qemuPath) throw errors.qemuNotFound(qemuPathRaw ?? arch.qemuBinary, qemuPathRaw !== undefined, arch.qemuPackage);

  const qemuArgs = raw.qemuArgs ?? [];
  if (!Array.isArray(qemuArgs) || !qemuArgs.every((a) => typeof a === 'string'))
    throw errors.invalidField('qemuArgs', 'must be an array of strings', 'Write it as "qemuArgs": ["-device", "..."].');

  // Checked here so a bad value is reported before QEMU starts; the adapter reads it again.
  disassemblySyntax(raw);

  const stopOnEntry = raw.stopOnEntry ?? false;
  if (typeof stopOnEntry !== 'boolean') throw errors.invalidField('stopOnEntry', 'must be true or false', 'Remove the quotes around the value.');

  return {
    arch,
    kernel,
    vmlinux,
    initrd,
    append: effectiveAppend(optString(raw, 'append'), arch),
    memory,
    smp: smpRaw,
    accel,
    qemuPath,
    qemuArgs: qemuArgs as string[],
    consoleLog: path.resolve(optString(raw, 'consoleLog') ?? defaultConsoleLog()),
    stopOnEntry,
    rspLog: optString(raw, 'rspLog'),
  };
}

/** `<tree>/arch/x86/boot/bzImage` → `<tree>/vmlinux`, or a vmlinux in the kernel's own folder. */
function guessVmlinux(kernel: string, arch: ArchInfo): string | undefined {
  const candidates: string[] = [path.join(path.dirname(kernel), 'vmlinux')];
  const suffix = '/' + arch.bootImage;
  if (kernel.endsWith(suffix)) candidates.unshift(path.join(kernel.slice(0, -suffix.length), 'vmlinux'));
  return candidates.find((c) => fs.existsSync(c));
}
