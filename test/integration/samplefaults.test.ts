/**
 * The sample module's failures on demand (`echo fault KIND > /dev/qkd_sample`), which the
 * exception filters and the kernel-log tools are tested against: on the x86_64 sample guest,
 * each report names the module's own function, and the faulting instruction its RIP gives is
 * the marked line of qkd_sample.c by addr2line on the .ko. The sample kernel has CONFIG_BUG
 * with DEBUG_BUGVERBOSE (file:line in BUG and WARN reports), KFENCE and UBSAN.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import type { GuestPaths } from '../../src/guest/build';
import { artifact, requireBuilt, sampleGuest } from '../support/env';
import { assertLogged, logged, markerLine, startOwnGuest, waitForLive, type OwnGuest } from '../support/handover';

/** The source line addr2line gives for `func+off` in the module (functions that end in a fault sit in .text.unlikely). */
function lineOf(ko: string, func: string, off: bigint): string {
  const sym = new RegExp(`^([0-9a-f]+) .* F (\\S+)\\s+[0-9a-f]+ ${func}$`, 'm').exec(execFileSync('objdump', ['-t', ko], { encoding: 'utf8' }));
  assert.ok(sym, `${func} is not in ${ko}`);
  const addr = BigInt('0x' + sym[1]) + off;
  return execFileSync('addr2line', ['-e', ko, '-j', sym[2], `0x${addr.toString(16)}`], { encoding: 'utf8' })
    .trim()
    .replace(/ \(discriminator \d+\)$/, '');
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
    const from = own.live().length;
    own.console.write(`sh -c 'echo fault ${kind} > /dev/qkd_sample'; echo fault-${kind}-rc=$?\n`);
    return waitForLive(own, until, 60_000, from);
  }

  function faultingLine(text: string, func: string): string {
    const m = new RegExp(`RIP: 0010:${logged(func)}\\+0x([0-9a-f]+)/0x[0-9a-f]+ \\[${logged('qkd_sample')}\\]`).exec(text);
    assert.ok(m, text);
    return lineOf((g.modules as { sample: string }).sample, func, BigInt('0x' + m[1]));
  }

  it('warn: a WARNING at the marked line, and the write goes on', async () => {
    const text = await fault('warn', /fault-warn-rc=(\d+)/);
    const m = new RegExp(`WARNING: CPU: \\d+ PID: \\d+ at (\\S+) ${logged('qkd_sample_fault_warn')}\\+`).exec(text);
    assert.ok(m, text);
    assertLogged(m[1], `${source}:${markerLine(source, 'fault-warn')}`);
    assert.equal(faultingLine(text, 'qkd_sample_fault_warn'), `${source}:${markerLine(source, 'fault-warn')}`);
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

  it('bug: "kernel BUG at" the marked line, then an invalid-opcode Oops there', async () => {
    const text = await fault('bug', /fault-bug-rc=\d+/);
    assert.match(text, new RegExp(`kernel BUG at ${logged(`${source}:${markerLine(source, 'fault-bug')}`)}!`));
    assert.match(text, /invalid opcode: 0000 \[#\d+\]/);
    assert.equal(faultingLine(text, 'qkd_sample_fault_bug'), `${source}:${markerLine(source, 'fault-bug')}`);
  });

  it('oob: KFENCE reports the write past the buffer at the marked line', async () => {
    const text = await fault('oob', /fault-oob-rc=\d+/);
    const m = new RegExp(`BUG: KFENCE: out-of-bounds write in ${logged('qkd_sample_fault_oob')}\\+0x([0-9a-f]+)/`).exec(text);
    assert.ok(m, text);
    assert.equal(lineOf((g.modules as { sample: string }).sample, 'qkd_sample_fault_oob', BigInt('0x' + m[1])), `${source}:${markerLine(source, 'fault-oob')}`);
    assert.match(text, /fault-oob-rc=0/);
  });

  it('ubsan: UBSAN reports the index out of bounds at the marked line, and the write goes on', async () => {
    const text = await fault('ubsan', /fault-ubsan-rc=\d+/);
    const m = /UBSAN: array-index-out-of-bounds in (\S+):\d+\s/.exec(text);
    assert.ok(m, text);
    assertLogged(m[1], `${source}:${markerLine(source, 'fault-ubsan')}`);
    assert.match(text, /fault-ubsan-rc=0/);
  });

  it('panic: the kernel panics with the module\'s message (last: the guest is gone after it)', async () => {
    const text = await fault('panic', /end Kernel panic - not syncing/);
    assert.match(text, /Kernel panic - not syncing: qkd_sample: panic on request \(fault panic\)/);
  });
});
