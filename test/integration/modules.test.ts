/**
 * Module symbols that load by themselves, on each arch's sample guest: breakpoints set
 * before the module exists wait as pending, become verified and hit when `insmod` is typed
 * in the console (its init included), read the module's globals and struct members, walk
 * back to the syscall entry from the ioctl handler, go back to pending on `rmmod`, and hit
 * again on the next `insmod`. One boot per arch carries every check.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import { GuestPaths } from '../../src/guest/build';
import { GuestConsole, waitForConsole } from '../../src/qemu/console';
import { READY_LINE } from '../../src/guest/initramfs';
import { requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { nmAddress } from '../support/oracle';
import { TestSession } from '../support/session';

/** Where each arch's system calls enter C: the outermost frames a walk from a handler must reach. */
const SYSCALL_ENTRY: Record<string, RegExp> = {
  x86_64: /^(do_syscall_64|entry_SYSCALL_64)/,
  aarch64: /^(el0_svc|el0t_64_sync_handler|invoke_syscall)/,
  riscv64: /^(do_trap_ecall_u|ret_from_exception|handle_exception)/,
};

export function markerLine(file: string, marker: string): number {
  const i = fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(`qkd-test: ${marker}`));
  if (i < 0) throw new Error(`marker '${marker}' not in ${file}`);
  return i + 1;
}

