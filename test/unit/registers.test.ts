import * as assert from 'node:assert/strict';
import { leToBigInt } from '../../src/engine/target';
import { errorFromReply, RspErrorReply } from '../../src/rsp/errors';
import { parseStopReply } from '../../src/rsp/stop';
import { parseTargetDescription, splitRegisterBlock, xmlStartTags } from '../../src/rsp/targetxml';
import { fetchRecorded, payload } from './fixture';

describe('rsp/targetxml and register blocks (QEMU 7.2 x86_64)', () => {
  it('follows xi:include and numbers registers as gdb does', async () => {
    const desc = await parseTargetDescription('target.xml', fetchRecorded);
    assert.equal(desc.architecture, 'i386:x86-64');
    const byName = new Map(desc.registers.map((r) => [r.name, r]));
    assert.equal(byName.get('rax')?.regnum, 0);
    assert.equal(byName.get('rip')?.regnum, 16);
    assert.equal(byName.get('eflags')?.regnum, 17);
    assert.equal(byName.get('eflags')?.bitsize, 32);
    assert.equal(byName.get('cs')?.regnum, 18);
    assert.equal(byName.get('xmm0')?.bitsize, 128);
    assert.ok(byName.has('cr3') && byName.has('fs_base'), 'control registers and fs_base are described');
  });

  it('splits the 608-byte g reply: the CPU is at the reset vector f000:fff0', async () => {
    const desc = await parseTargetDescription('target.xml', fetchRecorded);
    const block = Buffer.from(payload('g'), 'hex');
    assert.equal(block.length, 608);
    const regs = splitRegisterBlock(desc.registers, block);
    const value = (name: string): bigint => leToBigInt(regs.get(desc.registers.find((r) => r.name === name)!.regnum)!);
    assert.equal(value('rip'), 0xfff0n);
    assert.equal(value('cs'), 0xf000n);
    // `p 0x10` (rip) agrees with the block.
    assert.equal(leToBigInt(Buffer.from(payload('p10'), 'hex')), value('rip'));
    // Registers past the block's end are not invented.
    const total = [...regs.values()].reduce((n, b) => n + b.length, 0);
    assert.equal(total, 608);
  });

  it('parses the stop reply and the thread list', () => {
    const stop = parseStopReply(payload('?'));
    assert.equal(stop.kind, 'signal');
    assert.ok(stop.kind === 'signal' && stop.signal === 5 && stop.thread === 1);
    assert.equal(payload('qfThreadInfo'), 'm01');
    assert.equal(payload('qsThreadInfo'), 'l');
    assert.deepEqual(parseStopReply('W00'), { kind: 'exited', code: 0 });
    assert.deepEqual(parseStopReply('X09'), { kind: 'terminated', signal: 9 });
  });

  it('tells an Exx error from an unsupported (empty) reply', () => {
    const e = errorFromReply('m0,1000', payload('m0,1000'));
    assert.ok(e instanceof RspErrorReply);
    assert.equal(e.code, 0x22);
    assert.match(e.message, /E22 .*m0,1000/);
    assert.equal(payload('qFoo'), '');
    assert.equal(errorFromReply('qFoo', ''), undefined);
  });

  it('reads memory bytes as QEMU sent them (the reset vector holds a far jump)', () => {
    const bytes = Buffer.from(payload('mffff0,10'), 'hex');
    assert.equal(bytes.length, 16);
    assert.equal(bytes[0], 0xea, 'ljmp opcode');
  });

  it('tokenizes XML start tags with attributes and text', () => {
    const tags = [...xmlStartTags('<?xml version="1.0"?><!-- c --><target><architecture>arm</architecture><reg name="a&amp;b" bitsize=\'8\'/></target>')];
    assert.deepEqual(tags.map((t) => t.name), ['target', 'architecture', 'reg']);
    assert.equal(tags[1].text, 'arm');
    assert.equal(tags[2].attrs.get('name'), 'a&b');
    assert.equal(tags[2].attrs.get('bitsize'), '8');
  });
});
