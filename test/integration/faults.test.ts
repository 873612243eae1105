/**
 * Faults against a real QEMU: QEMU killed in the middle of a continue, a step, a 1 MiB read
 * and a stack trace; its gdbstub silent (QEMU SIGSTOPped) while the guest is stopped and while
 * it runs; the guest triple-faulting, being reset and powering off; the console socket
 * closing. Every DAP request pending at the fault is answered within 5 s, the Debug Console
 * says what happened, the session ends (terminated) or goes on, and nothing is left: no
 * QEMU, no index worker, no descriptor on the vmlinux, no socket directory.
 *
 * The adapter runs in this process, as in VS Code's extension host (see support/inproc.ts).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { DebugProtocol } from '@vscode/debugprotocol';
import type { GuestPaths } from '../../src/guest/build';
import { RESTART_GUEST_REQUEST } from '../../src/adapter/events';
import { RESULTS, requireBuilt, sampleGuest } from '../support/env';
import { adapterModules, baseline, launchInline, leftovers, monitorCommand, reap, type Answer, type Baseline, type Launched } from '../support/inproc';

/** The bound on an answer after a fault. */
const ANSWER_MS = 5000;

/** x86_64 code put at the PC: load an IDT of limit 0 (lidt [rip+2]), then ud2: #UD, #GP, #DF, triple fault. */
const TRIPLE_FAULT = Buffer.from([0x0f, 0x01, 0x1d, 0x02, 0x00, 0x00, 0x00, 0x0f, 0x0b, ...new Array<number>(10).fill(0)]);
/**
 * x86_64 code put at the PC: write SLP_EN with sleep type S5 to the PIIX4's ACPI PM1a
 * control port (0x604, where SeaBIOS puts it), as a kernel's ACPI power-off does; then spin.
 */
const POWER_OFF = Buffer.from([0x66, 0xb8, 0x00, 0x20, 0x66, 0xba, 0x04, 0x06, 0x66, 0xef, 0xeb, 0xfe]);

type Mods = ReturnType<typeof adapterModules>;

/** Each pending request's outcome, for test-results/faults.json. */
const outcomes: Array<{ fault: string; command: string; success: boolean; msAfterFault: number; message?: string }> = [];

/** Wait for every answer; each must come within ANSWER_MS of the fault. */
async function answeredInTime(pending: Promise<Answer>[], faultAt: number, what: string): Promise<Answer[]> {
  const timeout = new Promise<'late'>((r) => setTimeout(() => r('late'), ANSWER_MS + 1000).unref());
  const got = await Promise.race([Promise.all(pending), timeout]);
  assert.notEqual(got, 'late', `${what}: a pending request had no answer within ${ANSWER_MS + 1000} ms`);
  for (const a of got as Answer[]) {
    outcomes.push({ fault: what, command: a.res.command, success: a.res.success, msAfterFault: a.at - faultAt, message: a.res.message });
    assert.ok(a.at - faultAt <= ANSWER_MS, `${what}: '${a.res.command}' was answered ${a.at - faultAt} ms after the fault`);
  }
  return got as Answer[];
}

async function endsCleanly(l: Launched, mods: Mods, vmlinux: string, before: Baseline, says: RegExp): Promise<void> {
  await l.dc.event('terminated', ANSWER_MS, true);
  assert.match(l.dc.output, says);
  outcomes.push({ fault: 'ended, saying', command: 'output', success: true, msAfterFault: 0, message: l.dc.output.split('\n').find((line) => says.test(line)) });
  assert.deepEqual(await leftovers(l, mods, vmlinux, before), []);
  // A request after the end is answered at once, with why.
  const late = await l.dc.send('stackTrace', { threadId: 1 });
  assert.equal(late.res.success, false);
  assert.match(late.res.message ?? '', /session has ended/);
  assert.ok(late.ms < 100);
  assert.equal((await l.dc.send('disconnect', { terminateDebuggee: true })).res.success, true);
}

async function pcOf(l: Launched): Promise<string> {
  const st = await l.dc.request<DebugProtocol.StackTraceResponse['body']>('stackTrace', { threadId: l.stop.body.threadId ?? 1, levels: 1 });
  const ip = st.stackFrames[0].instructionPointerReference;
  assert.ok(ip, 'no instruction pointer in the top frame');
  return ip;
}