for (const arch of ['x86_64', 'aarch64', 'riscv64']) {
  describe(`module symbols on ${arch}: pending breakpoints, insmod, rmmod`, function () {
    this.timeout(600_000);
    let guest: GuestPaths;
    let s: TestSession;
    let con: GuestConsole | undefined;
    const events: DebugProtocol.Event[] = [];

    before(async function () {
      requireBuilt(this);
      guest = sampleGuest(this, arch);
      requireOrSkip(this, guest.modules !== undefined, `the ${arch} guest has no sample module (run: node dist/cli.js guest build --arch ${arch})`);
      s = new TestSession(this);
      s.dc.on('module', (e: DebugProtocol.Event) => events.push(e));
      s.dc.on('breakpoint', (e: DebugProtocol.Event) => events.push(e));
      await s.start();
    });

    after(async () => {
      await con?.close();
      await s?.stop();
    });

    const source = (): string => path.join(guest.modules?.dir ?? '', 'qkd_sample.c');
    const ko = (): string => `${guest.modules?.guestDir}/qkd_sample.ko`;
    let bpInit: DebugProtocol.Breakpoint;
    let bpCmd: DebugProtocol.Breakpoint;
    let bpIoctl: DebugProtocol.Breakpoint;
    /** The session's packet log. */
    let wire = '';

    async function waitStop(): Promise<DebugProtocol.StoppedEvent> {
      // Each step builds on the one before: without a booted guest there is nothing to wait for.
      assert.ok(con, 'the guest did not boot to its shell (see the first failure)');
      return (await s.dc.waitForEvent('stopped', 120_000)) as DebugProtocol.StoppedEvent;
    }

    async function frames(tid: number): Promise<DebugProtocol.StackFrame[]> {
      return (await s.dc.stackTraceRequest({ threadId: tid })).body.stackFrames;
    }

    function tidOf(stop: DebugProtocol.StoppedEvent): number {
      return stop.body.threadId ?? 1;
    }

    async function evaluate(frameId: number, expression: string): Promise<string> {
      return (await s.dc.evaluateRequest({ expression, frameId, context: 'watch' })).body.result;
    }

    async function modules(): Promise<DebugProtocol.Module[]> {
      return (await s.dc.customRequest('modules', {})).body.modules as DebugProtocol.Module[];
    }

    it('breakpoints in a module that is not loaded are pending, with the reason', async function () {
      const initialized = s.dc.waitForEvent('initialized');
      const args = s.launchArgs({ arch, kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd });
      wire = String((args as Record<string, unknown>).rspLog);
      await s.dc.launchRequest(args);
      await initialized;
      [bpInit] = (await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'qkd_sample_init' }] })).body.breakpoints;
      const lines = (
        await s.dc.setBreakpointsRequest({
          source: { path: source() },
          breakpoints: [{ line: markerLine(source(), 'cmd-entry') }, { line: markerLine(source(), 'ioctl-entry') }],
        })
      ).body.breakpoints;
      [bpCmd, bpIoctl] = lines;
      for (const bp of [bpInit, bpCmd, bpIoctl]) {
        assert.equal(bp.verified, false);
        assert.match(bp.message ?? '', /pending: module qkd_sample is not loaded/);
      }
      await s.dc.configurationDoneRequest();
      const info = await s.consoleEvent;
      await waitForConsole(info.log, READY_LINE, 300_000, info.logStart);
      con = new GuestConsole(info.log, info.socket);
      con.start();
      assert.equal(await con.ready(), true);
    });

    it('insmod typed in the console verifies them and stops in the module init', async () => {
      const stopped = waitStop();
      con?.write(`insmod ${ko()}\n`);
      const stop = await stopped;
      assert.equal(stop.body.reason, 'breakpoint');
      const fs0 = await frames(tidOf(stop));
      assert.equal(fs0[0].name, 'qkd_sample_init');
      assert.equal(path.basename(fs0[0].source?.path ?? ''), 'qkd_sample.c');
      // Below init: the loader that called it, in vmlinux.
      assert.ok(fs0.some((f) => /^(do_one_initcall|do_init_module)$/.test(f.name)), fs0.map((f) => f.name).join(' < '));
      const changed = events.filter((e) => e.event === 'breakpoint').map((e) => (e.body as { breakpoint: DebugProtocol.Breakpoint }).breakpoint);
      for (const bp of [bpInit, bpCmd, bpIoctl]) assert.ok(changed.some((c) => c.id === bp.id && c.verified), `breakpoint ${bp.id} was not verified by an event`);
      const mods = await modules();
      const m = mods.find((x) => x.name === 'qkd_sample');
      assert.ok(m, 'qkd_sample is not in the modules list');
      assert.equal(m.path, guest.modules?.sample);
      assert.match(String(m.addressRange), /^0x[0-9a-f]+-0x[0-9a-f]+$/);
      assert.ok(events.some((e) => e.event === 'module' && (e.body as { reason: string }).reason === 'new'));
      // A module parameter and a global, read in the module's own frame.
      assert.equal(await evaluate(fs0[0].id, 'start_value'), '42');
      await s.dc.continueRequest({ threadId: tidOf(stop) });
    });

    it('a write stops in the command dispatcher; the module global and struct member read right', async () => {
      await waitForConsole((await s.consoleEvent).log, /qkd_sample: loaded/, 60_000);
      // A logpoint in the module prints without stopping; a condition in the module is evaluated there.
      const lines = (
        await s.dc.setBreakpointsRequest({
          source: { path: source() },
          breakpoints: [
            { line: markerLine(source(), 'write-entry'), logMessage: 'qkd write count={qkd_sample_count} items={qkd_sample_state.nr_items}' },
            { line: markerLine(source(), 'cmd-entry'), condition: 'arg == 5' },
            { line: markerLine(source(), 'ioctl-entry') },
          ],
        })
      ).body.breakpoints;
      assert.ok(lines.every((b) => b.verified), JSON.stringify(lines));
      const stopped = waitStop();
      con?.write('echo add 5 > /dev/qkd_sample\n');
      const stop = await stopped;
      const fs0 = await frames(tidOf(stop));
      assert.equal(fs0[0].name, 'qkd_sample_do_cmd');
      assert.equal(fs0[0].line, markerLine(source(), 'cmd-entry'));
      const names = fs0.map((f) => f.name);
      assert.ok(names.includes('qkd_sample_write'), names.join(' < '));
      assert.ok(names.includes('vfs_write') || names.includes('ksys_write'), names.join(' < '));
      assert.ok(names.some((n) => SYSCALL_ENTRY[arch].test(n)), `no syscall entry in ${names.join(' < ')}`);
      // At the marked line nothing has run yet: the count is what init left (0 commands).
      assert.equal(await evaluate(fs0[0].id, 'qkd_sample_count'), '0');
      assert.equal(await evaluate(fs0[0].id, 'qkd_sample_state.nr_items'), '1');
      assert.equal(await evaluate(fs0[0].id, 'qkd_sample_state.last_value'), '42');
      // Arguments: _IOW('q', 0x40, int) and the value written.
      assert.equal(await evaluate(fs0[0].id, 'cmd'), String((1 << 30) | (4 << 16) | (0x71 << 8) | 0x40));
      assert.equal(await evaluate(fs0[0].id, 'arg'), '5');
      assert.match(await evaluate(fs0[0].id, 'origin'), /"write"/);
      // From a vmlinux frame the module's globals are still found.
      const vfs = fs0.find((f) => f.name === 'vfs_write' || f.name === 'ksys_write');
      assert.equal(await evaluate(vfs?.id ?? fs0[0].id, 'qkd_sample_state.nr_items'), '1');
      assert.ok(s.output.some((o) => /qkd write count=0 items=1/.test(o)), `no logpoint output in ${s.output.slice(-5).join('')}`);
      // Init has returned and its memory is freed: the init breakpoint was dropped, and says so.
      const initState = events
        .filter((e) => e.event === 'breakpoint')
        .map((e) => (e.body as { breakpoint: DebugProtocol.Breakpoint }).breakpoint)
        .filter((b) => b.id === bpInit.id)
        .pop();
      assert.ok(initState && !initState.verified && /dropped: qkd_sample's init code was freed/.test(initState.message ?? ''), JSON.stringify(initState));

      // Disassembly names the module's function; Set Value writes a module global.
      const pc = fs0[0].instructionPointerReference as string;
      const dis = (await s.dc.customRequest('disassemble', { memoryReference: pc, instructionCount: 4 })).body.instructions as DebugProtocol.DisassembledInstruction[];
      assert.ok(dis.some((i) => /qkd_sample_do_cmd/.test(i.symbol ?? '')), JSON.stringify(dis.slice(0, 2)));
      await s.dc.customRequest('setExpression', { expression: 'qkd_sample_state.last_value', value: '4242', frameId: fs0[0].id });
      assert.equal(await evaluate(fs0[0].id, 'qkd_sample_state.last_value'), '4242');

      // A line step stays in the module: the next line of the dispatcher.
      const stepped = waitStop();
      await s.dc.nextRequest({ threadId: tidOf(stop) });
      const after = await frames(tidOf(await stepped));
      assert.equal(after[0].name, 'qkd_sample_do_cmd');
      assert.ok((after[0].line ?? 0) > markerLine(source(), 'cmd-entry'), `line ${after[0].line}`);
      assert.equal(await evaluate(after[0].id, 'qkd_sample_count'), '1');
      await s.dc.continueRequest({ threadId: tidOf(stop) });
    });

    it('the ioctl handler stops too, and its backtrace reaches the syscall entry', async () => {
      const stopped = waitStop();
      con?.write(`${guest.modules?.ctl ?? 'qkd_sample_ctl'} count\n`);
      const stop = await stopped;
      const fs0 = await frames(tidOf(stop));
      assert.equal(fs0[0].name, 'qkd_sample_ioctl');
      assert.equal(fs0[0].line, markerLine(source(), 'ioctl-entry'));
      const names = fs0.map((f) => f.name);
      assert.ok(names.some((n) => SYSCALL_ENTRY[arch].test(n)), `no syscall entry in ${names.join(' < ')}`);
      assert.ok(names.includes('__arm64_sys_ioctl') || names.includes('__x64_sys_ioctl') || names.includes('__riscv_sys_ioctl') || names.includes('__se_sys_ioctl') || names.includes('__do_sys_ioctl'), names.join(' < '));
      // The dispatcher's breakpoint has the condition `arg == 5`: this call (count, arg 0) passes it by.
      assert.equal(await evaluate(fs0[0].id, 'qkd_sample_count'), '1');
      await s.dc.continueRequest({ threadId: tidOf(stop) });
    });

    it('rmmod takes the module out of the list and its breakpoints back to pending', async () => {
      const before = events.length;
      con?.write('rmmod qkd_sample\n');
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && !events.slice(before).some((e) => e.event === 'module' && (e.body as { reason: string }).reason === 'removed')) await new Promise((r) => setTimeout(r, 200));
      assert.ok(
        events.slice(before).some((e) => e.event === 'module' && (e.body as { reason: string }).reason === 'removed'),
        'no module removed event',
      );
      const pending = events
        .slice(before)
        .filter((e) => e.event === 'breakpoint')
        .map((e) => (e.body as { breakpoint: DebugProtocol.Breakpoint }).breakpoint);
      for (const bp of [bpCmd, bpIoctl]) {
        const last = pending.filter((p) => p.id === bp.id).pop();
        assert.ok(last && !last.verified && /pending: module qkd_sample is not loaded/.test(last.message ?? ''), `breakpoint ${bp.id} did not go back to pending`);
      }
      assert.equal((await modules()).some((m) => m.name === 'qkd_sample'), false);
    });

    it('a second insmod hits the init breakpoint again', async () => {
      const stopped = waitStop();
      con?.write(`insmod ${ko()}\n`);
      const stop = await stopped;
      assert.equal((await frames(tidOf(stop)))[0].name, 'qkd_sample_init');
      await s.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
      await s.dc.setBreakpointsRequest({ source: { path: source() }, breakpoints: [] });
      await s.dc.continueRequest({ threadId: tidOf(stop) });
    });

    it('with no breakpoint waiting for a module, rmmod and insmod stop the guest nowhere; the list is read when asked', async () => {
      const log = (await s.consoleEvent).log;
      // insmod is over (its prompt is back), so the stop where init returned is behind us.
      await waitForConsole(log, /qkd_sample: loaded.*\r?\n\/ # /, 60_000, fs.statSync(log).size - 4096);
      const hooks = ['do_init_module', 'free_module'].map((n) => nmAddress(guest.vmlinux, n).toString(16));
      const mark = fs.statSync(wire).size;
      let from = fs.statSync(log).size;
      con?.write('rmmod qkd_sample\n');
      // The prompt: rmmod has returned, so the kernel has taken the module off its list (the exit's line comes before).
      await waitForConsole(log, /qkd_sample: unloaded.*\r?\n\/ # /, 60_000, from);
      assert.doesNotMatch(fs.readFileSync(wire).subarray(mark).toString('latin1'), /\$T05|vCont;s/, 'the guest stopped for rmmod while no breakpoint needed the module hooks');
      // The list is read when asked for (the kernel's module generation moved): the module is gone.
      const removedBefore = events.filter((e) => e.event === 'module' && (e.body as { reason: string }).reason === 'removed').length;
      assert.equal((await modules()).some((x) => x.name === 'qkd_sample'), false, 'rmmod went unseen');
      assert.equal(events.filter((e) => e.event === 'module' && (e.body as { reason: string }).reason === 'removed').length, removedBefore + 1);
      from = fs.statSync(log).size;
      const mark2 = fs.statSync(wire).size;
      con?.write(`insmod ${ko()}\n`);
      await waitForConsole(log, /qkd_sample: loaded.*\r?\n\/ # /, 60_000, from);
      assert.doesNotMatch(fs.readFileSync(wire).subarray(mark2).toString('latin1'), /\$T05|vCont;s/, 'the guest stopped for insmod while no breakpoint needed the module hooks');
      // And back, with its symbols.
      const m = (await modules()).find((x) => x.name === 'qkd_sample');
      assert.ok(m, 'qkd_sample is not in the modules list');
      assert.equal(m.path, guest.modules?.sample);
      // A breakpoint in the loaded module is verified in the answer itself, and the hooks come back for it.
      const beforeSet = fs.statSync(wire).size;
      const [bp] = (await s.dc.setBreakpointsRequest({ source: { path: source() }, breakpoints: [{ line: markerLine(source(), 'cmd-entry') }] })).body.breakpoints;
      assert.equal(bp.verified, true, bp.message);
      const armed = fs.readFileSync(wire).subarray(beforeSet).toString('latin1');
      for (const a of hooks) assert.match(armed, new RegExp(`Z0,${a},`), `no hook at ${a} once a breakpoint sat in a module`);
      const stopped = waitStop();
      con?.write('echo add 7 > /dev/qkd_sample\n');
      const stop = await stopped;
      const fs0 = await frames(tidOf(stop));
      assert.equal(fs0[0].name, 'qkd_sample_do_cmd');
      assert.equal(await evaluate(fs0[0].id, 'arg'), '7');
      // No breakpoint left: the hooks go too.
      const beforeClear = fs.statSync(wire).size;
      await s.dc.setBreakpointsRequest({ source: { path: source() }, breakpoints: [] });
      await s.dc.continueRequest({ threadId: tidOf(stop) });
      const cleared = fs.readFileSync(wire).subarray(beforeClear).toString('latin1');
      for (const a of hooks) assert.match(cleared, new RegExp(`z0,${a},`), `the hook at ${a} stayed with no breakpoint needing it`);
    });
  });
}
