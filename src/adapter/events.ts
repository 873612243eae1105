/**
 * Custom DAP events and requests this adapter adds to the protocol. The extension imports
 * this file, so it holds names and types only: nothing that would pull the engine into
 * dist/extension.js.
 */
import type { KernelTask } from '../kernel/tasks';

/** Where the guest console can be read and typed into, and where QEMU's human monitor listens. */
export const CONSOLE_EVENT = 'qemuKernel.console';
export interface ConsoleEventBody {
  log: string;
  /** Where this session's output begins in `log` (QEMU appends to a log used before). */
  logStart?: number;
  socket: string;
  pid?: number;
  /** QEMU's human monitor (HMP, readline mode): a unix socket in the session's private 0700 dir. */
  monitor?: string;
}

/**
 * The files this session's kernel logs decode with: the extension hands them to the
 * kernel-log language server, so an Oops in a console log links to this kernel's source.
 */
export const SYMBOLS_EVENT = 'qemuKernel.symbols';
export interface SymbolsEventBody {
  vmlinux: string;
  /** Searched for `name.ko` in order: modulePaths, the sample modules' folder, the build tree. */
  moduleDirs: string[];
}

/** The guest's lifecycle, for the status bar. `detail` is the function for 'stopped'. */
export const STATE_EVENT = 'qemuKernel.state';
export type GuestState = 'building' | 'booting' | 'running' | 'stopped' | 'exited';
export interface StateEventBody {
  state: GuestState;
  detail?: string;
}

/** A line for the extension's log output channel, at a level the user can filter on. */
export const LOG_EVENT = 'qemuKernel.log';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];
export interface LogEventBody {
  level: LogLevel;
  message: string;
}

/** Reboot the guest (QMP system_reset) without ending the session; a stopped guest is continued. */
export const RESTART_GUEST_REQUEST = 'qemuKernel.restartGuest';
export interface RestartGuestResponseBody {
  /** True when the guest was stopped and the adapter continued it after the reset. */
  continued: boolean;
}

/** The QEMU command line of a launched session, as the process runs it. */
export const COMMAND_LINE_REQUEST = 'qemuKernel.commandLine';
export interface CommandLineResponseBody {
  argv: string[];
  /** `argv` quoted for a POSIX shell. */
  commandLine: string;
  pid?: number;
}

/** The kernel log read from guest memory (the printk ring), as dmesg prints it; the guest is stopped briefly if it runs. */
export const KERNEL_LOG_REQUEST = 'qemuKernel.kernelLog';
export interface KernelLogResponseBody {
  /** `[    1.234567] text` lines. */
  text: string;
  records: number;
  /** Sequence number of the oldest record still in the ring (earlier ones were overwritten). */
  firstSeq?: number;
}

/** The kernel's tasks at this stop, as lx-ps walks them; the guest is stopped briefly if it runs. */
export const TASKS_REQUEST = 'qemuKernel.tasks';
/** /proc's state letters in words, for tooltips and the view. */
export const STATE_WORDS: Record<string, string> = {
  R: 'running',
  S: 'sleeping',
  D: 'disk sleep',
  T: 'stopped',
  t: 'tracing stop',
  X: 'dead',
  Z: 'zombie',
  P: 'parked',
  I: 'idle',
};

/** A task as the tasks request sends it: the kernel layer's row, its address in hex. */
export type TaskInfo = Omit<KernelTask, 'addr'> & {
  /** task_struct address, hex. */
  address: string;
  /** The vCPU (DAP thread id) running it now. */
  vcpu?: number;
};
export interface TasksArguments {
  /** Answer only from a stopped guest: while it runs, say so instead of pausing it for the list. */
  ifStopped?: boolean;
}
export interface TasksResponseBody {
  /** Set when `ifStopped` was asked and the guest runs: no list was read. */
  running?: boolean;
  tasks: TaskInfo[];
  /** Each vCPU with the Linux CPU it is and its `current`. */
  cpus: Array<{ thread: number; cpu?: number; current?: string; how: string }>;
  /** Milliseconds the reading took. */
  ms: number;
}

/** Show a task's stack in the Call Stack (the Kernel Tasks view's pick): a stopped event focuses its thread. */
export const SHOW_TASK_REQUEST = 'qemuKernel.showTask';

/** Walk the page tables for an address (or an expression's value) as a vCPU's MMU would. */
export const TRANSLATE_REQUEST = 'qemuKernel.translate';
export interface TranslateArguments {
  /** An address, or any C expression whose value is one (`&init_task`, `$current`, `$sp`). */
  expression: string;
  /** The vCPU (thread) whose page tables to walk; default the one that stopped. */
  threadId?: number;
}
export interface TranslateResponseBody {
  virtual: string;
  physical?: string;
  pageSize?: string;
  /** 'kernel' when the vCPU's own tables (PTI's user copy) don't map it and the kernel's did. */
  root: 'vcpu' | 'kernel';
  levels: Array<{ name: string; index: number; entryAddress: string; entry: string }>;
  fault?: string;
  /** The walk as lines, one per level, for a terminal or a document. */
  text: string;
}
