/** F5 on the sample guest: boot under QEMU, stop at kernel_clone, inspect, run on, end. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { READY_LINE } from '../../src/guest/initramfs';
import { waitForConsole } from '../../src/qemu/console';
import { requireBuilt, sampleGuest, waitForExit } from '../support/env';
import { nmAddress, objdumpBytes } from '../support/oracle';
import { TestSession } from '../support/session';

describe('launch the sample guest and stop at kernel_clone', function () {
  this.timeout(240_000);
  let s: TestSession;
  let vmlinux: string;
  let kernelClone: bigint;
  let stopThread: number;
  let pc: bigint;

  before(async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    vmlinux = g.vmlinux;
    kernelClone = nmAddress(vmlinux, 'kernel_clone');
    s = new TestSession(this);
    await s.start();
    // accel "auto": on this host /dev/kvm exists but hangs guests; the probe must fall back.
    const { stop, bps } = await s.launchToBreak(s.launchArgs({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, accel: 'auto', smp: 2 }), ['kernel_clone', 'no_such_function_xyz']);
    assert.equal(bps[0].verified, true);
    assert.equal(bps[0].instructionReference, `0x${kernelClone.toString(16)}`);
    assert.equal(bps[1].verified, false);
    assert.match(bps[1].message ?? '', /No function 'no_such_function_xyz'/);
    assert.equal(stop.body.reason, 'breakpoint');
    assert.deepEqual(stop.body.hitBreakpointIds, [bps[0].id]);
    stopThread = stop.body.threadId as number;
  });
  after(async () => s?.stop());

  it('reports how it chose the accelerator', () => {
    const line = s.output.find((o) => o.startsWith('Accelerator:'));
    assert.ok(line, s.output.join(''));
    assert.match(line, /KVM|TCG|kvm|tcg/);
  });

  it('shows each vCPU as a thread, each with its own registers', async () => {
    const threads = (await s.dc.threadsRequest()).body.threads;
    assert.deepEqual(threads, [
      { id: 1, name: 'CPU 0' },
      { id: 2, name: 'CPU 1' },
    ]);
    assert.equal(stopThread, 1, 'the boot CPU runs rest_init');
    // The second vCPU has not been started by the kernel yet: it still waits in real mode.
    const other = await s.topFrame(2);
    assert.ok(BigInt(other.instructionPointerReference as string) < 0x100000n, other.instructionPointerReference);
  });

  it('names the top frame kernel_clone, with its instruction pointer', async () => {
    const top = await s.topFrame(stopThread);
    assert.equal(top.name, 'kernel_clone');
    assert.equal(top.instructionPointerReference, `0x${kernelClone.toString(16)}`);
    pc = BigInt(top.instructionPointerReference as string);
  });

  it('gives the frame its source: kernel/fork.c on the line of kernel_clone\'s definition, as gdb names it', async () => {
    const top = await s.topFrame(stopThread);
    assert.equal(top.name, 'kernel_clone');
    const file = top.source?.path ?? '';
    assert.ok(file.endsWith('/kernel/fork.c') && fs.existsSync(file), `a local fork.c: ${file}`);
    const text = fs.readFileSync(file, 'utf8').split('\n');
    // gdb: "Breakpoint 1 at …: file kernel/fork.c, line N", N being the function's opening brace.
    assert.match(text[top.line - 2], /^pid_t kernel_clone\(struct kernel_clone_args \*args\)/);
    assert.equal(text[top.line - 1], '{');
  });

  it('has a Registers scope whose rip is the ELF address of kernel_clone', async () => {
    const top = await s.topFrame(stopThread);
    const regs = await s.registers(top.id);
    assert.equal(BigInt(regs.get('rip') as string), kernelClone);
    assert.ok(regs.has('rsp') && regs.has('eflags') && regs.has('cr3'));
    // A kernel stack pointer in the direct map or the kernel image.
    assert.ok(BigInt(regs.get('rsp') as string) >= 0xffff800000000000n);
  });

  it('reads the bytes at the PC that vmlinux has in .text, live: ftrace has already patched the entry', async () => {
    const read = async (addr: bigint, count: number): Promise<Buffer> => {
      const mem = await s.dc.customRequest('readMemory', { memoryReference: `0x${addr.toString(16)}`, count });
      const body = mem.body as { address: string; data: string };
      assert.equal(BigInt(body.address), addr);
      return Buffer.from(body.data, 'base64');
    };
    const live = await read(pc, 64);
    const file = objdumpBytes(vmlinux, pc, 64);
    // The kernel is built with `call __fentry__` at each function entry; ftrace_init turns
    // those into 5-byte NOPs at boot, long before kernel_clone first runs.
    assert.equal(file.subarray(0, 5)[0], 0xe8, 'vmlinux has call __fentry__');
    assert.equal(live.subarray(0, 5).toString('hex'), '0f1f440000', 'the guest has the NOP ftrace wrote');
    assert.deepEqual(live.subarray(5), file.subarray(5));
  });

  it('splits large reads to the stub limit and returns the same bytes as small reads', async () => {
    const count = 6000;
    const mem = await s.dc.customRequest('readMemory', { memoryReference: `0x${pc.toString(16)}`, count });
    const big = Buffer.from((mem.body as { data: string }).data, 'base64');
    assert.equal(big.length, count);
    const parts: Buffer[] = [];
    for (let off = 0; off < count; off += 500) {
      const r = await s.dc.customRequest('readMemory', { memoryReference: `0x${pc.toString(16)}`, offset: off, count: 500 });
      parts.push(Buffer.from((r.body as { data: string }).data, 'base64'));
    }
    assert.deepEqual(big, Buffer.concat(parts));
  });

  it('reports unreadable memory instead of failing the request', async () => {
    const mem = await s.dc.customRequest('readMemory', { memoryReference: '0x10', count: 64 });
    const body = mem.body as { data: string; unreadableBytes?: number };
    // Page 0 is never mapped in the kernel, so nothing is readable there.
    assert.equal(Buffer.from(body.data, 'base64').length, 0);
    assert.equal(body.unreadableBytes, 64);
  });

  it('steps one instruction with granularity instruction, reason step', async () => {
    const stopped = s.dc.waitForEvent('stopped');
    await s.dc.nextRequest({ threadId: stopThread, granularity: 'instruction' });
    const ev = (await stopped) as { body: { reason: string } };
    assert.equal(ev.body.reason, 'step');
    const top = await s.topFrame(stopThread);
    assert.equal(top.name, 'kernel_clone');
    const ip = BigInt(top.instructionPointerReference as string);
    // One instruction: past the entry, within the 5-byte NOP and the push that follow it.
    assert.ok(ip > kernelClone && ip <= kernelClone + 6n, `ip ${ip.toString(16)}`);
  });

  it('runs on to the shell: the ready line reaches the console log', async () => {
    await s.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
    await s.dc.continueRequest({ threadId: stopThread });
    const text = await waitForConsole(s.console!.log, READY_LINE, 120_000, s.console!.logStart);
    assert.ok(text.includes('Linux version 6.1'));
  });

  it('pauses the running guest with reason pause', async () => {
    const stopped = s.dc.waitForEvent('stopped');
    await s.dc.pauseRequest({ threadId: stopThread });
    const ev = (await stopped) as { body: { reason: string } };
    assert.equal(ev.body.reason, 'pause');
  });

  it('reads the kernel log from guest memory: every line the console printed, and the debug-level ones it did not', async () => {
    const body = (await s.dc.customRequest('qemuKernel.kernelLog', {})).body as { text: string; records: number; firstSeq?: number };
    const ours = new Set(body.text.split('\n'));
    const printed = fs
      .readFileSync(s.console!.log, 'utf8')
      .slice(s.console!.logStart ?? 0)
      .split('\n')
      .map((l) => l.replace(/\r$/, ''))
      .filter((l) => /^\[\s*\d+\.\d{6}\] /.test(l));
    assert.ok(printed.length > 50, `the console printed ${printed.length} log lines`);
    const missing = printed.filter((l) => !ours.has(l));
    assert.deepEqual(missing, [], 'console lines missing from the ring as read');
    // pcpu-alloc lines are KERN_DEBUG: in the ring, never on a console at the default level.
    assert.ok([...ours].some((l) => /\] pcpu-alloc: /.test(l)), 'a debug-level record');
    assert.equal(body.firstSeq, 0, 'the ring still holds the boot from its first record');
    assert.ok(body.text.startsWith('[    0.000000] Linux version 6.1'), body.text.slice(0, 80));
  });

  it('leaves no QEMU behind after disconnect', async () => {
    const pid = s.console!.pid;
    await s.dc.disconnectRequest({});
    assert.equal(await waitForExit(pid, 10_000), true, `QEMU ${pid} still running`);
  });
});

describe('stopOnEntry', function () {
  this.timeout(60_000);
  it('stops at the reset vector with reason entry, before the kernel runs', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    const s = new TestSession(this);
    try {
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      await s.dc.launchRequest(s.launchArgs({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, stopOnEntry: true }));
      await initialized;
      const stopped = s.dc.waitForEvent('stopped');
      await s.dc.configurationDoneRequest();
      const ev = (await stopped) as { body: { reason: string; threadId: number } };
      assert.equal(ev.body.reason, 'entry');
      const top = await s.topFrame(ev.body.threadId);
      // Real mode at f000:fff0: no kernel symbol covers it, so it is shown as a bare address.
      assert.equal(top.name, '0xfff0');
      assert.equal(top.instructionPointerReference, '0xfff0');
      // No line information here either: a raw-code document lets an editor focus the frame.
      const ref = top.source?.sourceReference;
      assert.ok(ref && ref > 0, 'the frame has a source reference');
      const res = await s.dc.sourceRequest({ source: top.source, sourceReference: ref });
      const line = res.body.content.split('\n')[top.line - 1];
      assert.match(line, /^0*fff0 /);
    } finally {
      await s.stop();
    }
  });
});

