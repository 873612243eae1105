/**
 * A running QEMU: the process, its private socket directory, QMP and the console log.
 * Owning an instance is separate from debugging it: the gdbstub socket is only a path here.
 *
 * QEMU never outlives its owner: it runs under `setpriv --pdeathsig SIGKILL`, so the kernel
 * kills it when this process dies for any reason (even SIGKILL), with a guard for a death
 * before the signal was armed (ownership.ts), and a process 'exit' hook kills any instance
 * still alive, or still starting, on a normal exit.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { errors } from '../util/errors';
import { buildQemuArgv, RunPaths, runPaths } from './argv';
import { openBackendMemfd, parseMtreeRam, RAM_BACKEND_ID, RamFile } from './guestram';
import { ResolvedLaunch } from './config';
import { guardedArgv, makeOwnedDir, sweepStaleRunDirs } from './ownership';
import { QmpClient, QmpEvent } from './qmp';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Why QEMU shut down, from QMP's SHUTDOWN event (its `reason` is QEMU's ShutdownCause). */
export interface ShutdownInfo {
  guest: boolean;
  reason: string;
}

const live = new Set<QemuInstance>();
/** Children spawned whose QMP greeting has not come yet: not instances, but ours to kill. */
const spawning = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const q of live) q.killNow();
    for (const c of spawning) c.kill('SIGKILL');
  });
}

/** Where socket directories go: XDG_RUNTIME_DIR when it exists, else the temp dir. */
export function runDirBase(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg && fs.existsSync(xdg) ? xdg : os.tmpdir();
}

/**
 * A private directory for sockets: 0700, short enough for unix socket paths (108 bytes),
 * recording this process as its owner. Directories left by owners that died without
 * cleaning up (SIGKILL) are swept first.
 */
export function makeRunDir(): string {
  const base = runDirBase();
  sweepStaleRunDirs(base);
  return makeOwnedDir(base);
}

export const QMP_READY_TIMEOUT_MS = 20_000;
/** Quiet time after the firmware's own reset before -no-reboot's action is restored. */
const FIRMWARE_SETTLE_MS = 500;

export class QemuInstance extends EventEmitter {
  private exitInfo?: ExitInfo;
  private stderr = '';
  private startupStderr = '';
  /**
   * Where this session's output begins in the console log. QEMU appends to the log, so a
   * path reused across sessions keeps the earlier ones, which a console must not replay.
   */
  consoleLogStart = 0;
  /** Set while a restart waits for the firmware's own reset (see resetGuest). */
  private pendingRestore?: () => void;
  /** Why QEMU shut down, once it has said (the exit status alone does not tell a reset from a power-off). */
  shutdown?: ShutdownInfo;
  readonly exited: Promise<ExitInfo>;

