/**
 * Function breakpoints on the real sample guest that gdb resolves to several places: inlined
 * copies and compiler clones. (Line breakpoints, the backtrace and stepping against gdb are in
 * matrix.test.ts, for every arch.)
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import { GuestPaths } from '../../src/guest/build';
import { requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbBreakLocations, haveGdb } from '../support/gdb';
import { TestSession } from '../support/session';

describe('source-level debugging (gdb as oracle)', function () {
  this.timeout(600_000);
  let guest: GuestPaths;

  before(async function () {
    requireBuilt(this);
    requireOrSkip(this, haveGdb(), 'gdb is not installed (apt-get install gdb)');
    guest = sampleGuest(this);
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
