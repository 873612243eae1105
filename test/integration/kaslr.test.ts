/**
 * KASLR found by itself, on each arch's sample guest booted with `kaslr` (x86_64 and arm64
 * randomize their base; riscv 6.1 cannot, and must come out at 0). The offset the adapter
 * finds must equal the guest's own: `_text` in /proc/kallsyms (read as root through the
 * console) minus `_text` in vmlinux. Then a function breakpoint is verified at the moved
 * address and hits there, with the frame, the source line, a global and a backtrace right.
 *
 * Two ways in: attaching to a QEMU started here with `-gdb`, and a launch with `"kaslr":
 * "auto"`, where breakpoints are pending with the reason until the offset is known.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { GuestPaths } from '../../src/guest/build';
import { GuestConsole, waitForConsole } from '../../src/qemu/console';
import { artifact, requireBuilt, sampleGuest } from '../support/env';
import { startOwnGuest, type OwnGuest } from '../support/handover';
import { nmAddress } from '../support/oracle';
import { TestSession } from '../support/session';
import { lineOf } from '../support/source';

const ARCHES = ['x86_64', 'aarch64', 'riscv64'];

const KALLSYMS_TEXT = /kallsyms: ([0-9a-f]{16}) \w _text/;

/** Ask for `_text` as the running kernel has it (/proc/kallsyms, as root); read it with readText. */
function askText(con: GuestConsole, log: string): number {
  const from = fs.statSync(log).size;
  con.write("grep -w _text /proc/kallsyms | sed 's/^/kallsyms: /'\n");
  return from;
}

async function readText(log: string, from: number): Promise<bigint> {
  const text = await waitForConsole(log, KALLSYMS_TEXT, 60_000, from);
  const m = KALLSYMS_TEXT.exec(text);
  assert.ok(m, text);
  return BigInt('0x' + m[1]);
}

function offsetFromLog(output: string[]): bigint {
  const line = output.find((o) => o.includes('KASLR: vmlinux runs at offset'));
  assert.ok(line, `no KASLR line in the Debug Console: ${output.slice(-8).join('')}`);
  // eslint-disable-next-line no-console
  console.log(`      ${line.trim()}`);
  const m = /offset 0x([0-9a-f]+)/.exec(line);
  return BigInt('0x' + (m as RegExpExecArray)[1]);
}

