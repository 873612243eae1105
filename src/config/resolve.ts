/**
 * The one place a launch or attach configuration is checked and filled in. The editor (before
 * and after variable substitution), the adapter and the CLI all call here, so a field is
 * judged the same way wherever it comes from, and every error names the field and the fix.
 *
 * A launch resolves in two steps so the sample guest can be built in between: parseLaunch
 * checks every field's shape and value (cheap, nothing on disk, so a bad "memory" fails
 * before a build of minutes), then resolveLaunch checks the files and fills in the defaults;
 * withGuest hands it the guest's files when parseLaunch said they are needed.
 */
import * as fs from 'node:fs';
import { archForElfMachine, DEFAULT_ARCH, getArch, type ArchInfo } from '../arch';
import { ErrorCode, errors, UserError } from '../util/errors';
import { DEFAULT_MEMORY, defaultConsoleLog, effectiveAppend, guessVmlinux } from './defaults';
import { elfMachine, findExecutable, readElfHeader, requireFile, requireModuleDir, requireSourceTree, requireWritableFile } from './files';
import { checkRules, requestOf } from './rules';
import { checkAgainstSchema, isError, KASLR_DEFAULT, problemError, SCHEMAS } from './schema';
import { parseTarget } from './target';
import type { Accel, DisassemblySyntax, KaslrChoice, GuestFiles, Problem, Request, ResolvedAttach, ResolvedCommon, ResolvedLaunch } from './types';

type Raw = Readonly<Record<string, unknown>>;

/**
 * The object a client sent, without null fields: some DAP clients send null for "not set",
 * and every field here is optional or checked as missing.
 */
function asRecord(input: unknown, request: Request): Raw {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw errors.invalidField(`(${request} config)`, 'is not an object', 'Pass a JSON object.');
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== null));
}

// Read after problemsOf found no error, so each field has its schema's type.
const str = (raw: Raw, field: string): string | undefined => (typeof raw[field] === 'string' && raw[field] !== '' ? (raw[field] as string) : undefined);

/** Every problem of `request`'s fields, before any file is looked at: what the editor lists. */
function problemsOf(raw: Raw, request: Request): Problem[] {
  return [...checkAgainstSchema(raw, SCHEMAS[request]), ...checkRules(raw, request)];
}

function throwFirstError(problems: Problem[]): void {
  const first = problems.find(isError);
  if (first) throw problemError(first);
}

/** A launch config whose fields have the right shapes and values; no file has been looked at. */
export interface LaunchSpec {
  readonly raw: Raw;
  readonly arch: ArchInfo;
  /** sampleGuest without a kernel: build the guest and call withGuest before resolveLaunch. */
  readonly needsGuest: boolean;
  readonly warnings: Problem[];
}

/** The first step: shapes and values. Throws the first error; warnings ride along to the resolved config. */
export function parseLaunch(input: unknown): LaunchSpec {
  const raw = asRecord(input, 'launch');
  const problems = problemsOf(raw, 'launch');
  throwFirstError(problems);
  return { raw, arch: getArch(str(raw, 'arch') ?? DEFAULT_ARCH), needsGuest: raw.sampleGuest === true && !raw.kernel, warnings: problems };
}

/** Between the steps of a sample-guest launch: the guest's files, except those the user named. */
export function withGuest(spec: LaunchSpec, g: GuestFiles): LaunchSpec {
  const raw = { ...spec.raw, kernel: g.kernel, vmlinux: str(spec.raw, 'vmlinux') ?? g.vmlinux, initrd: str(spec.raw, 'initrd') ?? g.initrd };
  return { ...spec, raw, needsGuest: false };
}

/** The `initramfs` list to make the initrd from, checked to be a file; undefined without one. */
export function initramfsList(spec: LaunchSpec): string | undefined {
  const list = str(spec.raw, 'initramfs');
  return list === undefined ? undefined : requireFile('initramfs', list, 'Point it at an initramfs list (gen_init_cpio format), or remove the field.');
}

/** The launch with `initrd` made from its `initramfs` list. */
export function withInitrd(spec: LaunchSpec, initrd: string): LaunchSpec {
  const raw: Record<string, unknown> = { ...spec.raw, initrd };
  delete raw.initramfs;
  return { ...spec, raw };
}

/**
 * The vmlinux's ELF header is a 64-bit ELF for the arch. Resolving does not read the file:
 * the adapter opens it next (adapter/backend.ts loadSymbols, with the same checks and the
 * symbol table's), so this is for the editor, which wants the answer before any session.
 */
