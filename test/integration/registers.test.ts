/**
 * The Registers view's data and memory through the adapter, at the first kernel_clone stop
 * of the real sample guest: groups from target.xml, flags and control registers decoded
 * (gdb's `info registers` flag lists as the oracle, and the kernel's own page table for
 * CR3), edits through `P`, caller frames, and virtual vs physical memory (Qqemu.PhyMemMode).
 */
import * as assert from 'node:assert/strict';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { RegistersBody, RegisterView } from '../../src/adapter/registers';
import { requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbSession, haveGdb } from '../support/gdb';
import { TestSession } from '../support/session';

const FLAGGED = ['eflags', 'cr0', 'cr4', 'efer'];

/** gdb prints flag registers as `cr0 0x80050033 [ PG AM WP NE ET MP PE ]`. */
function gdbFlags(out: string): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const line of out.split('\n')) {
    const r = /^(\w+)\s+0x[0-9a-f]+\s+\[([^\]]*)\]/.exec(line.trim());
    if (r) m.set(r[1], new Set(r[2].trim().split(/\s+/).filter((x) => x && !x.includes('='))));
  }
  return m;
}

describe('registers view and memory at kernel_clone', function () {
  this.timeout(600_000);
  let s: TestSession;
  let threadId = 1;
  let frameId = 0;
  let gdbOut = '';

  before(async function () {
    requireBuilt(this);
    requireOrSkip(this, haveGdb(), 'gdb is not installed (apt-get install gdb)');
    const g = sampleGuest(this);
    gdbOut = await gdbSession(g, ['break kernel_clone', 'continue', `info registers ${FLAGGED.join(' ')} cr3`]);
    s = new TestSession(this);
    await s.start();
    const { stop } = await s.launchToBreak(s.launchArgs({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, memory: '512M', smp: 1 }), ['kernel_clone']);
    threadId = stop.body.threadId as number;
    frameId = (await s.topFrame(threadId)).id;
  });

  after(async () => {
    await s?.stop();
  });

  async function view(args: { frameId?: number; threadId?: number; format?: string } = { frameId }): Promise<Map<string, RegisterView & { group: string }>> {
    const body = (await s.dc.customRequest('qemuKernel.registers', args)).body as RegistersBody;
    return new Map(body.groups.flatMap((g) => g.registers.map((r) => [r.name, { ...r, group: g.name }] as const)));
  }

  async function evaluate(expression: string): Promise<DebugProtocol.EvaluateResponse['body']> {
    return (await s.dc.evaluateRequest({ expression, frameId, context: 'watch' })).body;
  }

  async function read(memoryReference: string, count: number): Promise<Buffer> {
    const r = (await s.dc.customRequest('readMemory', { memoryReference, count })).body as DebugProtocol.ReadMemoryResponse['body'];
    return Buffer.from(r?.data ?? '', 'base64');
  }

  it('groups every register target.xml describes, rip first among the general ones', async () => {
    const body = (await s.dc.customRequest('qemuKernel.registers', { frameId })).body as RegistersBody;
    assert.deepEqual(body.groups.map((g) => g.name), ['General', 'Flags', 'Segment', 'Control', 'FPU', 'SSE']);
    const regs = await view();
    assert.equal(regs.get('rip')?.group, 'General');
    assert.equal(regs.get('cr3')?.group, 'Control');
    assert.equal(regs.get('xmm15')?.group, 'SSE');
    const fromScope = await s.registers(frameId);
    assert.equal(regs.size, fromScope.size, 'the view and the Registers scope show the same registers');
    for (const n of ['rip', 'rsp', 'rdi', 'cr3', 'eflags', 'efer']) assert.equal(BigInt(regs.get(n)?.value ?? ''), BigInt(fromScope.get(n) ?? ''), n);
    assert.equal(BigInt(regs.get('rip')?.value ?? '0'), BigInt((await evaluate('(unsigned long)kernel_clone')).result));
  });

  it('decodes EFLAGS, CR0, CR4 and EFER into the bits gdb names', async () => {
    const theirs = gdbFlags(gdbOut);
    const regs = await view();
    for (const n of FLAGGED) {
      const set = new Set((regs.get(n)?.fields ?? []).filter((f) => f.toggleable && f.value === '1').map((f) => f.name));
      assert.ok(theirs.has(n), `gdb printed ${n}:\n${gdbOut}`);
      assert.deepEqual([...set].sort(), [...(theirs.get(n) as Set<string>)].sort(), `${n} bits`);
    }
    const cr0 = regs.get('cr0')?.fields?.find((f) => f.name === 'PG');
    assert.equal(cr0?.value, '1', 'paging is on in a running kernel');
    assert.match(cr0?.description ?? '', /Paging/);
  });

  it("splits CR3: its page-directory base is the physical address of the kernel's init_top_pgt", async () => {
    const cr3 = (await view()).get('cr3');
    const pdbr = cr3?.fields?.find((f) => f.name === 'PDBR');
    assert.ok(pdbr, `cr3 fields: ${JSON.stringify(cr3?.fields)}`);
    // The kernel image is mapped at __START_KERNEL_map (0xffffffff80000000) + phys_base.
    const virt = BigInt((await evaluate('(unsigned long)&init_top_pgt')).result);
    const physBase = BigInt((await evaluate('*(unsigned long *)&phys_base')).result);
    assert.equal(BigInt(pdbr.value), virt - 0xffffffff80000000n + physBase);
    const gdbCr3 = /^cr3\s+(0x[0-9a-f]+)/m.exec(gdbOut);
    assert.ok(gdbCr3, 'gdb printed cr3');
    assert.equal(BigInt(pdbr.value), BigInt(gdbCr3[1]) & ~0xfffn);
    assert.ok(cr3?.fields?.some((f) => f.name === 'PWT') || cr3?.fields?.some((f) => f.name === 'PCID'), 'the low bits are split as CR4.PCIDE says');
  });

  it('reads physical memory with a phys: reference: the top-level page table is the same bytes both ways', async () => {
    const pdbr = (await view()).get('cr3')?.fields?.find((f) => f.name === 'PDBR')?.value as string;
    const virt = (await evaluate('(unsigned long)&init_top_pgt')).result;
    const viaPhys = await read(`phys:${pdbr}`, 4096);
    const viaVirt = await read(`0x${BigInt(virt).toString(16)}`, 4096);
    assert.equal(viaPhys.length, 4096);
    assert.ok(viaPhys.some((b) => b !== 0), 'the kernel page table has entries');
    assert.ok(viaPhys.equals(viaVirt));
    // The physical mode must not leak into later virtual reads.
    const again = await read(`0x${BigInt(virt).toString(16)}`, 16);
    assert.ok(again.equals(viaVirt.subarray(0, 16)));
    const phys0 = await read(`phys:${pdbr}`, 16);
    const virt0 = await read(pdbr, 16);
    assert.ok(!(virt0.length === 16 && virt0.equals(phys0)) || BigInt(pdbr) >= 0xffff800000000000n, 'a physical address read as virtual is not the same memory');
  });

  it('writes memory, virtual and physical, and the new bytes read back both ways', async () => {
    const addr = BigInt((await evaluate('(unsigned long)&init_uts_ns.name.nodename')).result);
    const phys = addr - 0xffffffff80000000n + BigInt((await evaluate('*(unsigned long *)&phys_base')).result);
    const before = await read(`0x${addr.toString(16)}`, 8);
    try {
      const w1 = await s.dc.customRequest('writeMemory', { memoryReference: `0x${addr.toString(16)}`, data: Buffer.from('qkd-virt').toString('base64') });
      assert.equal((w1.body as DebugProtocol.WriteMemoryResponse['body'])?.bytesWritten, 8);
      assert.equal((await read(`phys:0x${phys.toString(16)}`, 8)).toString(), 'qkd-virt');
      await s.dc.customRequest('writeMemory', { memoryReference: `phys:0x${phys.toString(16)}`, offset: 4, data: Buffer.from('phys').toString('base64') });
      assert.equal((await read(`0x${addr.toString(16)}`, 8)).toString(), 'qkd-phys');
      assert.match((await evaluate('init_uts_ns.name.nodename')).result, /^"qkd-phys/);
    } finally {
      await s.dc.customRequest('writeMemory', { memoryReference: `0x${addr.toString(16)}`, data: before.toString('base64') });
    }
    assert.ok((await read(`0x${addr.toString(16)}`, 8)).equals(before));
  });

  it('names a bad memory reference and how to write one', async () => {
    await assert.rejects(s.dc.customRequest('readMemory', { memoryReference: 'init_task', count: 4 }), /not a memory address.*phys:0x/);
  });

  it('shows decimal on request, and edits a register through P, flipping a flag bit too', async () => {
    const hex = await view();
    const dec = await view({ frameId, format: 'decimal' });
    assert.equal(dec.get('rsp')?.value, BigInt(hex.get('rsp')?.value ?? '').toString());
    const oldRax = hex.get('rax')?.raw as string;
    const oldFlags = hex.get('eflags')?.raw as string;
    try {
      const r = await s.dc.customRequest('qemuKernel.setRegister', { frameId, name: 'rax', value: '0x1234 + 1' });
      assert.equal(BigInt((r.body as { value: string }).value), 0x1235n);
      assert.equal(BigInt((await evaluate('$rax')).result), 0x1235n);
      const cf = hex.get('eflags')?.fields?.find((f) => f.name === 'CF');
      assert.ok(cf?.toggled, 'CF can be flipped');
      await s.dc.customRequest('qemuKernel.setRegister', { frameId, name: 'eflags', value: cf.toggled });
      const after = (await view()).get('eflags')?.fields?.find((f) => f.name === 'CF');
      assert.equal(after?.value, cf.value === '1' ? '0' : '1');
    } finally {
      await s.dc.customRequest('qemuKernel.setRegister', { frameId, name: 'rax', value: oldRax });
      await s.dc.customRequest('qemuKernel.setRegister', { frameId, name: 'eflags', value: oldFlags });
    }
    const restored = await view();
    assert.equal(restored.get('rax')?.raw, oldRax);
    assert.equal(restored.get('eflags')?.raw, oldFlags);
  });

  it("follows a caller frame: its pc, and 'not saved' for registers a call clobbers; edits refused", async () => {
    const frames = (await s.dc.stackTraceRequest({ threadId, startFrame: 0, levels: 3 })).body.stackFrames;
    assert.ok(frames.length >= 2);
    const caller = frames.find((f, i) => i > 0 && f.instructionPointerReference !== frames[0].instructionPointerReference) ?? frames[1];
    const regs = await view({ frameId: caller.id });
    assert.equal(BigInt(regs.get('rip')?.value ?? ''), BigInt(caller.instructionPointerReference ?? '0'));
    assert.equal(regs.get('rax')?.value, '<not saved>');
    assert.ok(regs.get('rip')?.readOnly);
    await assert.rejects(s.dc.customRequest('qemuKernel.setRegister', { frameId: caller.id, name: 'rbx', value: '1' }), /innermost frame/);
  });
});
