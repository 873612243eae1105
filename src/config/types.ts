/**
 * The launch and attach configurations: what a client may send (loosely typed, nothing
 * checked) and what src/config/resolve.ts turns it into (every field checked, defaulted and
 * typed). Every layer past the resolver takes a ResolvedLaunch or ResolvedAttach, so none of
 * them re-checks a field or picks its own default.
 */
import type { ArchInfo } from '../arch/types';
import type { RspTarget } from '../rsp/client';
import type { ErrorCode } from '../util/errors';

export type Accel = 'auto' | 'kvm' | 'tcg';
export type DisassemblySyntax = 'att' | 'intel';
export type Request = 'launch' | 'attach';

/** Where a session's symbols find source files. */
export interface SourceOptions {
  /** Compile-time path prefix → local path prefix, for a vmlinux built elsewhere. */
  sourceMap?: Record<string, string>;
  /** The kernel source tree (defaults: the workspace or the vmlinux's directory when they are one). */
  source?: string;
  /** Set by the editor: the workspace folder, checked for a kernel tree. */
  cwd?: string;
}

/** The launch fields shared by the editor, the CLI and any DAP client, as they arrive. */
/** `kaslr`: "auto" leaves the kernel's own setting; false appends nokaslr; true appends kaslr. */
export type KaslrChoice = 'auto' | boolean;

export interface LaunchConfig extends SourceOptions {
  arch?: string;
  kernel?: string;
  vmlinux?: string;
  initrd?: string;
  /** A gen_init_cpio list the initrd is made from (src/guest/initramfslist.ts); not with initrd. */
  initramfs?: string;
  append?: string;
  memory?: string;
  smp?: number;
  accel?: Accel;
  qemuPath?: string;
  qemuArgs?: string[];
  consoleLog?: string;
  stopOnEntry?: boolean;
  kaslr?: KaslrChoice;
  rspLog?: string;
  disassemblySyntax?: DisassemblySyntax;
  /** Folders searched (recursively, first) for loaded modules' .ko files. */
  modulePaths?: string[];
  tasksAsThreads?: boolean;
  /** Use the sample guest (built or taken from the cache) for kernel, vmlinux and initrd. */
  sampleGuest?: boolean;
  breakAt?: string[];
}

/** The attach fields, as they arrive. */
export interface AttachConfig extends SourceOptions {
  target?: string;
  arch?: string;
  vmlinux?: string;
  rspLog?: string;
  stopOnAttach?: boolean;
  disassemblySyntax?: DisassemblySyntax;
  breakAt?: string[];
  modulePaths?: string[];
  tasksAsThreads?: boolean;
}

/**
 * One thing wrong with a configuration. `message` says what (and names the field); `fix` says
 * how to repair it. Warnings do not stop a session: they are shown and the field is ignored.
 */
export interface Problem {
  field: string;
  message: string;
  fix?: string;
  code?: ErrorCode;
  severity?: 'error' | 'warning';
}

/** Fields both requests share, after resolution. */
export interface ResolvedCommon {
  arch: ArchInfo;
  /** Absolute; a regular file whose ELF header matches `arch`. */
  vmlinux?: string;
  /** Absolute; its directory exists or can be created. */
  rspLog?: string;
  disassemblySyntax: DisassemblySyntax;
  sourceMap: Record<string, string>;
  /** Absolute; a directory. */
  source?: string;
  cwd?: string;
  /** Function breakpoints to set before the guest runs (the editor adds them to its Breakpoints view). */
  breakAt: string[];
  /** Absolute folders, each existing: searched first for modules' .ko files. */
  modulePaths: string[];
  /** Every kernel task as a DAP thread (for clients without the Kernel Tasks view). */
  tasksAsThreads: boolean;
  /** Fields that were ignored (a typo of a known one, for instance), for the Debug Console. */
  warnings: Problem[];
}

export interface ResolvedLaunch extends ResolvedCommon {
  request: 'launch';
  /** Absolute; a regular file. */
  kernel: string;
  initrd?: string;
  /** The kernel command line, with the arch's console and what `kaslr` asks for added. */
  append: string;
  kaslr: KaslrChoice;
  /** QEMU -m syntax, e.g. "512M". */
  memory: string;
  smp: number;
  accel: Accel;
  /** Absolute path of an executable QEMU for `arch`. */
  qemuPath: string;
  qemuArgs: string[];
  /** Absolute; its directory exists or can be created. */
  consoleLog: string;
  stopOnEntry: boolean;
  sampleGuest: boolean;
}

export interface ResolvedAttach extends ResolvedCommon {
  request: 'attach';
  target: RspTarget;
  /** `target` as the user wrote it, for messages. */
  targetText: string;
  stopOnAttach: boolean;
}

/** The files a sample guest build provides. */
export interface GuestFiles {
  kernel: string;
  vmlinux: string;
  initrd: string;
}
