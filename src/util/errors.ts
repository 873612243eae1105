/**
 * Every error a user can see has a code here and a factory below, so messages stay
 * consistent and each names the launch-config field or file at fault and how to fix it.
 */

export enum ErrorCode {
  InvalidField = 1001,
  MissingField = 1002,
  FileNotFound = 1003,
  NotElf = 1004,
  UnknownArch = 1005,
  ArchMismatch = 1006,
  /** A file exists but cannot be used: permissions, a directory where a file belongs, a full disk. */
  FileAccess = 1007,
  /** The vmlinux's DWARF could not be read. */
  DebugInfo = 1008,
  QemuNotFound = 1010,
  QemuExited = 1011,
  QemuStartTimeout = 1012,
  /** QEMU's monitor (QMP) refused a command. */
  QemuMonitor = 1013,
  GdbstubConnect = 1020,
  /** The gdbstub connection closed or stopped answering mid-session. */
  GdbstubLost = 1021,
  /** The gdbstub refused a request or answered with something we do not understand. */
  GdbstubError = 1022,
  TargetRunning = 1030,
  TargetNotStopped = 1031,
  UnknownThread = 1032,
  /** Guest memory that cannot be read or written at that address. */
  MemoryAccess = 1033,
  Unsupported = 1040,
  GuestBuild = 1050,
  Expression = 1060,
  BreakpointOption = 1061,
  Internal = 1099,
}

export class UserError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly field?: string) {
    super(message);
    this.name = 'UserError';
  }
}

export const errors = {
  invalidField: (field: string, problem: string, fix: string): UserError =>
    new UserError(ErrorCode.InvalidField, `Launch config field '${field}' ${problem}. ${fix}`, field),
  missingField: (field: string, fix: string): UserError =>
    new UserError(ErrorCode.MissingField, `Launch config field '${field}' is required. ${fix}`, field),
  fileNotFound: (field: string, path: string, fix: string): UserError =>
    new UserError(ErrorCode.FileNotFound, `Launch config field '${field}': file '${path}' does not exist. ${fix}`, field),
  notElf: (field: string, path: string, detail: string): UserError =>
    new UserError(ErrorCode.NotElf, `Launch config field '${field}': '${path}' is not a usable vmlinux (${detail}). Point it at the uncompressed ELF 'vmlinux' at the top of the kernel build tree.`, field),
  unknownArch: (value: string, known: string[]): UserError =>
    new UserError(ErrorCode.UnknownArch, `Launch config field 'arch' has unknown value '${value}'. Use one of: ${known.join(', ')}.`, 'arch'),
  archMismatch: (field: string, path: string, found: string, arch: string): UserError =>
    new UserError(ErrorCode.ArchMismatch, `Launch config field '${field}': '${path}' is built for ${found}, but 'arch' is '${arch}'. Set 'arch' to match the kernel.`, field),
  qemuNotFound: (binary: string, viaField: boolean, pkg: string): UserError =>
    new UserError(
      ErrorCode.QemuNotFound,
      viaField
        ? `Launch config field 'qemuPath': '${binary}' does not exist or is not executable. Fix the path or remove the field to use ${pkg}'s binary from PATH.`
        : `QEMU binary '${binary}' was not found on PATH. Install it (apt-get install ${pkg}) or set 'qemuPath' in the launch config.`,
      viaField ? 'qemuPath' : undefined,
    ),
  qemuExited: (detail: string): UserError => new UserError(ErrorCode.QemuExited, `QEMU exited: ${detail}`),
  qemuStartTimeout: (ms: number, stderr: string): UserError =>
    new UserError(ErrorCode.QemuStartTimeout, `QEMU did not open its monitor within ${ms} ms.${stderr ? ` Its output: ${stderr}` : ''}`),
  gdbstubConnect: (target: string, detail: string): UserError =>
    new UserError(ErrorCode.GdbstubConnect, `Cannot connect to the gdbstub at '${target}': ${detail}. Start QEMU with -gdb tcp:127.0.0.1:PORT (or a unix socket) and check 'target'.`, 'target'),
  targetRunning: (what: string): UserError => new UserError(ErrorCode.TargetRunning, `Cannot ${what} while the guest is running; pause it first.`),
  targetNotStopped: (detail: string): UserError => new UserError(ErrorCode.TargetNotStopped, `The guest could not be stopped: ${detail}. QEMU may be stopped or overloaded; the session goes on when it answers again.`),
  unknownThread: (id: number): UserError => new UserError(ErrorCode.UnknownThread, `There is no vCPU with thread id ${id}.`),
  unsupported: (what: string): UserError => new UserError(ErrorCode.Unsupported, what),
  badBreakpointOption: (field: string, detail: string): UserError => new UserError(ErrorCode.BreakpointOption, `Breakpoint ${field}: ${detail}.`, field),
  guestBuild: (detail: string): UserError => new UserError(ErrorCode.GuestBuild, `Building the sample guest failed: ${detail}`),
};

