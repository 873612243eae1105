/**
 * Starting a debug target: launch (our own QEMU) or attach (someone else's gdbstub).
 * Both end with a Debugger connected to a stopped guest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArchInfo, getArch, archForElfMachine } from '../arch';
import { Debugger } from '../engine/debugger';
import { KernelTarget } from '../engine/target';
import { decideAccel, AccelDecision } from '../qemu/kvmprobe';
import { buildGuest } from '../guest/build';
import { disassemblySyntax, type DisassemblySyntax, LaunchConfig, ResolvedLaunch, resolveLaunchConfig } from '../qemu/config';
import { QemuInstance } from '../qemu/instance';
import { parseTarget, RspTarget, WireLog } from '../rsp/client';
import { ElfFile } from '../symbols/elf';
import { SymbolTable } from '../symbols/symtab';
import { SourceInfo } from '../engine/sourceinfo';
import { checkSourceOptions, sourceInfo as vmlinuxSourceInfo, type SourceOptions } from '../engine/vmlinux';

export { checkSourceOptions, type SourceOptions };
import { errors, messageOf } from '../util/errors';
import type { LogLevel } from './events';
import { IndexGate } from './indexgate';

export interface AttachConfig {
  target?: string;
  arch?: string;
  vmlinux?: string;
  rspLog?: string;
  stopOnAttach?: boolean;
  disassemblySyntax?: DisassemblySyntax;
  sourceMap?: Record<string, string>;
  source?: string;
  cwd?: string;
}

export interface Backend {
  debugger: Debugger;
  source?: SourceInfo;
  symbols?: SymbolTable;
  elf?: ElfFile;
  instance?: QemuInstance;
  launch?: ResolvedLaunch;
  accel?: AccelDecision;
  disassemblySyntax: DisassemblySyntax;
  /** Holds the function index back while the guest boots; DAP requests keep it waiting. */
  indexGate?: IndexGate;
}

export interface Progress {
  (message: string): void;
}

/** A line for the user; `level` (default info) decides where the extension's log shows it. */
export type Log = (message: string, level?: LogLevel) => void;

/** Open vmlinux and check it is an ELF for the configured arch (or, with none configured, for one we know). */
export function loadSymbols(vmlinux: string, configured?: ArchInfo): { elf: ElfFile; symbols: SymbolTable; arch: ArchInfo } {
  let elf: ElfFile;
  try {
    elf = ElfFile.open(vmlinux);
  } catch (e) {
    throw errors.notElf('vmlinux', vmlinux, messageOf(e).replace(`${vmlinux}: `, ''));
  }
  const arch = configured ?? archForElfMachine(elf.machine) ?? getArch('x86_64');
  if (elf.machine !== arch.elfMachine) {
    const found = archForElfMachine(elf.machine)?.name ?? `ELF machine ${elf.machine}`;
    elf.close();
    throw errors.archMismatch('vmlinux', vmlinux, found, arch.name);
  }
  const symbols = SymbolTable.fromElf(elf);
  if (symbols.size === 0) {
    elf.close();
    throw errors.notElf('vmlinux', vmlinux, 'it has no symbol table; was it stripped?');
  }
  return { elf, symbols, arch };
}

/**
 * Source-level symbols for a session (engine/vmlinux.ts), the function index held back by
 * `gate` when one is given (see IndexGate).
 */
export function sourceInfo(elf: ElfFile, symbols: SymbolTable, vmlinux: string, o: SourceOptions, extraRoots: string[] = [], gate?: IndexGate): SourceInfo {
  return vmlinuxSourceInfo(elf, symbols, vmlinux, o, extraRoots, gate && ((i) => gate.wrap(i)));
}

/** Build the function index as soon as the gate opens, so that inlined copies and globals are ready early. */
function prepareIndex(source: SourceInfo | undefined, gate: IndexGate, log: Log, onIndexing?: (done: Promise<unknown>) => void): void {
  const index = source?.index;
  if (!index) return;
  gate.onOpen(() => {
    const done = index.buildFunctions().then(
      (s) => log(`Indexed ${s.codeCopies} code copies (inlined calls and out-of-line functions) of ${s.names} functions in ${s.units} units (${(s.ms / 1000).toFixed(1)} s).${s.errors.length ? ` ${s.errors.length} unit(s) could not be read: ${s.errors[0]}` : ''}`),
      (e: unknown) => log(`The function index could not be built: ${messageOf(e)}. Breakpoints on inlined functions will miss their inlined copies.`, 'warn'),
    );
    onIndexing?.(done);
  });
}

