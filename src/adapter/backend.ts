/**
 * Starting a debug target: launch (our own QEMU) or attach (someone else's gdbstub).
 * Both end with a Debugger connected to a stopped guest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArchInfo, getArch, archForElfMachine } from '../arch';
import { Debugger } from '../engine/debugger';
import { loadCapstone } from '../engine/disasm/capstone';
import { KernelTarget } from '../engine/target';
import { decideAccel, AccelDecision } from '../qemu/kvmprobe';
import { kvmBootTrial } from '../qemu/boottrial';
import { buildGuest } from '../guest/build';
import { monitorCommand } from '../rsp/packets';
import { initramfsList, kaslrWord, parseLaunch, problemText, resolveAttach, resolveLaunch, withGuest, withInitrd } from '../config';
import { initramfsFromList, problemLine } from '../guest/initramfslist';
import type { AttachConfig, DisassemblySyntax, ResolvedLaunch, SourceOptions } from '../config/types';
import { QemuInstance } from '../qemu/instance';
import { openAttachedRam, stubOwner } from '../qemu/stubowner';
import { WireLog } from '../rsp/client';
import { ElfFile } from '../symbols/elf';
import { SymbolTable, type SymbolLookup } from '../symbols/symtab';
import type { SourceSet } from '../engine/sources';
import type { ModuleFileOptions } from '../engine/modulefiles';
import { sampleModuleDirsFor } from '../guest/modules';
import { sourceInfo as vmlinuxSourceInfo } from '../engine/vmlinux';

export type { AttachConfig, SourceOptions };
import { errors, messageOf } from '../util/errors';
import type { LogLevel, SymbolsEventBody } from './events';
import { IndexGate } from './indexgate';

export interface Backend {
  debugger: Debugger;
  source?: SourceSet;
  /** vmlinux's symbols and every loaded module's. */
  symbols?: SymbolLookup;
  elf?: ElfFile;
  instance?: QemuInstance;
  launch?: ResolvedLaunch;
  accel?: AccelDecision;
  disassemblySyntax: DisassemblySyntax;
  /** Holds the function index back while the guest boots; DAP requests keep it waiting. */
  indexGate?: IndexGate;
  /** Every kernel task is a DAP thread. */
  tasksAsThreads?: boolean;
  /** The files a kernel log of this guest decodes with (the SYMBOLS_EVENT). */
  symbolFiles?: SymbolsEventBody;
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
export function sourceInfo(elf: ElfFile, symbols: SymbolTable, vmlinux: string, o: SourceOptions, extraRoots: string[] = [], gate?: IndexGate): SourceSet {
  return vmlinuxSourceInfo(elf, symbols, vmlinux, o, extraRoots, gate && ((i) => gate.wrap(i)));
}

/** Build the function index as soon as the gate opens, so that inlined copies and globals are ready early. */
function prepareIndex(source: SourceSet | undefined, gate: IndexGate, log: Log, onIndexing?: (done: Promise<unknown>) => void): void {
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

/** `raw` is the launch request's arguments as the client sent them; src/config resolves them. */
export async function launchBackend(
  raw: unknown,
  progress: Progress,
  log: Log,
  onInstance: (i: QemuInstance, cfg: ResolvedLaunch) => void,
  onIndexing?: (done: Promise<unknown>) => void,
  onQemuStarting?: (source: SourceSet) => void,
): Promise<Backend> {
  // Every field is checked before the sample guest is built: a bad one should not wait minutes.
  let spec = parseLaunch(raw);
  for (const w of spec.warnings) log(problemText(w), 'warn');
  if (spec.needsGuest) {
    progress('Preparing the sample guest');
    spec = withGuest(spec, await buildGuest(spec.arch.name, progress));
  }
  const list = initramfsList(spec);
  if (list) {
    progress('Making the initramfs from its list');
    const made = initramfsFromList(list);
    for (const p of made.problems) log(problemLine(list, p), 'warn');
    log(made.rebuilt ? `Initramfs made from ${list}: ${made.file}` : `Initramfs from ${list} is unchanged: ${made.file}`, 'info');
    spec = withInitrd(spec, made.file);
  }
  const cfg = resolveLaunch(spec);
  const { elf, symbols } = loadSymbols(cfg.vmlinux as string, cfg.arch);
  const gate = new IndexGate();
  const source = sourceInfo(elf, symbols, cfg.vmlinux as string, cfg, [], gate);
  prepareIndex(source, gate, log, onIndexing);
  progress('Checking the accelerator');
  const accel = await decideAccel(cfg.accel, cfg.qemuPath, cfg.arch, () => {
    progress('Checking that KVM boots this kernel (a few seconds, once per host boot)');
    return kvmBootTrial(cfg);
  });
  log(`Accelerator: ${accel.reason}.`, accel.fellBack ? 'warn' : 'info');
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
    // Guest RAM straight from QEMU's memfd: the task list, the printk ring and stacks without a packet each.
    const ram = instance.openRam(await monitorCommand(target.rsp, 'info mtree -f').catch(() => ''));
    if (ram) target.useRam(ram);
    if (ram) log(RAM_DIRECT);
    const dbg = new Debugger(target, source.images, source);
    warmWhileRunning(dbg, source);
    gate.follow(dbg);
    await dbg.init();
    // nokaslr: vmlinux runs at its link addresses; otherwise where is found once the kernel runs.
    await dbg.followKernelBase(kaslrWord(cfg.append) === false ? 'fixed' : 'find', () => readBootImage(cfg.kernel));
    await dbg.enableModules(moduleOptions(cfg));
    return { debugger: dbg, source, symbols: source.images, elf, instance, launch: cfg, accel, disassemblySyntax: cfg.disassemblySyntax, indexGate: gate, tasksAsThreads: cfg.tasksAsThreads, symbolFiles: symbolFiles(cfg) };
  } catch (e) {
    await instance?.stop();
    await source.index?.close();
    elf.close();
    throw e;
  }
}