/** A message for any thrown value; never `{}` the way JSON.stringify(err) would print it. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The fields lower layers' errors carry; read by shape so this file imports none of them (every bundle loads it). */
interface LowerError extends Error {
  code?: unknown;
  path?: unknown;
  syscall?: unknown;
  file?: unknown;
  command?: unknown;
}

const FS_PROBLEMS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
  EMFILE: 'too many open files',
};

/**
 * Any thrown value as the error a DAP response carries: a UserError as it is, errors of the
 * lower layers (RSP, QMP, ELF and DWARF readers, guest memory, the file system) with the code
 * the user-facing enum has for them and a message that says what to do; anything else is
 * Internal, a bug of ours, with its own message.
 */
export function toUserError(err: unknown): UserError {
  if (err instanceof UserError) return err;
  if (!(err instanceof Error)) return new UserError(ErrorCode.Internal, messageOf(err));
  const e = err as LowerError;
  const msg = e.message;
  switch (e.name) {
    case 'RspConnectionError':
      return new UserError(ErrorCode.GdbstubLost, `Lost the gdbstub: ${msg.replace(/^gdbstub connection: /, '')}. If QEMU exited, its last output is in the Debug Console; restart the session to reconnect.`);
    case 'RspErrorReply':
      return new UserError(ErrorCode.GdbstubError, `The gdbstub could not do this: ${msg}. The address or register may not be accessible while the guest is in this state.`);
    case 'RspUnsupported':
      return new UserError(ErrorCode.Unsupported, `This QEMU's gdbstub does not support this: ${msg}. A newer QEMU may.`);
    case 'RspError':
      if (/while the target is running/.test(msg)) return errors.targetRunning('do this');
      return new UserError(ErrorCode.GdbstubError, `The gdbstub request failed: ${msg}.`);
    case 'RspProtocolError':
    case 'FramingError':
      return new UserError(ErrorCode.GdbstubError, `The gdbstub's reply was not understood: ${msg}. Set "rspLog" (or qemuKernel.trace.rsp) to record the packets, and report it.`);
    case 'QmpError':
      return new UserError(ErrorCode.QemuMonitor, `QEMU refused a monitor command: ${msg.replace(/^QMP /, '')}.`);
    case 'ElfError':
      return new UserError(ErrorCode.NotElf, `Cannot read the ELF file ${msg}. Point 'vmlinux' at the uncompressed ELF vmlinux at the top of the kernel build tree.`, 'vmlinux');
    case 'DwarfError':
      return new UserError(ErrorCode.DebugInfo, `The vmlinux's debug info could not be read: ${msg}. Rebuild the kernel with CONFIG_DEBUG_INFO_DWARF4 or _DWARF5, or report the section and offset.`);
    case 'ModuleFileError':
      return new UserError(ErrorCode.DebugInfo, `A module file could not be used: ${msg}. Rebuild the module, or point 'modulePaths' at the folder it was built in.`, 'modulePaths');
    case 'LayoutError':
      return new UserError(ErrorCode.DebugInfo, `The kernel's structures could not be read from its DWARF: ${msg}.`);
    case 'MemoryError':
      return new UserError(ErrorCode.MemoryAccess, msg);
    case 'UnavailableError':
      return new UserError(ErrorCode.Expression, msg);
  }
  if (typeof e.code === 'string' && typeof e.syscall === 'string') {
    const where = typeof e.path === 'string' ? `'${e.path}'` : 'a file';
    if (e.code === 'ENOENT') return new UserError(ErrorCode.FileNotFound, `${where} does not exist (${e.syscall}). Check the path, or create it.`);
    const problem = FS_PROBLEMS[e.code];
    if (problem) return new UserError(ErrorCode.FileAccess, `Cannot use ${where}: ${problem} (${e.syscall}). Fix its permissions or choose another path.`);
  }
  return new UserError(ErrorCode.Internal, msg);
}
