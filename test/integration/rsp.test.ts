/** Every packet family of the RSP client against QEMU's real gdbstub, guest paused at reset. */
import * as assert from 'node:assert/strict';
import { getArch } from '../../src/arch';
import { KernelTarget } from '../../src/engine/target';
import { resolveLaunchConfig } from '../../src/qemu/config';
import { QemuInstance } from '../../src/qemu/instance';
import { RspErrorReply, RspUnsupported } from '../../src/rsp/errors';
import * as P from '../../src/rsp/packets';
import { artifact, sampleGuest } from '../support/env';
import { loadSymbols, wireLogTo } from '../../src/adapter/backend';

describe('rsp packets against QEMU 7.2', function () {
  this.timeout(60_000);
  let inst: QemuInstance;
  let target: KernelTarget;

  before(async function () {
    const g = sampleGuest(this);
    // At its link addresses: the breakpoints below are vmlinux's symbols as linked.
    const cfg = resolveLaunchConfig({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, smp: 2, kaslr: false, consoleLog: artifact(this, 'console.log') });
    inst = await QemuInstance.start(cfg, 'tcg');
    target = await KernelTarget.connect({ kind: 'unix', path: inst.paths.gdbSocket }, getArch('x86_64'), { log: wireLogTo(artifact(this, 'rsp.log')) });
  });
  after(async () => {
    target?.close();
    await inst?.stop();
  });

  it('negotiates PacketSize 4096 and reads the target description', () => {
    assert.equal(target.stub.packetSize, 4096);
    assert.equal(target.maxReadChunk, 2048);
    assert.equal(target.register('rip')?.regnum, 16);
    assert.equal(target.vcont, true);
  });

  it('lists one thread per vCPU and selects them with Hg', async () => {
    assert.deepEqual(await P.listThreads(target.rsp), [1, 2]);
    await P.selectThread(target.rsp, 'g', 2);
    // Both vCPUs sit at the reset vector before anything runs.
    assert.equal(await target.pc(2), 0xfff0n);
    await assert.rejects(P.selectThread(target.rsp, 'g', 9), RspErrorReply);
  });

  it('writes one register with P and reads it back with p and g', async () => {
    const rax = target.register('rax')!;
    const value = Buffer.from('8877665500000000', 'hex');
    await P.writeRegister(target.rsp, rax.regnum, value);
    assert.deepEqual(await P.readRegister(target.rsp, rax.regnum), value);
    target.invalidate();
    // P went to vCPU 2, the one Hg selected above.
    assert.equal(await target.readRegister(2, 'rax'), 0x55667788n);
    assert.equal(await target.readRegister(1, 'rax'), 0n);
    // Quirk: outside long mode QEMU keeps only the low 32 bits of a general register.
    await P.writeRegister(target.rsp, rax.regnum, Buffer.from('1122334455667788', 'hex'));
    assert.equal((await P.readRegister(target.rsp, rax.regnum)).toString('hex'), '1122334400000000');
  });

  it('writes memory with M and reads it back with m, across packet splits', async () => {
    const data = Buffer.alloc(5000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    // Real mode at reset: virtual = physical, and 0x10000 is ordinary RAM.
    await P.writeMemory(target.rsp, 0x10000n, data, target.stub.packetSize);
    assert.deepEqual(await P.readMemory(target.rsp, 0x10000n, data.length, target.maxReadChunk), data);
  });

  it('answers pipelined m packets in order: a large read equals the same bytes read one small packet at a time', async () => {
    // The BIOS ROM's top 64 KiB (mapped at reset) is fixed data that differs from chunk to chunk.
    const base = 0xf0000n;
    const pipelined = await P.readMemory(target.rsp, base, 0x10000, target.maxReadChunk);
    const serial: Buffer[] = [];
    for (let at = 0; at < 0x10000; at += 256) serial.push(await P.readMemory(target.rsp, base + BigInt(at), 256, 256));
    assert.equal(pipelined.length, 0x10000);
    assert.ok(new Set(pipelined.subarray(0, 4096)).size > 16, 'the ROM is not blank');
    assert.deepEqual(pipelined, Buffer.concat(serial));
    // A read running past 4 GiB (nothing is mapped there) keeps the ROM bytes before the hole.
    const top = 0x100000000n - 0x800n;
    const prefix = await P.readMemoryPrefix(target.rsp, top, 0x1000, target.maxReadChunk);
    assert.equal(prefix.length, 0x800);
    assert.deepEqual(prefix, await P.readMemory(target.rsp, top, 0x800, target.maxReadChunk));
    await assert.rejects(P.readMemory(target.rsp, top, 0x1000, target.maxReadChunk));
  });

  it('inserts and removes several breakpoints in one pipelined exchange', async () => {
    const addrs = [0xffffffff81000000n, 0xffffffff81000010n, 0xffffffff81000020n];
    assert.deepEqual(await P.setBreakpoints(target.rsp, true, 'sw', addrs, 1), [undefined, undefined, undefined]);
    assert.deepEqual(await P.setBreakpoints(target.rsp, false, 'sw', addrs, 1), [undefined, undefined, undefined]);
  });

  it('inserts and removes software and hardware breakpoints', async () => {
    await P.insertBreakpoint(target.rsp, 'sw', 0xffffffff81000000n, 1);
    await P.removeBreakpoint(target.rsp, 'sw', 0xffffffff81000000n, 1);
    await P.insertBreakpoint(target.rsp, 'hw', 0xffffffff81000000n, 1);
    await P.removeBreakpoint(target.rsp, 'hw', 0xffffffff81000000n, 1);
  });

  it('steps one vCPU with vCont and reports the stop with its thread', async () => {
    const stop = await P.stepThread(target.rsp, 1, true);
    assert.ok(stop.kind === 'signal' && stop.signal === 5 && stop.thread === 1);
    target.invalidate();
    // The first instruction at f000:fff0 is a far jump into the BIOS.
    assert.notEqual(await target.pc(1), 0xfff0n);
  });

  it('takes breakpoints sent in the write of a continue: QEMU answers them, runs, and stops there with SIGTRAP', async function () {
    const { elf, symbols } = loadSymbols(sampleGuest(this).vmlinux);
    elf.close();
    const fn = symbols.lookup('kernel_clone')[0].value;
    const replies: string[] = [];
    // The reply to the Z0 comes while the guest runs; an ack for it would reach QEMU as an
    // interrupt (SIGINT) rather than the breakpoint's SIGTRAP.
    const stop = await P.continueThreads(target.rsp, undefined, true, [P.breakpointPrelude(true, 'sw', fn, 1, (e) => replies.push(e ? e.message : 'OK'))]);
    assert.deepEqual(replies, ['OK']);
    assert.ok(stop.kind === 'signal' && stop.signal === 5, JSON.stringify(stop));
    target.invalidate();
    assert.equal(await target.pc(stop.thread ?? 1), fn);
    await P.removeBreakpoint(target.rsp, 'sw', fn, 1);
  });

  it('continues and interrupts with 0x03; QEMU reports SIGINT', async () => {
    const run = P.continueThreads(target.rsp, undefined, true);
    await new Promise((r) => setTimeout(r, 200));
    target.rsp.interrupt();
    const stop = await run;
    assert.ok(stop.kind === 'signal' && stop.signal === 2, JSON.stringify(stop));
  });

  it('runs a monitor command through qRcmd and collects its O output', async () => {
    const out = await P.monitorCommand(target.rsp, 'info status');
    assert.match(out, /VM status: paused/);
  });

  it('sets QEMU options and reports the current thread', async () => {
    await P.setQemuOption(target.rsp, 'sstep', 0x7);
    await P.setQemuOption(target.rsp, 'PhyMemMode', 1);
    await P.setQemuOption(target.rsp, 'PhyMemMode', 0);
    assert.ok([1, 2].includes((await P.currentThread(target.rsp)) ?? -1));
  });

  it('tells an error reply from an unsupported packet', async () => {
    await assert.rejects(P.readMemory(target.rsp, 0n, 4096, 4096), (e: unknown) => e instanceof RspErrorReply && e.code === 0x22);
    await assert.rejects(P.readFeatureDocument(target.rsp, 'no-such.xml'), RspErrorReply);
    await assert.rejects(P.readRegister(target.rsp, 0x400), RspErrorReply);
    // An empty reply means unsupported, and the typed functions raise RspUnsupported for it.
    assert.equal(await target.rsp.request('qNoSuchPacket'), '');
    await assert.rejects(P.readRegister(target.rsp, 0x10000), (e: unknown) => e instanceof RspUnsupported || e instanceof RspErrorReply);
  });

  it('detaches, leaving the guest running', async () => {
    await P.detach(target.rsp);
    const status = (await inst.qmp.execute('query-status')) as { status: string };
    assert.equal(status.status, 'running');
  });
});