const RAM_DIRECT = "Guest memory is read directly from QEMU's RAM (its memfd backend) while the guest is stopped, not through the gdbstub.";

/** `raw` is the attach request's arguments as the client sent them; src/config resolves them. */
export async function attachBackend(raw: unknown, log: Log = () => undefined): Promise<Backend> {
  const cfg = resolveAttach(raw);
  for (const w of cfg.warnings) log(problemText(w), 'warn');
  const loaded = cfg.vmlinux ? loadSymbols(cfg.vmlinux, cfg.arch) : undefined;
  let target: KernelTarget;
  try {
    target = await KernelTarget.connect(cfg.target, cfg.arch, { log: wireLogTo(cfg.rspLog) });
  } catch (e) {
    loaded?.elf.close();
    throw errors.gdbstubConnect(cfg.targetText, messageOf(e).replace(/^gdbstub connection: /, ''));
  }
  const gate = new IndexGate();
  const source = loaded && cfg.vmlinux ? sourceInfo(loaded.elf, loaded.symbols, cfg.vmlinux, cfg, [], gate) : undefined;
  prepareIndex(source, gate, log);
  target.warn = (m) => log(m, 'warn');
  // Someone else's QEMU: ask it whether software breakpoints are bytes in guest memory (KVM).
  target.breakpointsInMemory = await kvmEnabled(target);
  // A QEMU of this user's keeping guest RAM in a memfd: read it directly, as a launch does.
  const owner = stubOwner(cfg.target);
  const ram = owner !== undefined ? openAttachedRam(owner, await monitorCommand(target.rsp, 'info mtree -f').catch(() => '')) : undefined;
  if (ram) {
    target.useRam(ram);
    target.rsp.on('close', () => ram.close());
    log(RAM_DIRECT);
  } else {
    log('Guest memory is read through the gdbstub. Start QEMU with -object memory-backend-memfd,id=ram0,size=<its -m>,share=on -machine memory-backend=ram0 to have the debugger read guest RAM directly (the task list, the kernel log and stacks come many times faster).');
  }
  const dbg = new Debugger(target, source?.images ?? loaded?.symbols, source);
  warmWhileRunning(dbg, source);
  gate.follow(dbg);
  await dbg.init();
  // A running kernel may have been booted with KASLR: where it runs is read at this first stop.
  await dbg.followKernelBase('find');
  await dbg.enableModules(moduleOptions(cfg));
  return { debugger: dbg, source, symbols: source?.images ?? loaded?.symbols, elf: loaded?.elf, disassemblySyntax: cfg.disassemblySyntax, indexGate: gate, tasksAsThreads: cfg.tasksAsThreads, symbolFiles: symbolFiles(cfg) };
}

/**
 * Where loaded modules' files are looked for: the user's folders, then (through the search
 * itself) the build tree and /lib/modules; and the sample modules' build folder when the
 * vmlinux is a sample guest's.
 */
function moduleOptions(cfg: { modulePaths: string[]; vmlinux?: string }): ModuleFileOptions {
  const vmlinux = cfg.vmlinux && path.resolve(cfg.vmlinux);
  return { modulePaths: cfg.modulePaths, vmlinux, extraDirs: vmlinux ? sampleModuleDirsFor(vmlinux) : [] };
}

/** vmlinux and the folders its modules' .ko files are in, for the kernel-log language server. */
function symbolFiles(cfg: { modulePaths: string[]; vmlinux?: string }): SymbolsEventBody | undefined {
  const o = moduleOptions(cfg);
  if (!o.vmlinux) return undefined;
  return { vmlinux: o.vmlinux, moduleDirs: [...new Set([...o.modulePaths, ...o.extraDirs, path.dirname(o.vmlinux)])] };
}

/** QEMU's `info kvm` through the gdbstub's monitor; undefined from a stub without one. */
async function kvmEnabled(target: KernelTarget): Promise<boolean | undefined> {
  const out = await monitorCommand(target.rsp, 'info kvm').catch(() => '');
  const m = /kvm support: (enabled|disabled)/.exec(out);
  return m ? m[1] === 'enabled' : undefined;
}

/** The kernel file QEMU boots, for x86's early KASLR hook; undefined when it can't be read. */
function readBootImage(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

/**
 * The disassembler and the CFI index, built while the guest first runs: otherwise the first
 * stop's step planning builds them, and the client's requests at that stop wait behind it.
 */
function warmWhileRunning(dbg: Debugger, source: SourceSet | undefined): void {
  dbg.once('running', () => {
    void loadCapstone().catch(() => undefined);
    void source?.warm([]);
  });
}
