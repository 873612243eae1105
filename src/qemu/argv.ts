/** Pure QEMU command-line builder: the same inputs always give the same argv. */
import { ResolvedLaunch } from './config';
import { RAM_BACKEND_ID } from './guestram';

export interface RunPaths {
  /** Private (0700) directory holding the sockets. */
  runDir: string;
  gdbSocket: string;
  consoleSocket: string;
  qmpSocket: string;
  /** QEMU's human monitor (HMP) in readline mode, for a terminal in the editor. */
  monitorSocket: string;
}

/** Option values in QEMU's `key=value,...` syntax escape a comma by doubling it. */
export function qemuOptValue(s: string): string {
  return s.replace(/,/g, ',,');
}

export function runPaths(runDir: string): RunPaths {
  return {
    runDir,
    gdbSocket: `${runDir}/gdb.sock`,
    consoleSocket: `${runDir}/console.sock`,
    qmpSocket: `${runDir}/qmp.sock`,
    monitorSocket: `${runDir}/monitor.sock`,
  };
}

/**
 * The gdbstub, the console and the human monitor listen on unix sockets in the private dir
 * (never `-s`, which listens on every interface). QMP is a client socket: QEMU connects to
 * our listener, so its connection is the readiness signal and no polling is needed. It comes
 * last so the other chardevs already listen when it connects.
 */
export function buildQemuArgv(cfg: ResolvedLaunch, paths: RunPaths, accel: 'kvm' | 'tcg'): string[] {
  const argv = [
    cfg.qemuPath,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    ...(accel === 'kvm' ? withoutCpu(cfg.arch.machineArgs) : cfg.arch.machineArgs),
    '-accel',
    accel,
  ];
  if (accel === 'kvm') argv.push('-cpu', 'host');
  argv.push('-m', cfg.memory, '-smp', String(cfg.smp), '-kernel', cfg.kernel);
  if (!choosesMemory(cfg.qemuArgs)) argv.push('-object', `memory-backend-memfd,id=${RAM_BACKEND_ID},size=${backendSize(cfg.memory)},share=on`, '-machine', `memory-backend=${RAM_BACKEND_ID}`);
  if (cfg.initrd) argv.push('-initrd', cfg.initrd);
  argv.push('-append', cfg.append);
  argv.push(
    '-chardev',
    `socket,id=qkd-console,path=${qemuOptValue(paths.consoleSocket)},server=on,wait=off,logfile=${qemuOptValue(cfg.consoleLog)},logappend=on`,
    '-serial',
    'chardev:qkd-console',
    '-chardev',
    `socket,id=qkd-gdb,path=${qemuOptValue(paths.gdbSocket)},server=on,wait=off`,
    '-gdb',
    'chardev:qkd-gdb',
    // A second monitor, in readline mode: a terminal on it gets QEMU's own line editing,
    // history and completion, while QMP stays ours alone.
    '-chardev',
    `socket,id=qkd-hmp,path=${qemuOptValue(paths.monitorSocket)},server=on,wait=off`,
    '-mon',
    'chardev=qkd-hmp,mode=readline',
    '-chardev',
    `socket,id=qkd-qmp,path=${qemuOptValue(paths.qmpSocket)},server=off`,
    '-mon',
    'chardev=qkd-qmp,mode=control',
    '-S',
    ...cfg.qemuArgs,
  );
  return argv;
}

/**
 * Whether the user's own QEMU arguments arrange guest RAM (a backend, NUMA nodes, a mem-path):
 * theirs win, and memory is read through the gdbstub only.
 */
function choosesMemory(args: readonly string[]): boolean {
  return args.some((a) => a === '-numa' || a === '-mem-path' || a.includes('memory-backend'));
}

/** `-m` takes a bare number as MiB; an object's size takes it as bytes. */
function backendSize(memory: string): string {
  const m = memory.trim();
  return /^\d+(\.\d+)?$/.test(m) ? `${m}M` : m;
}

/**
 * An arch's machine arguments without its `-cpu` model: the model (cortex-a57 on aarch64) is
 * for TCG, and under KVM the guest gets the host's CPU instead, once, not overridden by a
 * second `-cpu`.
 */
function withoutCpu(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-cpu') i++;
    else out.push(args[i]);
  }
  return out;
}

/** Quote an argv for a shell, for logs and "copy command line". */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
