/**
 * What the extension's commands and feedback rest on, through the real adapter and a real
 * QEMU: the restart and command-line requests, QEMU's monitor socket, progress from the
 * sample-guest step to the first stop, state events and leveled log events.
 */
import { DebugProtocol } from '@vscode/debugprotocol';
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LOG_LEVELS, type ConsoleEventBody, type LogEventBody, type StateEventBody } from '../../src/adapter/events';
import { shellQuote } from '../../src/qemu/argv';
import { READY_LINE } from '../../src/guest/initramfs';
import { GuestConsole, waitForConsole } from '../../src/qemu/console';
import { MonitorConnection } from '../../src/qemu/monitor';
import { artifact, requireBuilt, sampleGuest, waitForExit } from '../support/env';
import { TestSession } from '../support/session';

type Seen = { name: string; body: Record<string, unknown> };

const WATCHED = ['progressStart', 'progressUpdate', 'progressEnd', 'stopped', 'continued', 'qemuKernel.log', 'qemuKernel.state', 'qemuKernel.console'];

function banners(text: string): number {
  return (text.match(/Linux version 6\.1/g) ?? []).length;
}

/** Resolves with everything the monitor printed once `re` matches it. */
function monitorUntil(conn: MonitorConnection, re: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${re} not seen from the monitor within ${ms} ms; got ${JSON.stringify(text)}`)), ms);
    const onData = (d: string): void => {
      text += d;
      if (re.test(text)) {
        clearTimeout(timer);
        conn.off('data', onData);
        resolve(text);
      }
    };
    conn.on('data', onData);
  });
}

describe('commands: restart, monitor, command line, progress, state and log events', function () {
  this.timeout(240_000);
  let s: TestSession;
  const seen: Seen[] = [];
  let firstStop: DebugProtocol.StoppedEvent;
  let consoleInfo: ConsoleEventBody;
  let consoleLog: string;

  before(async function () {
    requireBuilt(this);
    sampleGuest(this);
    s = new TestSession(this);
    for (const name of WATCHED) s.dc.on(name, (e: DebugProtocol.Event) => seen.push({ name, body: (e.body ?? {}) as Record<string, unknown> }));
    await s.dc.start();
    await s.dc.initializeRequest({ adapterID: 'qemu-kernel', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path', supportsProgressReporting: true });
    // A CPU flag TCG lacks makes QEMU warn on stderr at startup: the warn-level log line.
    const args = s.launchArgs({ sampleGuest: true, qemuArgs: ['-cpu', 'qemu64,+vmx'] });
    consoleLog = String((args as { consoleLog: string }).consoleLog);
    firstStop = (await s.launchToBreak(args, ['kernel_clone'])).stop;
    consoleInfo = (await s.consoleEvent) as ConsoleEventBody;
  });
  after(async () => s?.stop());

  it('stops at kernel_clone', async () => {
    assert.equal(firstStop.body.reason, 'breakpoint');
    assert.equal((await s.topFrame(firstStop.body.threadId ?? 1)).name, 'kernel_clone');
  });

  it('progress starts once, walks guest → QEMU → boot, and ends before the first stop', () => {
    const upToStop = seen.slice(0, seen.findIndex((e) => e.name === 'stopped') + 1);
    const progress = upToStop.filter((e) => e.name.startsWith('progress'));
    assert.equal(progress[0]?.name, 'progressStart');
    assert.equal(progress.filter((e) => e.name === 'progressStart').length, 1);
    assert.equal(progress.filter((e) => e.name === 'progressEnd').length, 1);
    assert.equal(progress[progress.length - 1].name, 'progressEnd', 'progressEnd is the last progress event before the stop');
    assert.ok(new Set(progress.map((e) => e.body.progressId)).size === 1, 'one progress id throughout');
    assert.equal(progress[0].body.title, 'QEMU kernel');
    const messages = progress.map((e) => String(e.body.message ?? ''));
    const at = (prefix: string): number => messages.findIndex((m) => m.startsWith(prefix));
    const phases = ['Preparing the sample guest', 'Sample x86_64 guest is cached', 'Checking the accelerator', 'Starting QEMU (TCG)', 'Connecting to the gdbstub', 'Waiting for breakpoints', 'Booting the kernel'];
    const order = phases.map(at);
    assert.ok(order.every((i) => i >= 0), `every phase is reported: ${JSON.stringify(messages)}`);
    assert.deepEqual([...order].sort((a, b) => a - b), order, `phases in order: ${JSON.stringify(messages)}`);
    // kernel_clone has an ELF symbol, so nothing waits for the function index: it is left
    // for the first stop rather than built alongside the boot (see IndexGate).
    assert.ok(!messages.some((m) => m.includes('· indexing symbols')), `the function index waits for the first stop: ${JSON.stringify(messages)}`);
    // Nothing is left spinning after the stop.
    assert.equal(seen.slice(upToStop.length).filter((e) => e.name.startsWith('progress')).length, 0);
  });

  it('log events carry levels: command line and accelerator at info, QEMU stderr at warn, state at debug', () => {
    const logs = seen.filter((e) => e.name === 'qemuKernel.log').map((e) => e.body as unknown as LogEventBody);
    assert.ok(logs.length > 5);
    for (const l of logs) {
      assert.ok(LOG_LEVELS.includes(l.level), `level ${l.level}`);
      assert.equal(typeof l.message, 'string');
      assert.notEqual(l.message.trim(), '');
    }
    const find = (level: string, re: RegExp): LogEventBody | undefined => logs.find((l) => l.level === level && re.test(l.message));
    assert.ok(find('info', /^QEMU: \S*qemu-system-x86_64 .*-gdb chardev:qkd-gdb/), 'the QEMU command line at info');
    assert.ok(find('info', /^Accelerator: /), 'the accelerator choice at info');
    assert.ok(find('info', /^Sample x86_64 guest is cached/), 'the guest build step at info');
    assert.ok(find('warn', /^QEMU: .*TCG doesn't support requested feature/), 'QEMU stderr at warn');
    assert.ok(find('debug', /^Guest stopped: kernel_clone$/), 'state changes at debug');
  });

  it('state events go building → booting → running → stopped at kernel_clone, the stop before DAP says stopped', () => {
    const firstStopAt = seen.findIndex((e) => e.name === 'stopped');
    const states = seen.slice(0, firstStopAt).filter((e) => e.name === 'qemuKernel.state').map((e) => e.body as unknown as StateEventBody);
    assert.deepEqual(
      states.map((x) => x.state),
      ['building', 'booting', 'running', 'stopped'],
    );
    assert.equal(states[3].detail, 'kernel_clone');
    assert.match(String(states[1].detail), new RegExp(`^QEMU pid ${consoleInfo.pid}$`));
  });

  it('the command-line request returns the argv QEMU really runs, quoted exactly for a shell', async () => {
    const r = (await s.dc.customRequest('qemuKernel.commandLine')).body as { argv: string[]; commandLine: string; pid: number };
    assert.equal(r.pid, consoleInfo.pid);
    const cmdline = fs.readFileSync(`/proc/${r.pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    assert.deepEqual(r.argv, cmdline);
    assert.equal(r.commandLine, shellQuote(cmdline));
    // A shell splits the quoted line back into exactly those words.
    const words = spawnSync('sh', ['-c', `printf '%s\\0' ${r.commandLine}`], { encoding: 'utf8' }).stdout.split('\0').slice(0, -1);
    assert.deepEqual(words, cmdline);
  });

  it("QEMU's human monitor listens in the private 0700 run dir and answers info status", async () => {
    const sock = String(consoleInfo.monitor);
    assert.equal(path.dirname(sock), path.dirname(consoleInfo.socket), 'beside the console socket');
    assert.equal(fs.statSync(path.dirname(sock)).mode & 0o777, 0o700);
    assert.ok(fs.statSync(sock).isSocket());
    const conn = new MonitorConnection(sock);
    const banner = monitorUntil(conn, /\(qemu\) /, 10_000);
    await conn.connect();
    try {
      assert.match(await banner, /QEMU \d+\.\d+\.\d+.* monitor - type 'help'/);
      const status = monitorUntil(conn, /VM status: [^\r\n]*\r\n/, 10_000);
      // Enter is a CR, as a terminal sends it; QEMU's readline echoes and edits the line itself.
      conn.write('info status\r');
      // Stopped at the breakpoint, the VM is paused for the debugger; lines end in CR LF.
      assert.match(await status, /\r\nVM status: paused \(debug\)\r\n/);
    } finally {
      conn.close();
    }
  });

  it('restart reboots a stopped guest: it is continued, boots again and hits kernel_clone again', async () => {
    assert.equal(banners(fs.readFileSync(consoleLog, 'utf8')), 1);
    const before = seen.length;
    const stopped = s.dc.waitForEvent('stopped', 120_000) as Promise<DebugProtocol.StoppedEvent>;
    const r = (await s.dc.customRequest('qemuKernel.restartGuest')).body as { continued: boolean };
    assert.equal(r.continued, true);
    const stop = await stopped;
    assert.equal(stop.body.reason, 'breakpoint');
    assert.deepEqual(stop.body.hitBreakpointIds, firstStop.body.hitBreakpointIds, 'the same breakpoint, still inserted');
    assert.equal((await s.topFrame(stop.body.threadId ?? 1)).name, 'kernel_clone');
    // The guest is stopped, so the log is complete up to the stop: the second boot's banner is in it.
    assert.equal(banners(fs.readFileSync(consoleLog, 'utf8')), 2);
    const after = seen.slice(before).map((e) => e.name);
    assert.ok(after.indexOf('continued') >= 0 && after.indexOf('continued') < after.indexOf('stopped'));
  });

  it('restart resets a running guest without a continue', async () => {
    await s.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
    const stopNow = seen.filter((e) => e.name === 'stopped').length;
    await s.dc.continueRequest({ threadId: firstStop.body.threadId ?? 1 });
    const r = (await s.dc.customRequest('qemuKernel.restartGuest')).body as { continued: boolean };
    assert.equal(r.continued, false);
    const text = await waitForConsole(consoleLog, /Linux version 6\.1[\s\S]*Linux version 6\.1[\s\S]*Linux version 6\.1[\s\S]*Run \/init as init process/, 120_000);
    assert.equal(banners(text), 3);
    assert.equal(seen.filter((e) => e.name === 'stopped').length, stopNow, 'no stop without breakpoints');
  });

  it('after restarts, a reboot from inside the guest still ends QEMU and the session (-no-reboot is back)', async () => {
    await waitForConsole(consoleLog, new RegExp(`(Linux version 6\\.1[\\s\\S]*){3}${READY_LINE}`), 120_000);
    const terminated = s.dc.waitForEvent('terminated', 60_000);
    const con = new GuestConsole(consoleInfo.log, consoleInfo.socket);
    con.start();
    try {
      assert.equal(await con.ready(), true);
      con.write('reboot -f\n');
      await terminated;
    } finally {
      await con.close();
    }
    assert.equal(await waitForExit(Number(consoleInfo.pid), 10_000), true);
    assert.equal(banners(fs.readFileSync(consoleLog, 'utf8')), 3, 'no fourth boot');
    const states = seen.filter((e) => e.name === 'qemuKernel.state').map((e) => (e.body as unknown as StateEventBody).state);
    assert.equal(states[states.length - 1], 'exited');
  });
});

