/**
 * Source-level debugging against the real sample guest, with gdb 13 on the same guest as the
 * oracle in the same test: a line breakpoint in kernel/fork.c, the whole backtrace, two
 * `next`s, a step into copy_process and a step back out.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import { GuestPaths } from '../../src/guest/build';
import { requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbBreakLocations, gdbSession, haveGdb } from '../support/gdb';
import { TestSession } from '../support/session';

interface Where {
  fn: string;
  file: string;
  line: number;
}

/** Lines of fork.c found by their text, so the test follows the source rather than numbers. */
function lineOf(file: string, text: string, after = 0): number {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l, n) => n >= after && l.includes(text));
  if (i < 0) throw new Error(`'${text}' not found in ${file}`);
  return i + 1;
}

function parseBacktrace(text: string): Where[] {
  const out: Where[] = [];
  for (const line of text.split('\n')) {
    const m = /^#(\d+)\s+(?:0x[0-9a-f]+ in )?([\w.]+) \(.*\) at (\S+):(\d+)\s*$/.exec(line);
    if (m) out.push({ fn: m[2], file: m[3], line: Number(m[4]) });
  }
  return out;
}

/** The source lines gdb printed after each `next`/`step` (a line number, a tab, the text). */
function sourceLines(text: string): number[] {
  return text
    .split('\n')
    .map((l) => /^(\d+)\t/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
}

function ours(f: DebugProtocol.StackFrame): Where {
  return { fn: f.name.replace(/ \[inlined\]$/, ''), file: f.source?.path ?? '', line: f.line };
}

describe('source-level debugging (gdb as oracle)', function () {
  this.timeout(600_000);
  let guest: GuestPaths;
  let fork: string;
  let firstLine: number;
  let copyLine: number;
  let gdbOut = '';
  const marks = ['@@BT', '@@NEXT1', '@@NEXT2', '@@STEP', '@@FINISH'];

  before(async function () {
    requireBuilt(this);
    requireOrSkip(this, haveGdb(), 'gdb is not installed (apt-get install gdb)');
    guest = sampleGuest(this);
    fork = path.join(guest.source, 'kernel', 'fork.c');
    const def = lineOf(fork, 'pid_t kernel_clone(struct kernel_clone_args *args)');
    firstLine = lineOf(fork, 'u64 clone_flags = args->flags;', def);
    copyLine = lineOf(fork, 'p = copy_process(NULL, trace, NUMA_NO_NODE, args);', def);
    gdbOut = await gdbSession(guest, [
      `break kernel/fork.c:${firstLine}`,
      'continue',
      `echo ${marks[0]}\\n`,
      'bt',
      `echo ${marks[1]}\\n`,
      'next',
      `echo ${marks[2]}\\n`,
      'next',
      `tbreak kernel/fork.c:${copyLine}`,
      'continue',
      `echo ${marks[3]}\\n`,
      'step',
      'bt 1',
      `echo ${marks[4]}\\n`,
      'finish',
    ]);
  });

  function section(mark: string): string {
    const i = gdbOut.indexOf(mark);
    const rest = gdbOut.slice(i + mark.length);
    const next = marks.map((m) => rest.indexOf(m)).filter((x) => x >= 0);
    return rest.slice(0, next.length ? Math.min(...next) : undefined);
  }

  it('line breakpoint, backtrace, next, step in and step out agree with gdb', async function () {
    const gdbBt = parseBacktrace(section(marks[0]));
    assert.ok(gdbBt.length >= 5, `gdb printed a backtrace:\n${gdbOut}`);
    assert.equal(gdbBt[gdbBt.length - 1].fn, 'secondary_startup_64');
    const gdbNext = [sourceLines(section(marks[1]))[0], sourceLines(section(marks[2]))[0]].filter((n) => n !== undefined);
    assert.equal(gdbNext.length, 2, `gdb printed two lines for two nexts:\n${gdbOut}`);
    const gdbStep = parseBacktrace(section(marks[3]))[0];
    // gdb prints "Run till exit from #0 …" (on stderr, so anywhere) and then the caller's location.
    const finish = section(marks[4])
      .split('\n')
      .filter((l) => !l.startsWith('Run till exit'))
      .map((l) => /^(?:0x[0-9a-f]+ in )?([\w.]+) \(.*\) at (\S+):(\d+)\s*$/.exec(l))
      .find((m) => m !== null);
    assert.ok(gdbStep && finish, `gdb stepped in and finished:\n${gdbOut}`);

    const s = new TestSession(this);
    try {
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      await s.dc.launchRequest(s.launchArgs({ kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd }));
      await initialized;
      const set = await s.dc.setBreakpointsRequest({ source: { path: fork }, breakpoints: [{ line: firstLine }] });
      const bp = set.body.breakpoints[0];
      assert.equal(bp.verified, true, bp.message);
      assert.equal(bp.line, firstLine);
      let stopped = s.dc.waitForEvent('stopped');
      await s.dc.configurationDoneRequest();
      let ev = (await stopped) as DebugProtocol.StoppedEvent;
      assert.equal(ev.body.reason, 'breakpoint');
      const tid = ev.body.threadId ?? 1;

      // The whole stack, frame by frame, as gdb's bt at the same stop.
      const st = await s.dc.stackTraceRequest({ threadId: tid });
      const mine = st.body.stackFrames.map(ours);
      assert.equal(mine.length, gdbBt.length, `frames: ours ${JSON.stringify(mine)} vs gdb ${JSON.stringify(gdbBt)}`);
      gdbBt.forEach((g, i) => {
        assert.equal(mine[i].fn, g.fn, `frame ${i} function`);
        assert.ok(mine[i].file.endsWith('/' + g.file), `frame ${i} file ${mine[i].file} vs ${g.file}`);
        assert.equal(mine[i].line, g.line, `frame ${i} (${g.fn}) line`);
      });
      for (const f of st.body.stackFrames) {
        assert.match(f.instructionPointerReference ?? '', /^0x[0-9a-f]+$/);
        assert.ok(f.column > 0, `frame ${f.name} has a column`);
      }

      // Two nexts land where gdb's two nexts landed.
      for (const want of gdbNext) {
        stopped = s.dc.waitForEvent('stopped');
        await s.dc.nextRequest({ threadId: tid });
        ev = (await stopped) as DebugProtocol.StoppedEvent;
        assert.equal(ev.body.reason, 'step');
        const top = ours((await s.dc.stackTraceRequest({ threadId: tid, levels: 1 })).body.stackFrames[0]);
        assert.deepEqual([top.fn, top.line], ['kernel_clone', want]);
      }

      // Run to the copy_process call, step into it, and back out, as gdb's step and finish.
      await s.dc.setBreakpointsRequest({ source: { path: fork }, breakpoints: [{ line: copyLine }] });
      stopped = s.dc.waitForEvent('stopped');
      await s.dc.continueRequest({ threadId: tid });
      ev = (await stopped) as DebugProtocol.StoppedEvent;
      assert.equal(ours((await s.dc.stackTraceRequest({ threadId: tid, levels: 1 })).body.stackFrames[0]).line, copyLine);
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
    } finally {
      await s.stop();
    }
  });

  it('function breakpoints cover inlined copies and compiler clones as gdb\'s do, and stop in them', async function () {
    // mm_init: two copies, neither with an ELF symbol of that name (an inlined call in
    // init/main.c and the clone mm_init.constprop.0.isra.0 in kernel/fork.c).
    // arch_dup_task_struct: an ELF symbol plus an inlined copy, added once indexed.
    const gdbLocs = gdbBreakLocations(guest.vmlinux, ['mm_init', 'arch_dup_task_struct']);
    const wantMm = gdbLocs.get('mm_init') ?? [];
    const wantDup = gdbLocs.get('arch_dup_task_struct') ?? [];
    assert.ok(wantMm.length >= 2 && wantDup.length >= 2, JSON.stringify([...gdbLocs]));
    const s = new TestSession(this);
    const changed: DebugProtocol.Breakpoint[] = [];
    s.dc.on('breakpoint', (e: DebugProtocol.BreakpointEvent) => changed.push(e.body.breakpoint));
    try {
      await s.start();
      const { stop, bps } = await s.launchToBreak(s.launchArgs({ sampleGuest: true }), ['mm_init', 'arch_dup_task_struct']);
      assert.equal(bps[0].verified, true);
      assert.equal(bps[0].message, `${wantMm.length} locations`);
      // The out-of-line copy answers at once; the inlined one arrives with a 'changed' event
      // unless the index was already built when the request came.
      const deadline = Date.now() + 60_000;
      const dupNote = (): string | undefined => [bps[1], ...changed.filter((b) => b.id === bps[1].id)].pop()?.message;
      while (dupNote() !== `${wantDup.length} locations` && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      assert.equal(dupNote(), `${wantDup.length} locations`);
      // start_kernel runs mm_init (inlined) long before the first fork.
      assert.deepEqual(stop.body.hitBreakpointIds, [bps[0].id]);
      const top = await s.topFrame(stop.body.threadId ?? 1);
      assert.match(top.name, /^mm_init \[inlined\]$/, 'a stop on a breakpoint set on an inlined function shows that function, as gdb does');
      assert.match(top.source?.path ?? '', /init\/main\.c$/);
      // Then mm_alloc's clone in kernel/fork.c (x86's poking_init), then the first fork.
      const seen: string[] = [];
      let tid = stop.body.threadId ?? 1;
      for (let i = 0; i < 6 && !seen.some((x) => x.startsWith('arch_dup_task_struct')); i++) {
        const next = s.dc.waitForEvent('stopped');
        await s.dc.continueRequest({ threadId: tid });
        const st = (await next) as DebugProtocol.StoppedEvent;
        tid = st.body.threadId ?? tid;
        const f = await s.topFrame(tid);
        const id = st.body.hitBreakpointIds?.[0];
        seen.push(`${f.name.replace(' [inlined]', '')} ${path.basename(f.source?.path ?? '')} ${id === bps[0].id ? 'bp1' : id === bps[1].id ? 'bp2' : String(id)}`);
      }
      assert.ok(seen.includes('mm_init fork.c bp1'), `the clone mm_init.constprop.0.isra.0 was hit: ${seen.join('; ')}`);
      assert.ok(seen.some((x) => /^arch_dup_task_struct \S+ bp2$/.test(x)), `arch_dup_task_struct was hit: ${seen.join('; ')}`);
    } finally {
      await s.stop();
    }
  });
});
