/**
 * Code references in kernel log lines, on lines the sample guests printed (x86_64, arm64 and
 * riscv64 reports of the sample module's failures) and the older `[<addr>]` form.
 */
import * as assert from 'node:assert/strict';
import { codeRefs } from '../../src/kernel/logrefs';

describe('decode: code references in kernel log lines', () => {
  it('reads RIP:, a call trace entry with its module, and a WARNING line', () => {
    const rip = '[    1.668063] RIP: 0010:qkd_sample_fault_null+0x12/0x1c [qkd_sample]';
    const [r] = codeRefs(rip);
    assert.equal(rip.slice(r.start, r.end), 'qkd_sample_fault_null+0x12/0x1c');
    assert.deepEqual({ func: r.func, offset: r.offset, size: r.size, module: r.module, trap: r.trap, unreliable: r.unreliable }, { func: 'qkd_sample_fault_null', offset: 0x12n, size: 0x1cn, module: 'qkd_sample', trap: true, unreliable: false });
    const [c] = codeRefs('[    1.668063]  vfs_write+0xa6/0x182');
    assert.deepEqual({ func: c.func, module: c.module, trap: c.trap }, { func: 'vfs_write', module: undefined, trap: false });
    const [w] = codeRefs('[    1.572057] WARNING: CPU: 0 PID: 49 at /x/qkd_sample.c:188 qkd_sample_fault_warn+0x10/0x17 [qkd_sample]');
    assert.equal(w.func, 'qkd_sample_fault_warn');
    assert.equal(w.module, 'qkd_sample');
  });

  it('marks `? ` entries unreliable and reads arm64\'s pc/lr and riscv\'s epc', () => {
    const [q] = codeRefs('[    2.1] ? __die_body+0x1a/0x60');
    assert.equal(q.unreliable, true);
    assert.equal(q.func, '__die_body');
    const [pc] = codeRefs('[    1.156557] pc : qkd_sample_fault_warn+0x14/0x1c [qkd_sample]');
    assert.equal(pc.trap, true);
    const [lr] = codeRefs('[    2.058252] lr : qkd_sample_write+0x1c4/0x270 [qkd_sample]');
    assert.equal(lr.trap, false);
    const [epc] = codeRefs('[    2.7] epc : qkd_sample_fault_null+0x12/0x22 [qkd_sample]');
    assert.equal(epc.trap, true);
  });

  it('reads a module with its build ID, the old [<addr>] form, and names with dots', () => {
    const [b] = codeRefs(' foo_probe+0x44/0x90 [foo 0123456789abcdef0123456789abcdef01234567]');
    assert.equal(b.module, 'foo');
    assert.equal(b.buildId, '0123456789abcdef0123456789abcdef01234567');
    const [o] = codeRefs(' [<ffffffff810a1b2c>] do_one_initcall+0x50/0x1d0');
    assert.equal(o.func, 'do_one_initcall');
    const [d] = codeRefs(' qkd_sample_fault.constprop.0+0x8/0x10 [qkd_sample]');
    assert.equal(d.func, 'qkd_sample_fault.constprop.0');
    assert.deepEqual(codeRefs('[    1.5] qkd_sample: fault null on request'), []);
    assert.deepEqual(codeRefs('[    1.5] RIP: 0033:0x47b7a0'), []);
  });
});
