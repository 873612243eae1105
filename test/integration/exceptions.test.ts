/**
 * Exception filters on each arch's sample guest, booted once with KASLR on (the hooks go in
 * before the offset is known and move with it) and the sample module loaded. Each of the
 * module's failures on demand stops with reason `exception`, the right filter and message in
 * exceptionInfo, and a top frame on the marked line of qkd_sample.c: rebuilt from the trap's
 * pt_regs (Oops, BUG, WARN, KFENCE) or the reporter's caller (UBSAN). The oracle is the
 * kernel's own report, printed once the guest goes on: its `func+off` for the faulting PC,
 * put through addr2line on the .ko, must be the line the stop showed. sysrq `c` stops in
 * panic(), labelled as the reporting path, with sysrq_handle_crash below it. With the filters
 * off (or a condition false) the guest goes on to print its report without stopping.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { GuestPaths } from '../../src/guest/build';
import { GuestConsole, waitForConsole } from '../../src/qemu/console';
import { RECIPES } from '../../src/guest/recipes';
import { requireBuilt, sampleGuest } from '../support/env';
import { logged, markerLine } from '../support/handover';
import { TestSession } from '../support/session';

const ARCHES = ['x86_64', 'aarch64', 'riscv64'];
const ALL_ON = ['panic', 'oops', 'bug', 'warn', 'sanitizer'];

/**
 * addr2line's line for `func+off` in the .ko (a function's section from objdump -t: faulting
 * ones sit in .text.unlikely), with the arch's own binutils: the host's cannot apply an arm64
 * or riscv64 object's DWARF relocations and answers `?`.
 */
function koLine(arch: string, ko: string, func: string, off: bigint): string {
  const sym = new RegExp(`^([0-9a-f]+) .* F (\\S+)\\s+[0-9a-f]+ ${func}$`, 'm').exec(execFileSync('objdump', ['-t', ko], { encoding: 'utf8' }));
  assert.ok(sym, `${func} is not in ${ko}`);
  const at = BigInt('0x' + sym[1]) + off;
  const out = execFileSync(`${RECIPES[arch].crossCompile ?? ''}addr2line`, ['-e', ko, '-j', sym[2], `0x${at.toString(16)}`], { encoding: 'utf8' }).trim();
  return out.replace(/ \(discriminator \d+\)$/, '');
}