export function checkVmlinux(cfg: Pick<ResolvedCommon, 'vmlinux' | 'arch'>): void {
  if (!cfg.vmlinux) return;
  const h = readElfHeader(cfg.vmlinux);
  if ('problem' in h) throw errors.notElf('vmlinux', cfg.vmlinux, h.problem);
  if (h.machine !== cfg.arch.elfMachine) throw errors.archMismatch('vmlinux', cfg.vmlinux, archForElfMachine(h.machine)?.name ?? `ELF machine ${h.machine}`, cfg.arch.name);
}

const VMLINUX_FIX = 'Set it to the ELF vmlinux at the top of the kernel build tree.';

/** kernel, vmlinux and initrd: the files the guest boots from. */
function guestFiles(spec: LaunchSpec, needVmlinux: boolean): Pick<ResolvedLaunch, 'kernel' | 'vmlinux' | 'initrd'> {
  const { raw, arch } = spec;
  if (spec.needsGuest) throw errors.missingField('kernel', 'The sample guest has not been built yet; build it (qkd guest build) or give a kernel.');
  const kernel = requireFile('kernel', str(raw, 'kernel'), `Point it at the kernel image QEMU should boot, e.g. <tree>/${arch.bootImage}.`);
  let vmlinux = str(raw, 'vmlinux');
  if (!vmlinux && needVmlinux) {
    vmlinux = guessVmlinux(kernel, arch);
    if (!vmlinux) throw errors.missingField('vmlinux', `It was not found beside '${kernel}'. ${VMLINUX_FIX}`);
  }
  if (vmlinux) vmlinux = requireFile('vmlinux', vmlinux, VMLINUX_FIX);
  const initrdRaw = str(raw, 'initrd');
  const initrd = initrdRaw ? requireFile('initrd', initrdRaw, 'Point it at an initramfs (cpio) file, or remove the field.') : undefined;
  return { kernel, vmlinux, initrd };
}

/** QEMU and the files a launch writes, which need no guest. */
function hostFiles(spec: LaunchSpec): Pick<ResolvedLaunch, 'qemuPath' | 'consoleLog'> {
  const { raw, arch } = spec;
  const qemuPathRaw = str(raw, 'qemuPath');
  const qemuPath = findExecutable(qemuPathRaw ?? arch.qemuBinary);
  if (!qemuPath) throw errors.qemuNotFound(qemuPathRaw ?? arch.qemuBinary, qemuPathRaw !== undefined, arch.qemuPackage);
  const consoleLog = requireWritableFile('consoleLog', str(raw, 'consoleLog') ?? defaultConsoleLog(), 'Set "consoleLog" to a file in a directory you can write, or remove it for the default.');
  return { qemuPath, consoleLog };
}

/** The fields launch and attach share, past the files that decide the arch. */
function common(raw: Raw, arch: ArchInfo, vmlinux: string | undefined, warnings: Problem[]): ResolvedCommon {
  const rspLog = str(raw, 'rspLog');
  const source = str(raw, 'source');
  return {
    arch,
    vmlinux,
    rspLog: rspLog && requireWritableFile('rspLog', rspLog, 'Set "rspLog" to a file in a directory you can write, or remove it.'),
    disassemblySyntax: (raw.disassemblySyntax as DisassemblySyntax | undefined) ?? 'att',
    sourceMap: (raw.sourceMap as Record<string, string> | undefined) ?? {},
    source: source && requireSourceTree(source),
    cwd: str(raw, 'cwd'),
    breakAt: (raw.breakAt as string[] | undefined) ?? [],
    modulePaths: ((raw.modulePaths as string[] | undefined) ?? []).map((d, i) => requireModuleDir(`modulePaths[${i}]`, d)),
    tasksAsThreads: raw.tasksAsThreads === true,
    warnings: warnings.filter((p) => !isError(p)),
  };
}