/** Put `code` at the PC, drop the breakpoints and run it. */
async function runCode(l: Launched, code: Buffer): Promise<void> {
  await l.dc.request('writeMemory', { memoryReference: await pcOf(l), data: code.toString('base64') });
  await l.dc.request('setFunctionBreakpoints', { breakpoints: [] });
  await l.dc.request('continue', { threadId: l.stop.body.threadId ?? 1 });
}

describe('faults against a real QEMU', function () {
  this.timeout(180_000);
  let g: GuestPaths;
  let mods: Mods;
  let base: Baseline;
  let l: Launched | undefined;

  before(function () {
    requireBuilt(this);
    g = sampleGuest(this);
    mods = adapterModules();
  });
  beforeEach(() => (base = baseline(mods, g.vmlinux)));
  afterEach(() => {
    l?.dc.adapter.dispose();
    reap(l?.pid);
    l = undefined;
  });
  after(() => {
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'faults.json'), JSON.stringify(outcomes, null, 2));
  });

  const killed = /QEMU exited \(killed by SIGKILL\)/;
  /**
   * Guest RAM in a backend of the user's own (anonymous memory), so memory is read through the
   * gdbstub only: the faults below are the stub's. With the launch's memfd those reads come
   * from RAM and succeed, QEMU stopped or not (guestram.test.ts checks that path).
   */
  const stubOnly = { qemuArgs: ['-object', 'memory-backend-ram,id=qkd-test-ram,size=512M', '-machine', 'memory-backend=qkd-test-ram'] };

  it('QEMU killed in the middle of a continue (a breakpoint update waiting on the running guest)', async function () {
    l = await launchInline(this, mods, g, 'entry');
    await l.dc.request('continue', { threadId: 1 });
    await new Promise((r) => setTimeout(r, 300));
    // Setting a breakpoint halts the running guest for a moment: it waits for a stop that never comes.
    const pending = [l.dc.send('setFunctionBreakpoints', { breakpoints: [{ name: 'kernel_clone' }] })];
    const faultAt = Date.now();
    process.kill(l.pid, 'SIGKILL');
    await answeredInTime(pending, faultAt, 'continue');
    await endsCleanly(l, mods, g.vmlinux, base, killed);
  });

  it('QEMU killed in the middle of a step', async function () {
    l = await launchInline(this, mods, g, ['kernel_clone']);
    const tid = l.stop.body.threadId ?? 1;
    const pending = [l.dc.send('next', { threadId: tid }), l.dc.send('threads')];
    const faultAt = Date.now();
    process.kill(l.pid, 'SIGKILL');
    await answeredInTime(pending, faultAt, 'step');
    await endsCleanly(l, mods, g.vmlinux, base, killed);
  });

  it('QEMU killed in the middle of a 1 MiB readMemory', async function () {
    l = await launchInline(this, mods, g, 'entry', stubOnly);
    const pending = [l.dc.send('readMemory', { memoryReference: 'phys:0x1000000', count: 1 << 20 })];
    await new Promise((r) => setTimeout(r, 15));
    const faultAt = Date.now();
    process.kill(l.pid, 'SIGKILL');
    const [read] = await answeredInTime(pending, faultAt, 'readMemory');
    // Killed part way: the read fails rather than passing off a short read as the memory.
    assert.equal(read.res.success, false, 'the 1 MiB read finished before QEMU was killed');
    await endsCleanly(l, mods, g.vmlinux, base, killed);
  });

  it('QEMU killed in the middle of a stackTrace', async function () {
    l = await launchInline(this, mods, g, ['kernel_clone']);
    const tid = l.stop.body.threadId ?? 1;
    const pending = [l.dc.send('stackTrace', { threadId: tid }), l.dc.send('evaluate', { expression: 'init_task.comm', context: 'watch' })];
    const faultAt = Date.now();
    process.kill(l.pid, 'SIGKILL');
    await answeredInTime(pending, faultAt, 'stackTrace');
    await endsCleanly(l, mods, g.vmlinux, base, killed);
  });

  it('a silent gdbstub (QEMU SIGSTOPped) while stopped and while running; a restart and a closed console socket; then SIGKILL', async function () {
    l = await launchInline(this, mods, g, ['kernel_clone'], stubOnly);
    const { dc, pid } = l;
    const tid = l.stop.body.threadId ?? 1;
    // Stopped: requests that need the stub fail in time and say why; the session goes on.
    process.kill(pid, 'SIGSTOP');
    let faultAt = Date.now();
    const stopped = await answeredInTime(
      [dc.send('stackTrace', { threadId: tid }), dc.send('readMemory', { memoryReference: 'phys:0x2000000', count: 4096 }), dc.send('evaluate', { expression: 'jiffies', context: 'watch' })],
      faultAt,
      'silent while stopped',
    );
    assert.ok(stopped.some((a) => !a.res.success), 'every request succeeded with QEMU stopped');
    assert.match(dc.output, /gdbstub is not answering/);
    process.kill(pid, 'SIGCONT');
    await new Promise((r) => setTimeout(r, 300));
    assert.match(dc.output, /gdbstub answers again/);
    // What was read during the silence (a stack cut short) is dropped, and the client told to read again.
    assert.ok(dc.events.some((e) => e.event === 'invalidated'), 'no invalidated event once the stub answered again');
    const again = await dc.request<DebugProtocol.ReadMemoryResponse['body']>('readMemory', { memoryReference: 'phys:0x2000000', count: 4096 });
    assert.equal(Buffer.from(again?.data ?? '', 'base64').length, 4096);
    assert.ok((await dc.request<DebugProtocol.StackTraceResponse['body']>('stackTrace', { threadId: tid })).stackFrames.length > 1);

    // Running: a pause gets its answer; that no stop follows is said; SIGCONT brings the stop.
    await dc.request('setFunctionBreakpoints', { breakpoints: [] });
    await dc.request('continue', { threadId: tid });
    await new Promise((r) => setTimeout(r, 200));
    process.kill(pid, 'SIGSTOP');
    const outputBefore = dc.output.length;
    faultAt = Date.now();
    await answeredInTime([dc.send('pause', { threadId: tid })], faultAt, 'pause while silent');
    const paused = dc.event<DebugProtocol.StoppedEvent>('stopped', 20_000);
    await new Promise((r) => setTimeout(r, 4000));
    assert.match(dc.output.slice(outputBefore), /no stop within \d+ ms of an interrupt/);
    process.kill(pid, 'SIGCONT');
    assert.equal((await paused).body.reason, 'pause');

    // A restart through the adapter: the guest reboots and the session goes on.
    const restarted = await dc.send(RESTART_GUEST_REQUEST);
    assert.equal(restarted.res.success, true, restarted.res.message);

    // The console socket: a client connects, types and vanishes; QEMU and the session go on.
    const con = net.createConnection(l.consoleSocket);
    await new Promise<void>((resolve, reject) => con.once('connect', resolve).once('error', reject));
    con.write('\n');
    await new Promise((r) => setTimeout(r, 200));
    con.destroy();
    await new Promise((r) => setTimeout(r, 300));
    const pausedAgain = dc.event<DebugProtocol.StoppedEvent>('stopped', 10_000);
    await dc.request('pause', { threadId: tid });
    await pausedAgain;
    assert.ok((await dc.request<DebugProtocol.ThreadsResponse['body']>('threads')).threads.length >= 1);
    assert.equal(dc.events.some((e) => e.event === 'terminated'), false, 'the session ended');

    // The end: silent again, requests waiting on it, then QEMU is killed.
    process.kill(pid, 'SIGSTOP');
    const pending = [dc.send('readMemory', { memoryReference: 'phys:0x3000000', count: 1 << 20 }), dc.send('stackTrace', { threadId: tid })];
    await new Promise((r) => setTimeout(r, 500));
    faultAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await answeredInTime(pending, faultAt, 'killed while silent');
    await endsCleanly(l, mods, g.vmlinux, base, killed);
  });

  it('the guest triple-faults (an IDT of limit 0, then ud2)', async function () {
    l = await launchInline(this, mods, g, ['kernel_clone']);
    await runCode(l, TRIPLE_FAULT);
    await endsCleanly(l, mods, g.vmlinux, base, /QEMU exited \(exit code 0\): the guest reset the machine \(a reboot, or a triple fault\)/);
  });

  it('the guest powers off (ACPI S5 through the PM1a control port)', async function () {
    l = await launchInline(this, mods, g, ['kernel_clone']);
    await runCode(l, POWER_OFF);
    await endsCleanly(l, mods, g.vmlinux, base, /QEMU exited \(exit code 0\): the guest powered off/);
  });

  it("the machine is reset from QEMU's monitor (system_reset under -no-reboot)", async function () {
    l = await launchInline(this, mods, g, 'entry');
    await l.dc.request('continue', { threadId: 1 });
    await new Promise((r) => setTimeout(r, 300));
    await monitorCommand(l.monitor, 'system_reset');
    await endsCleanly(l, mods, g.vmlinux, base, /the machine was reset from the monitor/);
  });
});