export function wireLogTo(file: string | undefined): WireLog | undefined {
  if (!file) return undefined;
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const fd = fs.openSync(file, 'a');
  const t0 = performance.now();
  // Tenth-of-a-millisecond stamps: a packet round trip takes about that long.
  return (dir, text) => {
    fs.writeSync(fd, `${((performance.now() - t0) / 1000).toFixed(4)} ${dir} ${text}\n`);
  };
}

export async function launchBackend(
  raw: LaunchConfig,
  progress: Progress,
  log: Log,
  onInstance: (i: QemuInstance, cfg: ResolvedLaunch) => void,
  onIndexing?: (done: Promise<unknown>) => void,
  onQemuStarting?: (source: SourceInfo) => void,
): Promise<Backend> {
  if (raw.sampleGuest === true && !raw.kernel) {
    progress('Preparing the sample guest');
    const g = await buildGuest(raw.arch ?? 'x86_64', progress);
    raw = { ...raw, kernel: g.kernel, vmlinux: raw.vmlinux ?? g.vmlinux, initrd: raw.initrd ?? g.initrd };
  }
  const cfg = resolveLaunchConfig(raw);
  checkSourceOptions(raw);
  const { elf, symbols } = loadSymbols(cfg.vmlinux as string, cfg.arch);
  const gate = new IndexGate();
  const source = sourceInfo(elf, symbols, cfg.vmlinux as string, raw, [], gate);
  prepareIndex(source, gate, log, onIndexing);
  progress('Checking the accelerator');
  const accel = await decideAccel(cfg.accel, cfg.qemuPath, cfg.arch);
  log(`Accelerator: ${accel.reason}.`);
  progress(`Starting QEMU (${accel.accel.toUpperCase()})`);
  let instance: QemuInstance | undefined;
  try {
    const starting = QemuInstance.start(cfg, accel.accel);
    onQemuStarting?.(source);
    instance = await starting;
    onInstance(instance, cfg);
    progress('Connecting to the gdbstub');
    const target = await KernelTarget.connect({ kind: 'unix', path: instance.paths.gdbSocket }, cfg.arch, { log: wireLogTo(cfg.rspLog) });
    target.breakpointsInMemory = accel.accel !== 'tcg';
    target.warn = (m) => log(m, 'warn');
    const dbg = new Debugger(target, symbols, source);
    gate.follow(dbg);
    await dbg.init();
    return { debugger: dbg, source, symbols, elf, instance, launch: cfg, accel, disassemblySyntax: disassemblySyntax(raw as Record<string, unknown>), indexGate: gate };
  } catch (e) {
    await instance?.stop();
    await source.index?.close();
    elf.close();
    throw e;
  }
}

export async function attachBackend(raw: AttachConfig, log: Log = () => undefined): Promise<Backend> {
  if (!raw.target) throw errors.missingField('target', 'Give the gdbstub as host:port (e.g. "127.0.0.1:1234") or a unix socket path.');
  let where: RspTarget;
  try {
    where = parseTarget(raw.target);
  } catch (e) {
    throw errors.invalidField('target', `('${raw.target}') is not usable: ${messageOf(e)}`, 'Use host:port or a unix socket path.');
  }
  // Without "arch", the vmlinux's ELF header says which guest this is (x86_64 without one either).
  let arch = raw.arch ? getArch(raw.arch) : undefined;
  checkSourceOptions(raw);
  const syntax = disassemblySyntax(raw as Record<string, unknown>);
  let loaded: ReturnType<typeof loadSymbols> | undefined;
  if (raw.vmlinux) {
    const abs = path.resolve(raw.vmlinux);
    if (!fs.existsSync(abs)) throw errors.fileNotFound('vmlinux', abs, 'Set it to the ELF vmlinux of the running kernel, or remove it.');
    loaded = loadSymbols(abs, arch);
    arch = loaded.arch;
  }
  arch ??= getArch('x86_64');
  let target: KernelTarget;
  try {
    target = await KernelTarget.connect(where, arch, { log: wireLogTo(raw.rspLog) });
  } catch (e) {
    loaded?.elf.close();
    throw errors.gdbstubConnect(raw.target, messageOf(e).replace(/^gdbstub connection: /, ''));
  }
  const gate = new IndexGate();
  const source = loaded && raw.vmlinux ? sourceInfo(loaded.elf, loaded.symbols, raw.vmlinux, raw, [], gate) : undefined;
  prepareIndex(source, gate, log);
  target.warn = (m) => log(m, 'warn');
  const dbg = new Debugger(target, loaded?.symbols, source);
  gate.follow(dbg);
  await dbg.init();
  return { debugger: dbg, source, symbols: loaded?.symbols, elf: loaded?.elf, disassemblySyntax: syntax, indexGate: gate };
}