describe('commands: an attach session owns no QEMU', function () {
  this.timeout(60_000);
  let qemu: ChildProcess | undefined;
  let dir: string | undefined;
  let s: TestSession | undefined;

  after(async () => {
    await s?.stop();
    qemu?.kill('SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses restart and command line, naming why', async function () {
    requireBuilt(this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-attach-'));
    fs.chmodSync(dir, 0o700);
    const gdb = path.join(dir, 'gdb.sock');
    qemu = spawn('qemu-system-x86_64', ['-nodefaults', '-display', 'none', '-accel', 'tcg', '-gdb', `unix:${gdb},server=on,wait=off`, '-S'], { stdio: 'ignore' });
    const deadline = Date.now() + 20_000;
    while (!fs.existsSync(gdb)) {
      if (Date.now() > deadline || qemu.exitCode !== null) throw new Error(`QEMU never opened ${gdb}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    s = new TestSession(this);
    await s.start();
    const initialized = s.dc.waitForEvent('initialized');
    await s.dc.attachRequest({ target: gdb, stopOnAttach: true, rspLog: artifact(this, 'rsp.log') } as DebugProtocol.AttachRequestArguments);
    await initialized;
    for (const command of ['qemuKernel.restartGuest', 'qemuKernel.commandLine']) {
      await assert.rejects(s.dc.customRequest(command), (e: Error) => {
        assert.match(e.message, /attached to a gdbstub and owns no QEMU/);
        return true;
      });
    }
  });
});