/** The second step: files exist and are what they should be, QEMU is found, defaults are filled in. `needVmlinux` is false for plain booting (qkd boot). */
export function resolveLaunch(spec: LaunchSpec, needVmlinux = true): ResolvedLaunch {
  const { raw, arch } = spec;
  const files = guestFiles(spec, needVmlinux);
  const host = hostFiles(spec);
  const kaslr = (raw.kaslr as KaslrChoice | undefined) ?? KASLR_DEFAULT;
  return {
    ...common(raw, arch, files.vmlinux, spec.warnings),
    request: 'launch',
    kernel: files.kernel,
    initrd: files.initrd,
    append: effectiveAppend(str(raw, 'append'), arch, kaslr),
    kaslr,
    memory: (str(raw, 'memory') ?? DEFAULT_MEMORY).trim(),
    smp: (raw.smp as number | undefined) ?? 1,
    accel: (raw.accel as Accel | undefined) ?? 'auto',
    qemuPath: host.qemuPath,
    qemuArgs: (raw.qemuArgs as string[] | undefined) ?? [],
    consoleLog: host.consoleLog,
    stopOnEntry: raw.stopOnEntry === true,
    sampleGuest: raw.sampleGuest === true,
  };
}

/** Both steps, for a config that names its kernel. */
export function resolveLaunchConfig(input: unknown, needVmlinux = true): ResolvedLaunch {
  return resolveLaunch(parseLaunch(input), needVmlinux);
}

/**
 * An attach config, in one step (nothing to build). Without "arch", the vmlinux's ELF header
 * says which guest this is (x86_64 without a vmlinux either).
 */
export function resolveAttach(input: unknown): ResolvedAttach {
  const raw = asRecord(input, 'attach');
  const problems = problemsOf(raw, 'attach');
  throwFirstError(problems);
  const targetText = raw.target as string;
  const parsed = parseTarget(targetText);
  // problemsOf parsed it already; a variable left in it is the one way to get here with a problem.
  if ('problem' in parsed) throw problemError(parsed.problem);
  const given = str(raw, 'arch');
  let arch = given ? getArch(given) : undefined;
  let vmlinux = str(raw, 'vmlinux');
  if (vmlinux) {
    vmlinux = requireFile('vmlinux', vmlinux, 'Set it to the ELF vmlinux of the running kernel, or remove it.');
    const machine = elfMachine(vmlinux);
    arch ??= machine !== undefined ? archForElfMachine(machine) : undefined;
  }
  arch ??= getArch(DEFAULT_ARCH);
  return { ...common(raw, arch, vmlinux, problems), request: 'attach', target: parsed.target, targetText, stopOnAttach: raw.stopOnAttach === true };
}

/** For the editor, before variable substitution: every problem of the fields' shapes and values, warnings included. */
export function checkConfig(config: Record<string, unknown>): Problem[] {
  const req = requestOf(config);
  if (typeof req !== 'string') return [req];
  return problemsOf(asRecord(config, req), req);
}

/**
 * For the editor, after substitution: every path that does not exist, else the first problem
 * a session would meet with the files, QEMU and log paths (the sample guest's files are
 * skipped when it is still to be built).
 */
export function checkSubstituted(config: Record<string, unknown>): Problem[] {
  const missing = checkFiles(config);
  if (missing.length) return missing;
  try {
    if (config.request === 'attach') checkVmlinux(resolveAttach(config));
    else {
      const spec = parseLaunch(config);
      if (spec.needsGuest) {
        hostFiles(spec);
        common(spec.raw, spec.arch, undefined, []);
      } else checkVmlinux(resolveLaunch(spec));
    }
    return [];
  } catch (e) {
    if (e instanceof UserError) return [{ field: e.field ?? '', message: e.message, code: e.code }];
    throw e;
  }
}

/** After variable substitution: every file the configuration names exists (a bare qemuPath is looked up on PATH later). */
export function checkFiles(config: Record<string, unknown>, exists: (p: string) => boolean = fs.existsSync): Problem[] {
  const problems: Problem[] = [];
  const fields = config.request === 'launch' && config.sampleGuest ? ['qemuPath', 'initramfs'] : ['kernel', 'vmlinux', 'initrd', 'initramfs', 'qemuPath'];
  for (const field of fields) {
    const v = config[field];
    if (typeof v !== 'string' || !v || (field === 'qemuPath' && !v.includes('/'))) continue;
    if (v.includes('${')) problems.push({ field, message: `Launch config field '${field}': '${v}' has a variable VS Code could not substitute.`, fix: 'Use a variable VS Code knows (e.g. ${workspaceFolder}) or write the path out.' });
    else if (!exists(v)) problems.push({ field, message: `Launch config field '${field}': file '${v}' does not exist. ${field === 'kernel' ? 'Build the kernel (make -j$(nproc)) or fix the path.' : 'Fix the path or remove the field.'}`, code: ErrorCode.FileNotFound });
  }
  return problems;
}