for (const arch of ARCHES) {
  describe(`${arch}: KASLR found by itself`, function () {
    this.timeout(600_000);
    let guest: GuestPaths;

    before(function () {
      requireBuilt(this);
      guest = sampleGuest(this, arch);
    });

    describe('attach to a running guest booted with kaslr', () => {
      let vm: OwnGuest | undefined;
      let s: TestSession | undefined;
      let offset = 0n;

      before(async function () {
        vm = await startOwnGuest(guest, artifact(this, 'console.log'), 'kaslr');
      });

      after(async () => {
        await s?.stop();
        await vm?.console.close();
        await vm?.kill();
      });

      it("finds the offset at the attach stop, equal to the guest's own", async function () {
        const own = vm as OwnGuest;
        const text = await readText(own.consoleLog, askText(own.console, own.consoleLog));
        s = new TestSession(this);
        await s.start();
        const initialized = s.dc.waitForEvent('initialized');
        await s.dc.attachRequest({ target: own.gdbSocket, vmlinux: guest.vmlinux, arch, rspLog: artifact(this, 'rsp.log') } as DebugProtocol.AttachRequestArguments);
        await initialized;
        // Its RAM is a memfd (startOwnGuest): found behind the gdbstub's socket and read directly.
        assert.ok(s.output.some((o) => o.includes("Guest memory is read directly from QEMU's RAM")), s.output.join(''));
        // riscv64 before 6.6 cannot move: nothing to find.
        if (arch === 'riscv64') assert.ok(s.output.some((o) => o.includes('KASLR: this kernel cannot move')), s.output.join(''));
        offset = arch === 'riscv64' ? 0n : offsetFromLog(s.output);
        assert.equal(`0x${offset.toString(16)}`, `0x${(text - nmAddress(guest.vmlinux, '_text')).toString(16)}`);
        // The kernel described from its memory: the running build is vmlinux's, with the command line it booted with.
        const buildId = /Build ID: ([0-9a-f]+)/.exec(execFileSync('readelf', ['-n', guest.vmlinux], { encoding: 'utf8' }))?.[1];
        const info = s.output.find((o) => o.startsWith('Kernel: '));
        assert.ok(info, s.output.slice(-6).join(''));
        assert.match(info, new RegExp(`^Kernel: Linux 6\\.1\\.\\d+, build ID ${buildId} \\(vmlinux's\\), 1 CPU online, `));
        assert.match(info, offset === 0n ? /at its link addresses/ : new RegExp(`KASLR offset 0x${offset.toString(16)}`));
        assert.match(info, /command line: console=\S+ kaslr/);
        if (arch === 'riscv64') assert.equal(offset, 0n, 'riscv 6.1 has no KASLR');
      });

      it('a function breakpoint is verified where the kernel has it, and hits there with the frame and source line', async () => {
        const sess = s as TestSession;
        const want = nmAddress(guest.vmlinux, 'kernel_clone') + offset;
        const [bp] = (await sess.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] })).body.breakpoints;
        assert.equal(bp.verified, true, bp.message);
        assert.equal(bp.instructionReference, `0x${want.toString(16)}`);
        await sess.dc.configurationDoneRequest();
        const stopped = sess.dc.waitForEvent('stopped', 120_000);
        (vm as OwnGuest).console.write('ls /\n');
        const stop = (await stopped) as DebugProtocol.StoppedEvent;
        const frames = (await sess.dc.stackTraceRequest({ threadId: stop.body.threadId ?? 1 })).body.stackFrames;
        assert.equal(frames[0].name, 'kernel_clone');
        assert.equal(BigInt(frames[0].instructionPointerReference as string), want);
        assert.match(frames[0].source?.path ?? '', /kernel\/fork\.c$/);
        // A global through its DWARF location (DW_OP_addr, moved with the kernel) and a walk to the syscall.
        const banner = (await sess.dc.evaluateRequest({ expression: 'linux_banner', frameId: frames[0].id, context: 'watch' })).body.result;
        assert.match(banner, /Linux version 6\.1/);
        assert.ok(frames.length > 2, frames.map((f) => f.name).join(' < '));
        assert.ok(frames.every((f) => !/^0x/.test(f.name)), `a frame without a name: ${frames.map((f) => f.name).join(' < ')}`);
        await sess.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
        await sess.dc.continueRequest({ threadId: stop.body.threadId ?? 1 });
      });
    });

    describe('launch with "kaslr": "auto"', () => {
      let s: TestSession | undefined;
      let con: GuestConsole | undefined;
      let log = '';
      let tid = 1;

      after(async () => {
        await con?.close();
        await s?.stop();
      });

      it('an early breakpoint from boot stops in start_kernel where it runs: x86 placed when the decompressor has relocated the kernel, arm64 when kaslr_early_init returns, riscv (which cannot move before 6.6) at its link address', async function () {
        s = new TestSession(this);
        await s.start();
        const changed: DebugProtocol.Breakpoint[] = [];
        s.dc.on('breakpoint', (e: DebugProtocol.BreakpointEvent) => changed.push(e.body.breakpoint));
        const initialized = s.dc.waitForEvent('initialized');
        await s.dc.launchRequest(s.launchArgs({ arch, kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd, kaslr: 'auto' }));
        await initialized;
        const [bp] = (await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'start_kernel' }] })).body.breakpoints;
        assert.equal(bp.verified, arch === 'riscv64', bp.message);
        if (arch === 'riscv64') {
          assert.ok(s.output.some((o) => o.includes('KASLR: this kernel cannot move')), s.output.join(''));
          assert.equal(BigInt(bp.instructionReference as string), nmAddress(guest.vmlinux, 'start_kernel'));
          const stopped = s.dc.waitForEvent('stopped', 300_000);
          await s.dc.configurationDoneRequest();
          const stop = (await stopped) as DebugProtocol.StoppedEvent;
          tid = stop.body.threadId ?? 1;
          assert.deepEqual(stop.body.hitBreakpointIds, [bp.id]);
          assert.equal((await s.dc.stackTraceRequest({ threadId: tid })).body.stackFrames[0].name, 'start_kernel');
          await s.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
          await s.dc.continueRequest({ threadId: tid });
        } else {
          // x86_64: placed once extract_kernel returns the relocated kernel; arm64: when kaslr_early_init returns the offset.
          assert.match(bp.message ?? '', arch === 'x86_64' ? /placed as soon as the kernel is decompressed, before it runs/ : /placed as soon as the kernel chooses its KASLR offset/);
          const stopped = s.dc.waitForEvent('stopped', 300_000);
          await s.dc.configurationDoneRequest();
          const stop = (await stopped) as DebugProtocol.StoppedEvent;
          tid = stop.body.threadId ?? 1;
          assert.deepEqual(stop.body.hitBreakpointIds, [bp.id]);
          const offset = offsetFromLog(s.output);
          const top = (await s.dc.stackTraceRequest({ threadId: tid })).body.stackFrames[0];
          assert.equal(top.name, 'start_kernel');
          assert.equal(BigInt(top.instructionPointerReference as string), nmAddress(guest.vmlinux, 'start_kernel') + offset);
          const now = changed.filter((b) => b.id === bp.id).pop();
          assert.ok(now?.verified, JSON.stringify(changed));
          assert.equal(now.instructionReference, top.instructionPointerReference);
          await s.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
          await s.dc.continueRequest({ threadId: tid });
        }
        ({ con, log } = await s.readyConsole());
      });

      it("once found (a pause, where nothing stopped before), kernel_clone's function and line breakpoints are verified where it runs and both hit; the offset is the guest's own", async () => {
        const sess = s as TestSession;
        // The first stop in kernel mode finds it. A pause that lands in user mode under arm64's
        // KPTI can't see the kernel (the trampoline's tables are loaded): pause again, as a user would.
        let pause: DebugProtocol.StoppedEvent | undefined;
        const found = (): boolean => arch === 'riscv64' || sess.output.some((o) => o.includes('KASLR: vmlinux runs at offset'));
        for (let i = 0; i < 8 && (!pause || !found()); i++) {
          if (pause) await sess.dc.continueRequest({ threadId: pause.body.threadId ?? 1 });
          const paused = sess.dc.waitForEvent('stopped');
          await sess.dc.pauseRequest({ threadId: 1 });
          pause = (await paused) as DebugProtocol.StoppedEvent;
        }
        assert.ok(pause);
        const offset = arch === 'riscv64' ? 0n : offsetFromLog(sess.output);
        const want = nmAddress(guest.vmlinux, 'kernel_clone') + offset;
        const [bp] = (await sess.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] })).body.breakpoints;
        assert.equal(bp.verified, true, bp.message);
        assert.equal(bp.instructionReference, `0x${want.toString(16)}`);
        // A line breakpoint in kernel_clone too: both hit, the function's first.
        const fork = path.join(guest.source, 'kernel', 'fork.c');
        const line = lineOf(fork, 'u64 clone_flags = args->flags;', lineOf(fork, 'pid_t kernel_clone(struct kernel_clone_args *args)'));
        const [lbp] = (await sess.dc.setBreakpointsRequest({ source: { path: fork }, breakpoints: [{ line }] })).body.breakpoints;
        assert.equal(lbp.verified, true, lbp.message);
        await sess.dc.continueRequest({ threadId: pause.body.threadId ?? 1 });
        // The shell forks for the grep: kernel_clone stops it before it prints anything.
        const stopping = sess.dc.waitForEvent('stopped', 120_000);
        const from = askText(con as GuestConsole, log);
        const stopped = (await stopping) as DebugProtocol.StoppedEvent;
        const top = (await sess.dc.stackTraceRequest({ threadId: stopped.body.threadId ?? 1 })).body.stackFrames[0];
        assert.equal(top.name, 'kernel_clone');
        assert.equal(BigInt(top.instructionPointerReference as string), want);
        assert.deepEqual(stopped.body.hitBreakpointIds, [bp.id]);
        await sess.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
        const atLine = sess.dc.waitForEvent('stopped', 60_000);
        await sess.dc.continueRequest({ threadId: stopped.body.threadId ?? 1 });
        const lineStop = (await atLine) as DebugProtocol.StoppedEvent;
        assert.deepEqual(lineStop.body.hitBreakpointIds, [lbp.id]);
        const lineTop = (await sess.dc.stackTraceRequest({ threadId: lineStop.body.threadId ?? 1 })).body.stackFrames[0];
        assert.equal(lineTop.name, 'kernel_clone');
        assert.equal(lineTop.line, line);
        await sess.dc.setBreakpointsRequest({ source: { path: fork }, breakpoints: [] });
        await sess.dc.continueRequest({ threadId: lineStop.body.threadId ?? 1 });
        const own = await readText(log, from);
        assert.equal(`0x${offset.toString(16)}`, `0x${(own - nmAddress(guest.vmlinux, '_text')).toString(16)}`);
      });
    });
  });
}
