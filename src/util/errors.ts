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
  QemuNotFound = 1010,
  QemuExited = 1011,
  QemuStartTimeout = 1012,
  GdbstubConnect = 1020,
  TargetRunning = 1030,
  TargetNotStopped = 1031,
  UnknownThread = 1032,
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
