/**
 * The sample module's failures on demand (`echo fault KIND > /dev/qkd_sample`), which the
 * exception filters and the kernel-log tools are tested against: on the x86_64 sample guest,
 * each report names the module's own function, and the faulting instruction its RIP gives is
 * the marked line of qkd_sample.c by addr2line on the .ko. The sample kernel is built from
 * tinyconfig without CONFIG_BUG: BUG() is a bare invalid-opcode Oops and WARN_ON() is silent.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GuestPaths } from '../../src/guest/build';
import { waitForConsole } from '../../src/qemu/console';
import { artifact, requireBuilt, sampleGuest } from '../support/env';
import { markerLine, startOwnGuest, type OwnGuest } from '../support/handover';

/** The source line addr2line gives for `func+off` in the module (functions that end in a fault sit in .text.unlikely). */
function lineOf(ko: string, func: string, off: bigint): string {
  const sym = new RegExp(`^([0-9a-f]+) .* F (\\S+)\\s+[0-9a-f]+ ${func}$`, 'm').exec(execFileSync('objdump', ['-t', ko], { encoding: 'utf8' }));
  assert.ok(sym, `${func} is not in ${ko}`);
  const addr = BigInt('0x' + sym[1]) + off;
  return execFileSync('addr2line', ['-e', ko, '-j', sym[2], `0x${addr.toString(16)}`], { encoding: 'utf8' }).trim();
}

describe('x86_64: the sample module fails on demand', function () {
  this.timeout(300_000);
  let g: GuestPaths;
  let vm: OwnGuest | undefined;
  let source = '';

  before(async function () {
    requireBuilt(this);
    g = sampleGuest(this, 'x86_64');
    assert.ok(g.modules?.sample, 'the sample module is built');
    source = path.join(path.dirname(g.modules.sample), 'qkd_sample.c');
    vm = await startOwnGuest(g, artifact(this, 'console.log'), 'qkd.load=qkd_sample');
  });

  after(async () => {
    await vm?.console.close();
    await vm?.kill();
  });

  /** Run `echo fault KIND` in a child shell (an Oops kills the writer) and wait for `until`. */
  async function fault(kind: string, until: RegExp): Promise<string> {
    const own = vm as OwnGuest;
    const from = fs.statSync(own.consoleLog).size;
    own.console.write(`sh -c 'echo fault ${kind} > /dev/qkd_sample'; echo fault-${kind}-rc=$?\n`);
    return waitForConsole(own.consoleLog, until, 60_000, from);
  }

  function faultingLine(text: string, func: string): string {
    const m = new RegExp(`RIP: 0010:${func}\\+0x([0-9a-f]+)/0x[0-9a-f]+ \\[qkd_sample\\]`).exec(text);
    assert.ok(m, text);
    return lineOf((g.modules as { sample: string }).sample, func, BigInt('0x' + m[1]));
  }

  it('warn: WARN_ON() fires and the write goes on (silent without CONFIG_BUG)', async () => {
    const text = await fault('warn', /fault-warn-rc=(\d+)/);
    assert.match(text, /qkd_sample: fault warn on request/);
    assert.match(text, /fault-warn-rc=0/);
  });

  it('null: an Oops at the dereference, whose RIP addr2line puts on the marked line', async () => {
    const text = await fault('null', /fault-null-rc=\d+/);
    assert.match(text, /BUG: kernel NULL pointer dereference, address: 0000000000000000/);
    assert.match(text, /Oops: 0000 \[#\d+\]/);
    assert.equal(faultingLine(text, 'qkd_sample_fault_null'), `${source}:${markerLine(source, 'fault-null')}`);
    // The writer was killed (SIGKILL for an Oops in its syscall), not the guest.
    assert.match(text, /fault-null-rc=137/);
  });

  it('bug: BUG() as an invalid-opcode Oops at the marked line', async () => {
    const text = await fault('bug', /fault-bug-rc=\d+/);
    assert.match(text, /invalid opcode: 0000 \[#\d+\]/);
    assert.equal(faultingLine(text, 'qkd_sample_fault_bug'), `${source}:${markerLine(source, 'fault-bug')}`);
  });

  it('oob: refused without KASAN', async () => {
    const text = await fault('oob', /fault-oob-rc=\d+/);
    assert.match(text, /fault-oob-rc=1/);
  });

  it('panic: the kernel panics with the module\'s message (last: the guest is gone after it)', async () => {
    const text = await fault('panic', /end Kernel panic - not syncing/);
    assert.match(text, /Kernel panic - not syncing: qkd_sample: panic on request \(fault panic\)/);
  });
});
