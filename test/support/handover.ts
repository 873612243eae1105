/**
 * A sample guest in a QEMU the test starts itself (so a session can attach to it), and a
 * switch in front of its gdbstub that lends the one connection QEMU allows to gdb at a stop
 * of our session and gives it back afterwards: gdb then sees the very stop we see.
 *
 * QEMU's gdbstub serves one client at a time; a second connection waits in the listen
 * backlog until the first closes, and closing ours would end our session. So the switch
 * holds the only connection to QEMU and forwards either our adapter's bytes or gdb's.
 * QEMU keeps per-connection state that a second client would change under our adapter; the
 * switch keeps gdb from changing what matters (see gdbPacket): `?` would drop every
 * breakpoint, `multiprocess+` would change the thread ids QEMU sends, and `D` would resume.
 * Both run in ack mode (QEMU 7.2 has no QStartNoAckMode), so acks pass through as they are.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { getArch } from '../../src/arch';
import type { GuestPaths } from '../../src/guest/build';
import { READY_LINE } from '../../src/guest/initramfs';
import { GuestConsole, waitForConsole } from '../../src/qemu/console';
import { guardedArgv } from '../../src/qemu/ownership';
import { gdbFor, gdbOutput } from './gdb';

/** Line of a `/* qkd-test: NAME *\/` marker in a source file (as modules.test.ts finds them). */
export function markerLine(file: string, marker: string): number {
  const i = fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(`qkd-test: ${marker}`));
  if (i < 0) throw new Error(`marker '${marker}' not in ${file}`);
  return i + 1;
}

/**
 * A regex source for `text` as QEMU's console log may hold it. QEMU 7.2 logs a serial
 * character again each time it retries sending it to a console socket whose reader lags
 * (EAGAIN): on a loaded host any character can appear twice ("qkkd_sample").
 */
