/**
 * The same debugging scenarios on every architecture, against that arch's real sample guest
 * under TCG, with gdb (x86_64) or gdb-multiarch (aarch64, riscv64) on the same guest and the
 * same stop as the oracle:
 *   a function breakpoint on kernel_clone, hit at its address;
 *   at a line breakpoint in kernel_clone: the backtrace, the arguments and `*args`, the locals,
 *   the pc and sp, and memory (linux_banner);
 *   next, next, step into copy_process and step out;
 *   the guest console.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { RegistersBody } from '../../src/adapter/registers';
import { GuestPaths } from '../../src/guest/build';
import { READY_LINE } from '../../src/guest/initramfs';
import { requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbFor, gdbSession, haveGdb } from '../support/gdb';
import { nmAddress } from '../support/oracle';
import { TestSession } from '../support/session';
import { lineOf, ours, parseBacktrace, sourceLines } from '../support/source';
import { normalize } from './variables.test';

export const ARCHES = ['x86_64', 'aarch64', 'riscv64'];

const MARKS = ['@@BT', '@@ARGS', '@@STAR', '@@LOCALS', '@@PC', '@@SP', '@@MEM', '@@NEXT1', '@@NEXT2', '@@STEP', '@@FINISH'];

/** `name = value` lines of gdb's `info args` / `info locals`. */
function gdbNamed(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const r = /^([A-Za-z_]\w*) = (.*)$/.exec(line);
    if (r) m.set(r[1], r[2].trim());
  }
  return m;
}

/** The same value with every number and char literal masked: for locals not yet written at this line. */
const shape = (v: string): string => normalize(v).replace(/'(?:[^'\\]|\\.)*'/g, 'C').replace(/-?(?:0x[0-9a-f]+|\d+)/g, 'N');