for (const arch of ARCHES) {
  describe(`${arch}: exception filters stop at the faulting line`, function () {
    this.timeout(600_000);
    let g: GuestPaths;
    let s: TestSession | undefined;
    let con: GuestConsole | undefined;
    let log = '';
    let ko = '';
    let source = '';
    const stops: DebugProtocol.StoppedEvent[] = [];

    before(async function () {
      requireBuilt(this);
      g = sampleGuest(this, arch);
      assert.ok(g.modules?.sample, 'the sample module is built');
      ko = g.modules.sample;
      source = path.join(path.dirname(ko), 'qkd_sample.c');
      s = new TestSession(this);
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      await s.dc.launchRequest(s.launchArgs({ arch, kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, kaslr: 'auto', append: 'qkd.load=qkd_sample' }));
      await initialized;
      const set = await s.dc.setExceptionBreakpointsRequest({ filters: ALL_ON });
      assert.deepEqual(
        set.body?.breakpoints?.map((b) => b.verified),
        ALL_ON.map(() => true),
        JSON.stringify(set.body),
      );
      s.dc.on('stopped', (e: DebugProtocol.StoppedEvent) => stops.push(e));
      await s.dc.configurationDoneRequest();
      ({ con, log } = await s.readyConsole());
    });

    after(async () => {
      if (process.env.QKD_TEST_SHOW_OUTPUT) console.log(s?.output.join(''));
      await con?.close();
      await s?.stop();
    });

    /** Type a failure; resolves with the stop it makes (the console offset first, to read the report later). */
    async function trigger(kind: string): Promise<{ stop: DebugProtocol.StoppedEvent; from: number }> {
      const sess = s as TestSession;
      const stopped = sess.dc.waitForEvent('stopped', 180_000) as Promise<DebugProtocol.StoppedEvent>;
      const from = fs.statSync(log).size;
      (con as GuestConsole).write(`sh -c 'echo fault ${kind} > /dev/qkd_sample'; echo fault-${kind}-rc=$?\n`);
      return { stop: await stopped, from };
    }

    /** Go on and read the kernel's own report of it from the console. */
    async function report(tid: number, kind: string, from: number): Promise<string> {
      await (s as TestSession).dc.continueRequest({ threadId: tid });
      return waitForConsole(log, new RegExp(`fault-${kind}-rc=\\d+`), 180_000, from);
    }

    async function frames(tid: number): Promise<DebugProtocol.StackFrame[]> {
      return (await (s as TestSession).dc.stackTraceRequest({ threadId: tid })).body.stackFrames;
    }

    /** The kernel's `func+0xoff/0x…` for a function in its report. */
    function offsetIn(text: string, func: string): bigint {
      const m = new RegExp(`${logged(func)}\\+0x([0-9a-f]+)/0x`).exec(text);
      assert.ok(m, `no ${func}+off in:\n${text}`);
      return BigInt('0x' + m[1]);
    }

    async function checkTrapStop(kind: string, filter: string, message: RegExp, func: string, reporter: RegExp): Promise<void> {
      const sess = s as TestSession;
      // Only this filter (and Oops, for BUG's one-stop check): a WARN the kernel itself raises
      // after an earlier failure (arm64 warns when the killed task exits with IRQs off) is not this test's.
      await sess.dc.setExceptionBreakpointsRequest({ filters: [...new Set([filter, 'oops'])] });
      const { stop, from } = await trigger(kind);
      const tid = stop.body.threadId ?? 1;
      assert.equal(stop.body.reason, 'exception', JSON.stringify(stop.body));
      const info = await sess.dc.exceptionInfoRequest({ threadId: tid });
      assert.equal(info.body.exceptionId, filter);
      assert.match(info.body.description ?? '', message);
      assert.match(info.body.details?.stackTrace ?? '', /CPU: \d+ PID: \d+ Comm: sh/);
      const fr = await frames(tid);
      const top = fr[0];
      assert.equal(top.name, func, JSON.stringify(fr.slice(0, 4)));
      assert.equal(top.source?.path, source);
      assert.equal(top.line, markerLine(source, `fault-${kind}`));
      // Below the faulting context, the reporting path, labelled and dimmed.
      const label = fr.findIndex((f) => f.presentationHint === 'label');
      assert.ok(label > 0, JSON.stringify(fr.map((f) => f.name)));
      assert.match(fr[label].name, /^Reporting path/);
      // The reporter's entry may be an inlined callee's first instruction (report_bug's is find_bug's).
      const section = fr.slice(label + 1);
      assert.ok(section.length > 0 && section.every((f) => f.presentationHint === 'subtle'), JSON.stringify(section));
      assert.ok(section.some((f) => reporter.test(f.name)), JSON.stringify(section.map((f) => f.name)));
      // The faulting frame's variables come from pt_regs: the module's own function reads them.
      const scopes = await sess.dc.scopesRequest({ frameId: top.id });
      assert.ok(scopes.body.scopes.length > 0);
      const text = await report(tid, kind, from);
      assert.equal(koLine(arch, ko, func, offsetIn(text, func)), `${source}:${top.line}`);
    }

    it('WARN_ON(): the WARN filter stops at the warning line (pt_regs from report_bug), message as the kernel prints it', async () => {
      await checkTrapStop('warn', 'warn', /^WARNING: CPU: \d+ PID: \d+ at .*qkd_sample\.c:\d+ qkd_sample_fault_warn\+0x[0-9a-f]+\/0x[0-9a-f]+ \[qkd_sample\]$/, 'qkd_sample_fault_warn', /report_bug/);
    });

    it('NULL dereference: the Oops filter stops at the dereference with the kernel\'s own first line', async () => {
      await checkTrapStop('null', 'oops', arch === 'x86_64' ? /^BUG: kernel NULL pointer dereference, address: 0+$/ : /^Unable to handle kernel (NULL pointer dereference|access to user memory without uaccess routines) at virtual address 0+$/, 'qkd_sample_fault_null', arch === 'x86_64' ? /__die/ : /die/);
    });

    it('KFENCE: the sanitizer filter stops at the write past the buffer', async () => {
      await checkTrapStop('oob', 'sanitizer', /^BUG: KFENCE: out-of-bounds write in qkd_sample_fault_oob\+0x[0-9a-f]+\/0x[0-9a-f]+ \[qkd_sample\]$/, 'qkd_sample_fault_oob', /kfence_report_error/);
    });

    it('UBSAN: the sanitizer filter stops in the handler, labelled, with the out-of-bounds read right below', async () => {
      const sess = s as TestSession;
      await sess.dc.setExceptionBreakpointsRequest({ filters: ['sanitizer'] });
      const { stop, from } = await trigger('ubsan');
      const tid = stop.body.threadId ?? 1;
      assert.equal(stop.body.reason, 'exception');
      const info = await sess.dc.exceptionInfoRequest({ threadId: tid });
      assert.equal(info.body.exceptionId, 'sanitizer');
      const line = markerLine(source, 'fault-ubsan');
      assert.match(info.body.description ?? '', new RegExp(`^UBSAN: array-index-out-of-bounds in \\S*qkd_sample\\.c:${line}:\\d+$`));
      const fr = await frames(tid);
      assert.equal(fr[0].presentationHint, 'label');
      assert.match(fr[1].name, /^__ubsan_handle_out_of_bounds/);
      assert.equal(fr[1].presentationHint, 'subtle');
      assert.equal(fr[2].name, 'qkd_sample_fault_ubsan');
      assert.equal(fr[2].source?.path, source);
      assert.equal(fr[2].line, line);
      const text = await report(tid, 'ubsan', from);
      assert.match(text, new RegExp(`UBSAN: array-index-out-of-bounds in \\S+:${logged(String(line))}:`));
    });

    it('a false condition, then the filter off: the guest goes on and prints its WARNING; a true condition stops', async () => {
      const sess = s as TestSession;
      const before = stops.length;
      await sess.dc.setExceptionBreakpointsRequest({ filters: ['oops'], filterOptions: [{ filterId: 'warn', condition: 'bugaddr == 0' }] });
      let from = fs.statSync(log).size;
      (con as GuestConsole).write(`sh -c 'echo fault warn > /dev/qkd_sample'; echo fault-warn-rc=$?\n`);
      let text = await waitForConsole(log, /fault-warn-rc=\d+/, 180_000, from);
      assert.match(text, /WARNING: CPU: \d+ PID: \d+ at /);
      await sess.dc.setExceptionBreakpointsRequest({ filters: [] });
      from = fs.statSync(log).size;
      (con as GuestConsole).write(`sh -c 'echo fault null > /dev/qkd_sample'; echo fault-null-rc=$?\n`);
      text = await waitForConsole(log, /fault-null-rc=\d+/, 180_000, from);
      assert.match(text, /Internal error: Oops|Oops: 0000|Oops \[#\d+\]|Oops/);
      assert.equal(stops.length, before, 'no stop with the condition false or the filters off');
      const bad = await sess.dc.setExceptionBreakpointsRequest({ filters: [], filterOptions: [{ filterId: 'warn', condition: 'bugaddr ==' }] });
      assert.equal(bad.body?.breakpoints?.[0].verified, false);
      assert.match(bad.body?.breakpoints?.[0].message ?? '', /condition does not parse/);
      await sess.dc.setExceptionBreakpointsRequest({ filters: [], filterOptions: [{ filterId: 'warn', condition: 'bugaddr != 0 && regs != 0' }] });
      const { stop, from: at } = await trigger('warn');
      assert.equal(stop.body.reason, 'exception');
      await report(stop.body.threadId ?? 1, 'warn', at);
    });

    it('BUG(): the BUG filter stops at the BUG line; the Oops that follows is not a second stop', async () => {
      const before = stops.length;
      await checkTrapStop('bug', 'bug', /^kernel BUG at .*qkd_sample\.c:\d+!$/, 'qkd_sample_fault_bug', /report_bug/);
      assert.equal(stops.length, before + 1, 'one stop for the BUG and its Oops');
    });

    it('sysrq c: stops in panic(), labelled as the reporting path, with sysrq_handle_crash (drivers/tty/sysrq.c) right below', async () => {
      const sess = s as TestSession;
      await sess.dc.setExceptionBreakpointsRequest({ filters: ['panic'] });
      const stopped = sess.dc.waitForEvent('stopped', 180_000) as Promise<DebugProtocol.StoppedEvent>;
      (con as GuestConsole).write('echo c > /proc/sysrq-trigger\n');
      const stop = await stopped;
      const tid = stop.body.threadId ?? 1;
      assert.equal(stop.body.reason, 'exception');
      const info = await sess.dc.exceptionInfoRequest({ threadId: tid });
      assert.equal(info.body.exceptionId, 'panic');
      assert.equal(info.body.description, 'Kernel panic - not syncing: sysrq triggered crash');
      const fr = await frames(tid);
      assert.equal(fr[0].presentationHint, 'label');
      assert.match(fr[0].name, /^Reporting path \(Kernel panic: panic\)/);
      assert.equal(fr[1].name, 'panic');
      assert.equal(fr[1].presentationHint, 'subtle');
      assert.equal(fr[2].name, 'sysrq_handle_crash');
      assert.equal(fr[2].source?.path, path.join(g.source, 'drivers', 'tty', 'sysrq.c'));
    });
  });
}
