/**
 * The disassembler on real code: kernel_clone's bytes from the sample vmlinux, decoded by
 * Capstone and spelled our way, against binutils' objdump (the same libopcodes gdb uses) in
 * AT&T and Intel syntax. Only whitespace differs, and objdump writes a branch target without
 * `0x` where gdb (and we) write it with.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { getArch } from '../../src/arch';
import { Disassembler, callReturnAddress, type Instruction, type ReadCode, type Syntax } from '../../src/engine/disasm';
import { ElfFile } from '../../src/symbols/elf';
import { SymbolTable } from '../../src/symbols/symtab';
import { sampleGuest } from '../support/env';
import { nmAddress, objdumpBytes } from '../support/oracle';

interface ObjdumpLine {
  address: bigint;
  text: string;
}

const x86 = getArch('x86_64').disassembler;

/** objdump -d --no-show-raw-insn over [start, stop): each instruction's address and text. */
function objdump(vmlinux: string, start: bigint, stop: bigint, syntax: Syntax): ObjdumpLine[] {
  const args = ['-d', '--no-show-raw-insn', `--start-address=0x${start.toString(16)}`, `--stop-address=0x${stop.toString(16)}`, vmlinux];
  if (syntax === 'intel') args.unshift('-M', 'intel');
  const out = execFileSync('objdump', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const lines: ObjdumpLine[] = [];
  for (const l of out.split('\n')) {
    const m = /^([0-9a-f]{16}):\t(.*)$/.exec(l);
    if (m) lines.push({ address: BigInt('0x' + m[1]), text: m[2] });
  }
  return lines;
}

/** Whitespace collapsed; objdump's bare `ffffffff81042a25 <…>` and our `0xffffffff81042a25 <…>` made one form. */
function norm(text: string): string {
  return text
    .replace(/\b0x([0-9a-f]{16})(?= <)/g, '$1')
    .replace(/# 0x([0-9a-f]+)/, '# $1')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Without the symbol annotations (`<func+off>`) and objdump's `# address` comments. */
function bare(text: string): string {
  return norm(norm(text).replace(/\s*#.*$/, '').replace(/\s*<[^>]*>/g, ''));
}

/** Our text with a branch target written as objdump writes it (no `0x`), for targets with no symbol to annotate. */
function ours(i: Instruction): string {
  return i.target === undefined ? i.text : i.text.replace(`0x${i.target.toString(16)}`, i.target.toString(16));
}

describe('engine/disasm on the sample vmlinux (objdump as oracle)', function () {
  this.timeout(60_000);
  let vmlinux: string;
  let symbols: SymbolTable;
  let elf: ElfFile;
  let kc: bigint;
  /** kernel_clone's bytes as objdump -s prints them, plus the 64 bytes before it. */
  let code: Buffer;
  let codeAt: bigint;
  let read: ReadCode;

  before(function () {
    vmlinux = sampleGuest(this).vmlinux;
    elf = ElfFile.open(vmlinux);
    symbols = SymbolTable.fromElf(elf);
    kc = nmAddress(vmlinux, 'kernel_clone');
    codeAt = kc - 0x40n;
    code = objdumpBytes(vmlinux, codeAt, 0x40 + 0x400);
    read = async (addr, length) => {
      if (addr < codeAt || addr >= codeAt + BigInt(code.length)) return Buffer.alloc(0);
      const from = Number(addr - codeAt);
      return code.subarray(from, from + length);
    };
  });

  after(() => elf?.close());

  for (const syntax of ['att', 'intel'] as const) {
    it(`spells kernel_clone's first 40 instructions as objdump${syntax === 'intel' ? ' -M intel' : ''} does`, async () => {
      const want = objdump(vmlinux, kc, kc + 0x200n, syntax).slice(0, 40);
      assert.equal(want.length, 40, 'objdump listed 40 instructions');
      const dis = await Disassembler.create(x86, syntax, symbols);
      const list = await dis.forward(read, kc, 40);
      assert.deepEqual(
        list.map((i) => i.address),
        want.map((w) => w.address),
        'instruction boundaries',
      );
      list.forEach((i, n) => assert.equal(bare(ours(i)), bare(want[n].text), `instruction ${n} at 0x${i.address.toString(16)}`));
      // Branch and call targets carry the same <func+off> annotation objdump gives them.
      const annotated = list.filter((i) => i.target !== undefined);
      assert.ok(annotated.length >= 5, 'kernel_clone starts with calls and jumps');
      for (const i of annotated) assert.equal(norm(i.text), norm(want[list.indexOf(i)].text));
      assert.ok(list.some((i) => i.isCall && /<__fentry__>/.test(i.text)), 'the __fentry__ call is recognised as a call');
    });
  }

  it('names each address func+off, from the symbol table, as nm places the function', async () => {
    const dis = await Disassembler.create(x86, 'att', symbols);
    const list = await dis.forward(read, kc, 40);
    for (const i of list) assert.equal(dis.symbolAt(i.address), i.address === kc ? 'kernel_clone' : `kernel_clone+0x${(i.address - kc).toString(16)}`);
  });

  it('matches objdump on every instruction of kernel_clone and copy_process, both syntaxes', async () => {
    for (const name of ['kernel_clone', 'copy_process']) {
      const [sym] = symbols.lookup(name);
      const bytes = objdumpBytes(vmlinux, sym.value, sym.size);
      const readFn: ReadCode = async (addr, length) => {
        const from = Number(addr - sym.value);
        return from < 0 || from >= bytes.length ? Buffer.alloc(0) : bytes.subarray(from, from + length);
      };
      for (const syntax of ['att', 'intel'] as const) {
        const want = objdump(vmlinux, sym.value, sym.value + BigInt(sym.size), syntax);
        const dis = await Disassembler.create(x86, syntax, symbols);
        const list = await dis.forward(readFn, sym.value, want.length);
        const diffs = list.filter((i, n) => i.address !== want[n].address || bare(ours(i)) !== bare(want[n].text));
        assert.deepEqual(diffs.map((i) => `${i.address.toString(16)} ${i.text}`), [], `${name} (${syntax}, ${want.length} instructions)`);
      }
    }
  });

  it('finds the instructions before an address by decoding from the function start (x86 has no backward decoding)', async () => {
    const want = objdump(vmlinux, kc, kc + 0x200n, 'att');
    const dis = await Disassembler.create(x86, 'att', symbols);
    // The 20th instruction as the base, 10 before it and 10 from it.
    const win = await dis.window(read, want[20].address, -10, 20);
    assert.deepEqual(
      win.map((i) => i.address),
      want.slice(10, 30).map((w) => w.address),
    );
    // Positive offsets skip whole instructions.
    const later = await dis.window(read, want[20].address, 3, 2);
    assert.deepEqual(
      later.map((i) => i.address),
      [want[23].address, want[24].address],
    );
  });

  it('goes back across the function start into the padding and code before it, as objdump decodes them', async () => {
    const prev = symbols.locate(kc - 1n)?.symbol ?? symbols.locate(codeAt)?.symbol;
    const start = prev && prev.value >= codeAt ? prev.value : codeAt;
    const want = objdump(vmlinux, start, kc + 0x20n, 'att').filter((w) => w.address >= codeAt);
    const before = want.filter((w) => w.address < kc).slice(-5);
    assert.equal(before.length, 5, `objdump lists code before kernel_clone from 0x${start.toString(16)}`);
    const dis = await Disassembler.create(x86, 'att', symbols);
    const win = await dis.window(read, kc, -5, 8);
    assert.deepEqual(
      win.slice(0, 5).map((i) => [i.address, bare(ours(i))]),
      before.map((w) => [w.address, bare(w.text)]),
    );
    assert.equal(win[5].address, kc);
  });

  it('always returns the count asked for: unreadable memory becomes placeholders, before and after', async () => {
    const dis = await Disassembler.create(x86, 'att', symbols);
    // Only kernel_clone's first 16 bytes are readable.
    const short: ReadCode = async (addr, length) => {
      const end = kc + 16n;
      if (addr < kc || addr >= end) return Buffer.alloc(0);
      return (await read(addr, Math.min(length, Number(end - addr)))) as Buffer;
    };
    const win = await dis.window(short, kc, -3, 12);
    assert.equal(win.length, 12);
    assert.deepEqual(
      win.slice(0, 3).map((i) => i.invalid),
      [true, true, true],
    );
    const readable = win.filter((i) => !i.invalid);
    assert.equal(readable[0].address, kc);
    assert.ok(readable.every((i) => i.address + BigInt(i.bytes.length) <= kc + 16n));
    assert.ok(win.slice(3 + readable.length).every((i: Instruction) => i.invalid));
    const addrs = win.map((i) => i.address);
    assert.deepEqual([...addrs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), addrs, 'addresses ascend');
    assert.equal(new Set(addrs).size, addrs.length, 'addresses are distinct');
  });

  it('marks the NOP the running kernel has over the __fentry__ call as a no-op, and nothing else', async () => {
    // What the guest holds at kernel_clone once ftrace has patched the call (BYTES_NOP5 in
    // arch/x86/include/asm/nops.h; read from the running sample guest at the breakpoint).
    const patched = Buffer.concat([Buffer.from('0f1f440000', 'hex'), code.subarray(0x45, 0x40 + 0x80)]);
    const live: ReadCode = async (addr, length) => patched.subarray(Number(addr - kc), Number(addr - kc) + length);
    const want = objdump(vmlinux, kc, kc + 0x80n, 'att');
    const end = want.find((w) => w.address - kc >= 0x40n)?.address ?? kc + 0x40n;
    const dis = await Disassembler.create(x86, 'att', symbols);
    const steps = await dis.flows(live, kc, end);
    assert.ok(steps && steps.length > 5);
    assert.deepEqual(steps[0], { address: kc, size: 5, flow: 'next', repeats: false, nop: true });
    assert.ok(steps.slice(1).every((f) => !f.nop), 'push, mov, lea, rep stos, jne… are not no-ops');
    assert.ok(steps.some((f) => f.repeats), 'the rep stos is seen');
  });

  it('tells a call (nexti runs over it) from other instructions', async () => {
    const want = objdump(vmlinux, kc, kc + 0x200n, 'att');
    const call = want.find((w) => /^call\s+[0-9a-f]+ <copy_process>/.test(w.text));
    assert.ok(call, 'kernel_clone calls copy_process');
    const next = want[want.indexOf(call) + 1];
    assert.equal(await callReturnAddress(x86, read, call.address), next.address);
    const notCall = want.find((w) => /^(mov|push|jne|xor)\b/.test(w.text));
    assert.ok(notCall);
    assert.equal(await callReturnAddress(x86, read, notCall.address), undefined);
  });
});