for (const archName of ARCHES) {
  describe(`${archName}: breakpoints, stack, stepping, variables, registers, memory and console (gdb as oracle)`, function () {
    this.timeout(900_000);
    let guest: GuestPaths;
    let fork: string;
    let firstLine: number;
    let copyLine: number;
    let gdbOut = '';

    before(async function () {
      requireBuilt(this);
      requireOrSkip(this, haveGdb(archName), `${gdbFor(archName)} is not installed (apt-get install ${gdbFor(archName)})`);
      guest = sampleGuest(this, archName);
      fork = path.join(guest.source, 'kernel', 'fork.c');
      const def = lineOf(fork, 'pid_t kernel_clone(struct kernel_clone_args *args)');
      firstLine = lineOf(fork, 'u64 clone_flags = args->flags;', def);
      copyLine = lineOf(fork, 'p = copy_process(NULL, trace, NUMA_NO_NODE, args);', def);
      gdbOut = await gdbSession(
        guest,
        [
          'set print elements 200',
          `break kernel/fork.c:${firstLine}`,
          'continue',
          `echo ${MARKS[0]}\\n`,
          'bt',
          `echo ${MARKS[1]}\\n`,
          'info args',
          `echo ${MARKS[2]}\\n`,
          'print *args',
          `echo ${MARKS[3]}\\n`,
          'info locals',
          `echo ${MARKS[4]}\\n`,
          'print/x $pc',
          `echo ${MARKS[5]}\\n`,
          'print/x $sp',
          `echo ${MARKS[6]}\\n`,
          'print linux_banner',
          `echo ${MARKS[7]}\\n`,
          'next',
          `echo ${MARKS[8]}\\n`,
          'next',
          `tbreak kernel/fork.c:${copyLine}`,
          'continue',
          `echo ${MARKS[9]}\\n`,
          'step',
          'bt 1',
          `echo ${MARKS[10]}\\n`,
          'finish',
        ],
        600_000,
      );
      assert.match(gdbOut, /Breakpoint 1, .*kernel_clone/, `gdb stopped in kernel_clone:\n${gdbOut}`);
    });

    function section(mark: string): string {
      const i = gdbOut.indexOf(mark);
      const rest = gdbOut.slice(i + mark.length);
      const next = MARKS.map((m) => rest.indexOf(m)).filter((x) => x >= 0);
      return rest.slice(0, next.length ? Math.min(...next) : undefined);
    }
    const printed = (mark: string): string => /^\$\d+ = ([\s\S]*?)\s*$/m.exec(section(mark).trim())?.[1] ?? `<gdb: ${section(mark).trim()}>`;

    it('stops at a function breakpoint on kernel_clone, at the address nm gives it', async function () {
      const s = new TestSession(this);
      try {
        await s.start();
        const { stop, bps } = await s.launchToBreak(s.launchArgs({ arch: archName, kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd }), ['kernel_clone']);
        assert.equal(bps[0].verified, true, bps[0].message);
        assert.deepEqual(stop.body.hitBreakpointIds, [bps[0].id]);
        const top = await s.topFrame(stop.body.threadId ?? 1);
        assert.match(top.name, /^kernel_clone\b/);
        assert.equal(BigInt(top.instructionPointerReference ?? '0'), nmAddress(guest.vmlinux, 'kernel_clone'));
      } finally {
        await s.stop();
      }
    });

    it("agrees with gdb at a line in kernel_clone: backtrace, args, *args, locals, pc, sp, memory; then next, step in, step out; and the console has the boot log", async function () {
      const gdbBt = parseBacktrace(section(MARKS[0]));
      assert.ok(gdbBt.length >= 3, `gdb printed a backtrace:\n${gdbOut}`);
      const gdbArgs = gdbNamed(section(MARKS[1]));
      const gdbLocals = gdbNamed(section(MARKS[3]));
      const gdbNext = [sourceLines(section(MARKS[7]))[0], sourceLines(section(MARKS[8]))[0]];
      const gdbStep = parseBacktrace(section(MARKS[9]))[0];
      const finish = section(MARKS[10])
        .split('\n')
        .filter((l) => !l.startsWith('Run till exit'))
        .map((l) => /^(?:0x[0-9a-f]+ in )?([\w.]+) \(.*\) at (\S+):(\d+)\s*$/.exec(l))
        .find((m) => m !== null);
      assert.ok(gdbStep && finish && gdbNext.every((n) => n !== undefined), `gdb stepped:\n${gdbOut}`);

      const s = new TestSession(this);
      try {
        await s.start();
        const initialized = s.dc.waitForEvent('initialized');
        const args = s.launchArgs({ arch: archName, kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd });
        await s.dc.launchRequest(args);
        await initialized;
        const set = await s.dc.setBreakpointsRequest({ source: { path: fork }, breakpoints: [{ line: firstLine }] });
        assert.equal(set.body.breakpoints[0].verified, true, set.body.breakpoints[0].message);
        assert.equal(set.body.breakpoints[0].line, firstLine);
        let stopped = s.dc.waitForEvent('stopped');
        await s.dc.configurationDoneRequest();
        const ev = (await stopped) as DebugProtocol.StoppedEvent;
        assert.equal(ev.body.reason, 'breakpoint');
        const tid = ev.body.threadId ?? 1;

        // The backtrace, frame by frame.
        const frames = (await s.dc.stackTraceRequest({ threadId: tid })).body.stackFrames;
        const mine = frames.map(ours);
        assert.deepEqual(
          mine.map((f) => `${f.fn}:${f.line}`),
          gdbBt.map((g) => `${g.fn}:${g.line}`),
        );
        gdbBt.forEach((g, i) => assert.ok(mine[i].file.endsWith('/' + g.file), `frame ${i} file ${mine[i].file} vs ${g.file}`));
        for (const f of frames) {
          assert.match(f.instructionPointerReference ?? '', /^0x[0-9a-f]+$/);
          assert.ok(f.column > 0, `frame ${f.name} has a column`);
        }
        const frameId = frames[0].id;
        const evaluate = async (expression: string): Promise<string> => (await s.dc.evaluateRequest({ expression, frameId, context: 'clipboard' })).body.result;

        // Arguments and *args exactly; locals by name, optimized-out status and shape
        // (at the function's first line none has been written, so their bits are old stack).
        const scopes = (await s.dc.scopesRequest({ frameId })).body.scopes;
        const vars = async (name: string): Promise<DebugProtocol.Variable[]> => (await s.dc.variablesRequest({ variablesReference: scopes.find((x) => x.name === name)?.variablesReference ?? -1 })).body.variables;
        const argVars = await vars('Arguments');
        assert.deepEqual(argVars.map((v) => v.name), [...gdbArgs.keys()]);
        for (const [n, v] of gdbArgs) assert.equal(normalize(await evaluate(n)), normalize(v), `argument ${n}`);
        assert.equal(normalize(await evaluate('*args')), normalize(printed(MARKS[2])), '*args');
        const localVars = await vars('Locals');
        assert.deepEqual(localVars.map((v) => v.name).sort(), [...gdbLocals.keys()].sort());
        for (const [n, v] of gdbLocals) {
          const o = await evaluate(n);
          if (v === '<optimized out>') assert.equal(o, v, `local ${n}`);
          else assert.equal(shape(o), shape(v), `local ${n}: ours ${o}, gdb ${v}`);
        }

        // Registers and memory.
        assert.equal(BigInt(await evaluate('$pc').then((x) => /0x[0-9a-f]+/.exec(x)?.[0] ?? x)), BigInt(printed(MARKS[4])), 'pc');
        assert.equal(BigInt(await evaluate('(unsigned long)$sp')), BigInt(printed(MARKS[5])), 'sp');
        const regs = await s.registers(frameId);
        assert.ok(regs.size > 30, `${regs.size} registers in the Registers scope`);
        const view = (await s.dc.customRequest('qemuKernel.registers', { frameId })).body as RegistersBody;
        const general = view.groups.find((g) => g.name === 'General');
        assert.ok(general, `the Registers view's groups: ${view.groups.map((g) => g.name).join(', ')}`);
        const pcRow = general.registers.find((r) => BigInt(r.raw ?? '-1') === BigInt(frames[0].instructionPointerReference ?? '-2'));
        assert.ok(pcRow, 'the pc is among the General registers of the Registers view');
        assert.ok(view.groups.some((g) => g.registers.some((r) => r.fields?.length)), 'some register is decoded into fields');

        // Disassembly at the pc: the arch's Capstone mode, symbolized.
        const dis = (await s.dc.customRequest('disassemble', { memoryReference: frames[0].instructionPointerReference, instructionCount: 8, resolveSymbols: true })).body as DebugProtocol.DisassembleResponse['body'];
        const insns = dis?.instructions ?? [];
        assert.equal(insns.length, 8);
        assert.equal(BigInt(insns[0].address), BigInt(frames[0].instructionPointerReference ?? '0'));
        assert.match(insns[0].symbol ?? '', /^kernel_clone\+0x[0-9a-f]+$/);
        assert.ok(insns.every((i) => i.instruction && i.presentationHint !== 'invalid'), JSON.stringify(insns.map((i) => i.instruction)));
        const banner = normalize(printed(MARKS[6])).replace(/^0x[0-9a-f]+ /, "");
        assert.match(banner, /^"Linux version 6\.1/);
        const addr = BigInt(await evaluate('(unsigned long)&linux_banner'));
        const mem = await s.dc.customRequest('readMemory', { memoryReference: `0x${addr.toString(16)}`, count: 64 });
        const bytes = Buffer.from((mem.body as DebugProtocol.ReadMemoryResponse['body'])?.data ?? '', 'base64');
        assert.equal(bytes.toString('latin1'), banner.slice(1, 65), 'readMemory at &linux_banner reads what gdb prints');

        // next, next, then step into copy_process and out again.
        for (const want of gdbNext) {
          stopped = s.dc.waitForEvent('stopped');
          await s.dc.nextRequest({ threadId: tid });
          assert.equal(((await stopped) as DebugProtocol.StoppedEvent).body.reason, 'step');
          const top = ours((await s.dc.stackTraceRequest({ threadId: tid, levels: 1 })).body.stackFrames[0]);
          assert.deepEqual([top.fn, top.line], ['kernel_clone', want]);
        }
        await s.dc.setBreakpointsRequest({ source: { path: fork }, breakpoints: [{ line: copyLine }] });
        stopped = s.dc.waitForEvent('stopped');
        await s.dc.continueRequest({ threadId: tid });
        await stopped;
        await s.dc.setBreakpointsRequest({ source: { path: fork }, breakpoints: [] });
        stopped = s.dc.waitForEvent('stopped');
        await s.dc.stepInRequest({ threadId: tid });
        await stopped;
        const inCallee = ours((await s.dc.stackTraceRequest({ threadId: tid, levels: 1 })).body.stackFrames[0]);
        assert.deepEqual([inCallee.fn, inCallee.line], [gdbStep.fn, gdbStep.line]);
        stopped = s.dc.waitForEvent('stopped');
        await s.dc.stepOutRequest({ threadId: tid });
        await stopped;
        const back = ours((await s.dc.stackTraceRequest({ threadId: tid, levels: 1 })).body.stackFrames[0]);
        assert.deepEqual([back.fn, back.line], [finish?.[1], Number(finish?.[3])]);

        // The console: consoles such as arm64's PL011 register after the first fork, so run on
        // (no breakpoints left) until the banner and the busybox shell's ready line are logged.
        await s.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
        await s.dc.continueRequest({ threadId: tid });
        const log = String((args as { consoleLog?: string }).consoleLog);
        const deadline = Date.now() + 120_000;
        const logged = (): string => (fs.existsSync(log) ? fs.readFileSync(log, 'latin1') : '');
        while (!logged().includes(READY_LINE) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        assert.match(logged(), /Linux version 6\.1/);
        // The arch's own busybox ran /init in userspace.
        assert.ok(logged().includes(READY_LINE), `no '${READY_LINE}' in the console log`);
      } finally {
        await s.stop();
      }
    });
  });
}