export function logged(text: string): string {
  return [...text].map((c) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') + '+').join('');
}

/** `actual`, cut from the console log, is `expected` up to those repeats. */
export function assertLogged(actual: string, expected: string): void {
  if (!new RegExp(`^${logged(expected)}$`).test(actual)) throw new Error(`console log shows ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
}

/** The console text from `from` (a length of vm.live()) once `until` matches it, or a timeout error. */
export async function waitForLive(vm: OwnGuest, until: RegExp, ms: number, from = 0): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const text = vm.live().slice(from);
    if (until.test(text)) return text;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${until} on the console; it shows:\n${text.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface OwnGuest {
  qemu: ChildProcess;
  /** Private folder with the sockets; gdb runs here too (lx-symbols also scans its cwd for .ko files). */
  dir: string;
  gdbSocket: string;
  consoleLog: string;
  console: GuestConsole;
  /** Milliseconds from spawning QEMU to the guest's ready line. */
  bootMs: number;
  /**
   * What the console socket has carried since the ready line. Each character is there once;
   * QEMU's log can hold one twice (see logged()), so text a test parses comes from here.
   */
  live(): string;
  kill(): Promise<void>;
}

/**
 * Boot `guest` under TCG, running (no -S), with its gdbstub and console on unix sockets, and
 * wait for the init's ready line. `append` is added to the kernel command line; `smp` vCPUs.
 */
export async function startOwnGuest(guest: GuestPaths, consoleLog: string, append = '', timeoutMs = 300_000, smp = 1): Promise<OwnGuest> {
  const arch = getArch(guest.arch);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-own-'));
  const gdbSocket = path.join(dir, 'gdb.sock');
  const consoleSocket = path.join(dir, 'console.sock');
  fs.mkdirSync(path.dirname(consoleLog), { recursive: true });
  fs.rmSync(consoleLog, { force: true });
  // The machine our launches use (src/qemu/argv.ts), minus QMP and the monitor.
  const argv = [
    arch.qemuBinary,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    ...arch.machineArgs,
    '-accel',
    'tcg',
    '-m',
    '512M',
    // Guest RAM in a memfd, as the README tells users who attach: the debugger reads it directly.
    '-object',
    'memory-backend-memfd,id=ram0,size=512M,share=on',
    '-machine',
    'memory-backend=ram0',
    '-smp',
    String(smp),
    '-kernel',
    guest.kernel,
    '-initrd',
    guest.initrd,
    '-append',
    // nokaslr unless the caller says (`kaslr`, for a guest that randomizes its base).
    `console=${arch.console} ${/(^|\s)(no)?kaslr(\s|$)/.test(append) ? '' : 'nokaslr '}${append}`.replace(/\s+/g, ' ').trim(),
    '-chardev',
    `socket,id=con,path=${consoleSocket},server=on,wait=off,logfile=${consoleLog}`,
    '-serial',
    'chardev:con',
    '-chardev',
    `socket,id=gdb,path=${gdbSocket},server=on,wait=off`,
    '-gdb',
    'chardev:gdb',
  ];
  const t0 = Date.now();
  // setpriv's death signal: a test runner killed mid-test takes its QEMU along.
  const qemu = spawn('setpriv', guardedArgv(argv), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-4096)));
  const kill = async (): Promise<void> => {
    if (qemu.exitCode === null && qemu.signalCode === null) {
      const gone = new Promise((r) => qemu.once('exit', r));
      qemu.kill('SIGKILL');
      await gone;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const exited = new Promise<never>((_, reject) => qemu.once('exit', (code, sig) => reject(new Error(`QEMU exited (${sig ?? code}) before the ready line: ${stderr.trim()}`))));
    await Promise.race([waitForConsole(consoleLog, READY_LINE, timeoutMs), exited]);
    const bootMs = Date.now() - t0;
    const con = new GuestConsole(consoleLog, consoleSocket);
    const chunks: Buffer[] = [];
    con.on('live', (d: Buffer) => chunks.push(d));
    con.start();
    if (!(await con.ready())) throw new Error(`cannot connect to the console socket ${consoleSocket}`);
    return { qemu, dir, gdbSocket, consoleLog, console: con, bootMs, kill, live: () => Buffer.concat(chunks).toString('utf8') };
  } catch (e) {
    await kill();
    throw e;
  }
}

const checksum = (body: string): string => (Buffer.from(body, 'latin1').reduce((a, b) => (a + b) & 0xff, 0) + 0x100).toString(16).slice(1);
const frame = (body: string): string => `$${body}#${checksum(body)}`;

/**
 * What gdb may not send to the guest we debug: resuming, detaching (QEMU resumes the VM on
 * `D`), killing, and writing registers, memory or breakpoints. gdb is only a reader here.
 */
const REFUSED = /^(?:[cCsSkRGPMXZzD]|vCont;|vKill|vRun|vAttach)/;

/** The switch in front of QEMU's gdbstub (see the file comment). */
export class RspSwitch {
  private upstream?: net.Socket;
  private adapter?: net.Socket;
  private gdb?: net.Socket;
  private lent = false;
  /** Our adapter's bytes sent while gdb has the connection, forwarded when it comes back. */
  private held: Buffer[] = [];
  private lastTraffic = Date.now();
  private fromGdbText = '';
  /** gdb's acknowledgement of a reply the switch made itself: QEMU must not see it. */
  private swallowAck = false;
  private gdbClosed?: Promise<void>;
  /** What QEMU sent before our adapter connected (the stop reply of the pause), dropped. */
  beforeAdapter = '';
  /** The tail of what QEMU sent our adapter, and the last stop reply in it (for gdb's `?`). */
  private recent = '';
  private lastStop?: string;
  /** Every packet gdb sent, with what became of it, for failure messages. */
  readonly gdbPackets: string[] = [];

  private constructor(
    readonly adapterPath: string,
    readonly gdbPath: string,
    private readonly stubPath: string,
    private readonly servers: net.Server[],
  ) {}

  static async open(stubPath: string, dir: string): Promise<RspSwitch> {
    const listen = (p: string): Promise<net.Server> =>
      new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.once('error', reject);
        srv.listen(p, () => resolve(srv));
      });
    const [forAdapter, forGdb] = await Promise.all([listen(path.join(dir, 'switch-adapter.sock')), listen(path.join(dir, 'switch-gdb.sock'))]);
    const sw = new RspSwitch(path.join(dir, 'switch-adapter.sock'), path.join(dir, 'switch-gdb.sock'), stubPath, [forAdapter, forGdb]);
    await sw.connectUpstream();
    forAdapter.on('connection', (s) => sw.adapterConnected(s));
    forGdb.on('connection', (s) => sw.gdbConnected(s));
    return sw;
  }

  /**
   * Connecting pauses the guest (QEMU stops the VM for a new client) and QEMU reports that
   * pause as a stop reply (T02) no one asked for. It is acked and dropped here, so our
   * adapter then attaches to a paused guest, as in attach.test.ts, where QEMU runs with -S.
   */
  private async connectUpstream(): Promise<void> {
    const up = net.createConnection({ path: this.stubPath });
    this.upstream = up;
    await new Promise<void>((resolve, reject) => {
      up.once('connect', resolve);
      up.once('error', reject);
    });
    up.on('data', (d: Buffer) => {
      this.lastTraffic = Date.now();
      if (this.lent) return void this.gdb?.write(d);
      this.recent = (this.recent + d.toString('latin1')).slice(-512);
      for (const m of this.recent.matchAll(/\$(T[0-9a-f]{2}[^#$]*)#/g)) this.lastStop = m[1];
      if (this.adapter) this.adapter.write(d);
      else {
        this.beforeAdapter += d.toString('latin1');
        up.write('+');
      }
    });
    up.on('error', () => this.adapter?.destroy());
    up.on('close', () => this.adapter?.destroy());
    // The pause's stop reply comes at once; the adapter must not connect before it is dropped.
    const deadline = Date.now() + 2000;
    while (!/#[0-9a-f]{2}/.test(this.beforeAdapter) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  private adapterConnected(s: net.Socket): void {
    if (this.adapter) return void s.destroy();
    this.adapter = s;
    const up = this.upstream as net.Socket;
    s.on('data', (d: Buffer) => {
      this.lastTraffic = Date.now();
      if (this.lent) this.held.push(d);
      else up.write(d);
    });
    s.on('close', () => up.destroy());
    s.on('error', () => up.destroy());
  }

  private gdbConnected(s: net.Socket): void {
    if (!this.lent || this.gdb) return void s.destroy();
    this.gdb = s;
    this.gdbClosed = new Promise((resolve) => s.on('close', () => resolve()));
    s.on('error', () => s.destroy());
    s.on('data', (d: Buffer) => this.fromGdb(d));
  }

  private fromGdb(d: Buffer): void {
    this.fromGdbText += d.toString('latin1');
    for (;;) {
      const t = this.fromGdbText;
      if (!t) return;
      if (t[0] === '$') {
        // Binary data escapes '#', so the first one ends the packet.
        const hash = t.indexOf('#');
        if (hash < 0 || t.length < hash + 3) return;
        this.fromGdbText = t.slice(hash + 3);
        this.gdbPacket(t.slice(1, hash));
        continue;
      }
      this.fromGdbText = t.slice(1);
      if (t[0] === '+' || t[0] === '-') {
        if (this.swallowAck) this.swallowAck = false;
        else this.upstream?.write(t[0]);
      }
      // Anything else (0x03, an interrupt) is dropped: the guest is stopped already, and
      // QEMU would answer it with a stop reply nobody asked for.
    }
  }

  private gdbPacket(body: string): void {
    const reply = (text: string, why: string): void => {
      this.gdbPackets.push(`${body} -> ${why}`);
      this.swallowAck = true;
      this.gdb?.write('+' + frame(text));
    };
    if (body.startsWith('D')) return reply('OK', 'answered OK here (QEMU would resume the guest)');
    // QEMU takes `?` for a new debugger's first word and removes every breakpoint (ours
    // too) before it answers; the stop our adapter last saw is the same answer.
    if (body === '?' && this.lastStop) return reply(this.lastStop, 'answered here with the last stop reply (QEMU would remove all breakpoints)');
    if (REFUSED.test(body)) return reply('E01', 'refused here');
    // QEMU keeps multiprocess mode once a client asks for it, and would then send our
    // adapter (which declines it) `p1.1` thread ids: gdb does without it.
    let sent = body.startsWith('qSupported') ? body.replace(/multiprocess\+/, 'multiprocess-') : body;
    // gdb asks for "any thread" (Hgp0.0), which QEMU takes for the first vCPU, then believes
    // the general thread is the one the `?` reply names: with the guest stopped on another
    // vCPU, gdb would show the first one's registers as the stopped one's. The stub's "any"
    // is the stopped thread here, which keeps gdb's belief true.
    const stopThread = /thread:(?:p[0-9a-f]+\.)?([0-9a-f]+);/.exec(this.lastStop ?? '')?.[1];
    if (/^Hg(?:p0\.0|0)$/.test(body) && stopThread) sent = `Hg${stopThread}`;
    this.gdbPackets.push(sent);
    this.upstream?.write(frame(sent));
  }

  /** Once our adapter has been quiet for `quietMs`, give the connection to the next gdb. */
  async lend(quietMs = 300): Promise<void> {
    if (!this.adapter) throw new Error('no session is connected through the switch');
    while (Date.now() - this.lastTraffic < quietMs) await new Promise((r) => setTimeout(r, 50));
    this.lent = true;
  }

  /** After gdb has gone (or is sent away), our adapter has the connection again, with what it sent meanwhile. */
  async reclaim(): Promise<{ heldBytes: number }> {
    this.gdb?.end();
    await Promise.race([this.gdbClosed, new Promise((r) => setTimeout(r, 2000))]);
    this.gdb?.destroy();
    this.gdb = undefined;
    this.gdbClosed = undefined;
    this.fromGdbText = '';
    this.swallowAck = false;
    this.lent = false;
    const heldBytes = this.held.reduce((n, b) => n + b.length, 0);
    for (const b of this.held.splice(0)) this.upstream?.write(b);
    return { heldBytes };
  }

  close(): void {
    this.gdb?.destroy();
    this.adapter?.destroy();
    this.upstream?.destroy();
    for (const s of this.servers) s.close();
  }
}

/**
 * Run gdb (gdb-multiarch off x86_64) in batch mode on `vmlinux` in `cwd`, with `commands`
 * as -ex arguments; its output, stdout and stderr interleaved as written. Killed after `timeoutMs`.
 */
export function runGdb(arch: string, vmlinux: string, cwd: string, commands: string[], timeoutMs = 300_000): Promise<string> {
  // The kernel's scripts come from a cache outside any auto-load safe path.
  const args = ['-q', '-nx', '-batch', '-iex', 'set auto-load safe-path /', '-iex', 'set pagination off', '-iex', 'set width 0', '-iex', 'set confirm off', ...commands.flatMap((c) => ['-ex', c]), vmlinux];
  // One pipe for both streams, so that an error lands between the markers of its command.
  return gdbOutput(spawn('/bin/sh', ['-c', 'exec "$0" "$@" 2>&1', gdbFor(arch), ...args], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }), timeoutMs);
}