  private constructor(
    readonly argv: string[],
    readonly paths: RunPaths,
    readonly consoleLog: string,
    private readonly child: ChildProcess,
    readonly qmp: QmpClient,
  ) {
    super();
    qmp.on('event', (e: QmpEvent) => {
      if (e.event === 'SHUTDOWN') this.shutdown = { guest: e.data?.guest === true, reason: String(e.data?.reason ?? 'unknown') };
    });
    this.exited = new Promise((resolve) => {
      const done = (info: ExitInfo): void => {
        live.delete(this);
        this.ram?.close();
        this.exitInfo = info;
        fs.rmSync(this.paths.runDir, { recursive: true, force: true });
        this.emit('exit', info);
        resolve(info);
      };
      if (child.exitCode !== null || child.signalCode !== null) done({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => done({ code, signal }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Guest RAM from the memory backend the launch gave QEMU, once opened; closed when QEMU exits. */
  ram: RamFile | undefined;

  /**
   * Open the guest's RAM backend for direct reads, given HMP `info mtree -f` (which says where
   * each guest-physical range is in it). undefined when QEMU has no such backend (the user's
   * qemuArgs arranged memory) or it can't be opened; reads then all go through the gdbstub.
   */
  openRam(mtree: string): RamFile | undefined {
    if (this.ram || this.pid === undefined || !this.isRunning) return this.ram;
    const ranges = parseMtreeRam(mtree, RAM_BACKEND_ID);
    const fd = ranges.length ? openBackendMemfd(this.pid, ranges) : undefined;
    if (fd !== undefined) this.ram = new RamFile(fd, ranges);
    return this.ram;
  }

  get isRunning(): boolean {
    return this.exitInfo === undefined;
  }

  /**
   * Start QEMU paused (-S) and wait until it has connected to our QMP listener and sent its
   * greeting. Fails with QEMU's own stderr when it exits first.
   */
  static async start(cfg: ResolvedLaunch, accel: 'kvm' | 'tcg'): Promise<QemuInstance> {
    installExitHook();
    const runDir = makeRunDir();
    const paths = runPaths(runDir);
    fs.mkdirSync(path.dirname(cfg.consoleLog), { recursive: true });
    const consoleLogStart = fileSize(cfg.consoleLog);
    const argv = buildQemuArgv(cfg, paths, accel);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(paths.qmpSocket, resolve);
    });
    const child = spawn('setpriv', guardedArgv(argv), { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    spawning.add(child);
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (stderr = (stderr + d).slice(-8192)));
    child.stdout?.resume();
    try {
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        const timer = setTimeout(() => reject(errors.qemuStartTimeout(QMP_READY_TIMEOUT_MS, stderr.trim())), QMP_READY_TIMEOUT_MS);
        server.once('connection', (s) => {
          clearTimeout(timer);
          resolve(s);
        });
        child.once('error', (e) => {
          clearTimeout(timer);
          reject(errors.qemuExited(`could not start '${argv[0]}': ${e.message}`));
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          // Let stderr drain before reporting it.
          setImmediate(() => reject(errors.qemuExited(`${signal ? `killed by ${signal}` : `exit code ${code}`} before it was ready${stderr.trim() ? `: ${stderr.trim()}` : ''}`)));
        });
      });
      const qmp = new QmpClient(socket);
      try {
        await qmp.greeting;
        await qmp.execute('qmp_capabilities');
      } catch (e) {
        // QEMU connects to QMP before it checks every option: an exit now is QEMU refusing the
        // command line, and its stderr says why better than the closed socket does.
        const exit = await new Promise<string | undefined>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve(child.signalCode ? `killed by ${child.signalCode}` : `exit code ${child.exitCode}`);
          const t = setTimeout(() => resolve(undefined), 1000);
          child.once('exit', (code, signal) => {
            clearTimeout(t);
            resolve(signal ? `killed by ${signal}` : `exit code ${code}`);
          });
        });
        if (exit === undefined) throw e;
        await new Promise((r) => setImmediate(r));
        throw errors.qemuExited(`${exit} before it was ready${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
      }
      const inst = new QemuInstance(argv, paths, cfg.consoleLog, child, qmp);
      inst.stderr = stderr;
      inst.startupStderr = stderr;
      inst.consoleLogStart = consoleLogStart;
      let partial = '';
      child.stderr?.on('data', (d: string) => {
        inst.stderr = (inst.stderr + d).slice(-8192);
        const lines = (partial + d).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) inst.emit('stderr', line);
      });
      live.add(inst);
      return inst;
    } catch (e) {
      child.kill('SIGKILL');
      fs.rmSync(runDir, { recursive: true, force: true });
      throw e;
    } finally {
      spawning.delete(child);
      server.close();
    }
  }

  /** What QEMU printed on stderr lately (for error reports). */
  get recentStderr(): string {
    return this.stderr.trim();
  }

  /** Every line QEMU writes to stderr: first those written before start() returned, then live ones. */
  onStderr(listener: (line: string) => void): void {
    for (const line of this.startupStderr.split('\n')) if (line.trim()) listener(line);
    this.on('stderr', listener);
  }

  /**
   * Reboot the guest as a reset button would, and resolve once QEMU has reset it.
   *
   * QEMU runs with -no-reboot so that a guest reboot or triple fault ends the session, and
   * that makes system_reset a shutdown too; so the reboot action is 'reset' around it. It
   * must stay so a little longer: SeaBIOS cannot redo POST from its shadowed RAM after a
   * warm reset and answers with a hard reset of its own (port 0xcf9), which 'shutdown'
   * would turn into QEMU exiting. The action goes back to 'shutdown' at that firmware reset
   * (QEMU has decided by the time it reports it), or after `firmwareGraceMs` for firmware
   * that does not do one.
   */
  async resetGuest(timeoutMs = 10_000, firmwareGraceMs = 10_000): Promise<void> {
    if (!this.isRunning || this.qmp.isClosed) throw errors.qemuExited('cannot restart the guest: QEMU is gone');
    // A restart within another's grace period takes over from it.
    this.pendingRestore?.();
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    let hostSeen = false;
    let hostDone: () => void = () => undefined;
    const hostReset = new Promise<void>((resolve) => (hostDone = resolve));
    const hostTimeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(errors.qemuExited(`QEMU did not reset the guest within ${timeoutMs} ms`)), timeoutMs);
    });
    hostTimeout.catch(() => undefined);
    const finish = (restoreAction: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      this.qmp.off('event', onEvent);
      if (this.pendingRestore === supersede) this.pendingRestore = undefined;
      // A restart superseded while it waits for its own reset must not wait forever.
      hostDone();
      if (restoreAction && this.isRunning && !this.qmp.isClosed) void this.qmp.execute('set-action', { reboot: 'shutdown' }).catch(() => undefined);
    };
    const supersede = (): void => finish(false);
    // One listener from before the command on, so that a firmware reset arriving in the same
    // read as ours cannot be missed.
    const onEvent = (e: QmpEvent): void => {
      if (e.event !== 'RESET') return;
      if (!hostSeen && e.data?.guest !== true) {
        hostSeen = true;
        clearTimeout(timer);
        timer = setTimeout(() => finish(true), firmwareGraceMs);
        timer.unref();
        hostDone();
      } else if (hostSeen && e.data?.guest === true) {
        // SeaBIOS may reset more than once in a row (ACPI, then the keyboard controller):
        // restore only once the resets have settled, or the next one would end QEMU.
        clearTimeout(timer);
        timer = setTimeout(() => finish(true), FIRMWARE_SETTLE_MS);
        timer.unref();
      }
    };
    this.qmp.on('event', onEvent);
    this.pendingRestore = supersede;
    try {
      // Raced with the timeout: a QEMU that is stopped (SIGSTOP) or hung never answers.
      await Promise.race([this.qmp.execute('set-action', { reboot: 'reset' }), hostTimeout]);
      await Promise.race([this.qmp.execute('system_reset'), hostTimeout]);
      // The reset itself happens in QEMU's main loop after the command returns.
      await Promise.race([hostReset, hostTimeout]);
    } catch (e) {
      finish(true);
      throw e;
    }
  }

  /** One sentence on how QEMU ended: its exit status and, when QMP said, why it shut down. */
  describeExit(info: ExitInfo): string {
    const status = info.signal ? `killed by ${info.signal}` : `exit code ${info.code}`;
    const why = info.signal ? undefined : this.shutdown && SHUTDOWN_REASONS[this.shutdown.reason];
    return `QEMU exited (${status})${why ? `: ${why}` : ''}.`;
  }

  /** Ask QEMU to quit through QMP; kill it if it has not exited within `graceMs`. */
  async stop(graceMs = 3000): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    const timer = setTimeout(() => this.killNow(), graceMs);
    try {
      if (!this.qmp.isClosed) await Promise.race([this.qmp.execute('quit').catch(() => undefined), this.exited]);
      else this.killNow();
      return await this.exited;
    } finally {
      clearTimeout(timer);
      this.qmp.close();
    }
  }

  /** SIGKILL, synchronously: for exit hooks where nothing async can run. */
  killNow(): void {
    if (this.exitInfo) return;
    try {
      this.child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** QEMU's ShutdownCause values, as the user would put them. */
const SHUTDOWN_REASONS: Record<string, string> = {
  'guest-shutdown': 'the guest powered off',
  'guest-reset': 'the guest reset the machine (a reboot, or a triple fault); QEMU runs with -no-reboot, so a reset ends it',
  'guest-panic': 'the guest panicked',
  'host-qmp-quit': "QEMU was told to quit (the monitor's 'quit')",
  'host-qmp-system-reset': "the machine was reset from the monitor (system_reset); QEMU runs with -no-reboot, so a reset ends it",
  'host-signal': 'QEMU was asked to end by a signal',
  'host-ui': 'QEMU was closed from its user interface',
  'host-error': 'QEMU stopped on an error',
};

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}
