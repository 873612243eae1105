/**
 * Report blocks in kernel logs: the header lines as 6.1 prints them (the x86_64 sample
 * guest's WARN, Oops with its BUG line, KFENCE and UBSAN reports, sysrq's panic) and the
 * lockdep, hung-task and RCU-stall headers of kernel/locking/lockdep.c, kernel/hung_task.c
 * and kernel/rcu/tree_stall.h.
 */
import * as assert from 'node:assert/strict';
import { logText, reportBlocks } from '../../src/lsp/blocks';

const kinds = (text: string): Array<[string, number, number, string]> => reportBlocks(text.split('\n')).map((b) => [b.kind, b.start, b.end, b.severity]);

describe('kernel-log language server: report blocks', () => {
  it('strips the timestamp (and a caller id) the way the headers are matched', () => {
    assert.equal(logText('[    1.701125] WARNING: CPU: 0 PID: 49 at x.c:1 f+0x1/0x2'), 'WARNING: CPU: 0 PID: 49 at x.c:1 f+0x1/0x2');
    assert.equal(logText('[   12.000001][  T123] BUG: kernel NULL pointer dereference, address: 0000000000000000'), 'BUG: kernel NULL pointer dereference, address: 0000000000000000');
    assert.equal(logText('<4>[    2.1] Oops: 0000 [#1] SMP NOPTI'), 'Oops: 0000 [#1] SMP NOPTI');
  });

  it('a WARN, an Oops (its BUG and Oops lines one block) and a BUG, each to its end marker', () => {
    const log = [
      '[    1.6] qkd_sample: fault warn on request',
      '[    1.7] ------------[ cut here ]------------',
      '[    1.7] WARNING: CPU: 0 PID: 49 at /m/qkd_sample.c:193 qkd_sample_fault_warn+0x10/0x17 [qkd_sample]',
      '[    1.7] RIP: 0010:qkd_sample_fault_warn+0x10/0x17 [qkd_sample]',
      '[    1.7] ---[ end trace 0000000000000000 ]---',
      '[    1.8] BUG: kernel NULL pointer dereference, address: 0000000000000000',
      '[    1.8] #PF: supervisor read access in kernel mode',
      '[    1.8] Oops: 0000 [#1] SMP NOPTI',
      '[    1.8] ---[ end trace 0000000000000000 ]---',
      '[    1.9] kernel BUG at /m/qkd_sample.c:188!',
      '[    1.9] invalid opcode: 0000 [#2] SMP NOPTI',
      '[    1.9] ---[ end trace 0000000000000000 ]---',
      '/ # ',
    ].join('\n');
    assert.deepEqual(kinds(log), [
      ['warn', 2, 4, 'warning'],
      ['oops', 5, 8, 'error'],
      ['bug', 9, 11, 'error'],
    ]);
  });

  it('sanitizer reports between their rules, a panic, lockdep, a hung task and an RCU stall', () => {
    const log = [
      '==================================================================',
      'BUG: KFENCE: out-of-bounds write in qkd_sample_fault_oob+0x98/0xb3 [qkd_sample]',
      'Out-of-bounds write at 0x000000002ea2ee6d (128B right of kfence-#111):',
      '==================================================================',
      '================================================================================',
      'UBSAN: array-index-out-of-bounds in /m/qkd_sample.c:235:8',
      'index 4 is out of range for type \'int [4]\'',
      '================================================================================',
      'WARNING: possible circular locking dependency detected',
      '6.1.192 #1 Not tainted',
      'INFO: task kworker/0:1:12 blocked for more than 120 seconds.',
      'rcu: INFO: rcu_sched self-detected stall on CPU',
      'Kernel panic - not syncing: sysrq triggered crash',
      '---[ end Kernel panic - not syncing: sysrq triggered crash ]---',
    ].join('\n');
    assert.deepEqual(kinds(log), [
      ['kfence', 1, 3, 'error'],
      ['ubsan', 5, 7, 'warning'],
      ['lockdep', 8, 9, 'warning'],
      ['hung', 10, 10, 'warning'],
      ['rcu', 11, 11, 'warning'],
      ['panic', 12, 13, 'error'],
    ]);
  });

  it('an Oops in interrupt that ends in a panic is two blocks; a log with no report has none', () => {
    const log = ['Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000', 'Internal error: Oops: 96000006 [#1] PREEMPT SMP', 'Kernel panic - not syncing: Oops: Fatal exception in interrupt'].join('\n');
    assert.deepEqual(kinds(log), [
      ['oops', 0, 1, 'error'],
      ['panic', 2, 2, 'error'],
    ]);
    assert.deepEqual(reportBlocks(['Linux version 6.1.192', 'Run /init as init process']), []);
  });
});
