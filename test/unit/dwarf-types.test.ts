/**
 * C types read from the real sample vmlinux's DWARF, with gdb 13's `whatis`, `sizeof` and
 * member offsets on the same file as the oracle; and value rendering over those real types
 * with guest-like bytes.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { sizeOf, strip, typeName, type CType } from '../../src/symbols/dwarf/types';
import { ElfFile } from '../../src/symbols/elf';
import { LocalIndex } from '../../src/symbols/index/client';
import { SymbolTable } from '../../src/symbols/symtab';
import { Program } from '../../src/engine/values/program';
import { formatValue, childrenOf, hasChildren, type FormatEnv } from '../../src/engine/values/format';
import { findMember, memberValue, memoryValue, toInteger } from '../../src/engine/values/value';
import { sampleGuest } from '../support/env';
import { haveGdb, NO_AUTOLOAD } from '../support/gdb';

/** [struct, member] pairs whose member types cover pointers, arrays, typedefs, qualifiers, function pointers, enums, bit-fields. */
const MEMBERS: Array<[string, string]> = [
  ['kernel_clone_args', 'fn'],
  ['kernel_clone_args', 'flags'],
  ['kernel_clone_args', 'set_tid'],
  ['task_struct', 'comm'],
  ['task_struct', 'sched_class'],
  ['task_struct', 'cpus_ptr'],
  ['task_struct', 'in_execve'],
  ['task_struct', 'pid'],
  ['task_struct', 'stack'],
  ['task_struct', 'usage'],
  ['task_struct', 'tasks'],
  ['file_operations', 'read'],
  ['file_operations', 'poll'],
  ['qspinlock', 'val'],
  ['pid', 'numbers'],
  ['mm_struct', 'pgd'],
];

describe('DWARF types on the sample vmlinux (gdb whatis as oracle)', function () {
  this.timeout(120_000);
  let program: Program;
  let elf: ElfFile;
  let gdb: string[] = [];

  before(async function () {
    const g = sampleGuest(this);
    elf = ElfFile.open(g.vmlinux);
    const dwarf = Dwarf.open(elf);
    assert.ok(dwarf);
    program = new Program(dwarf, SymbolTable.fromElf(elf), new LocalIndex(dwarf));
    if (haveGdb()) {
      const cmds = MEMBERS.flatMap(([s, m]) => [`whatis ((struct ${s} *)0)->${m}`, `print sizeof(((struct ${s} *)0)->${m})`, `print (unsigned long)&((struct ${s} *)0)->${m}`]);
      const structs = [...new Set(MEMBERS.map(([s]) => s))];
      cmds.push(...structs.map((s) => `print sizeof(struct ${s})`));
      const out = execFileSync('gdb', ['-q', '-nx', '-batch', ...NO_AUTOLOAD, ...cmds.flatMap((c) => ['-ex', c]), g.vmlinux], { encoding: 'utf8', maxBuffer: 16 << 20 });
      gdb = out.split('\n').filter((l) => /^(type = |\$\d+ = )/.test(l)).map((l) => l.replace(/^(type = |\$\d+ = )/, ''));
    }
  });

  after(() => elf?.close());

  async function struct(name: string): Promise<CType> {
    const t = await program.findType(`struct ${name}`);
    assert.ok(t, `struct ${name} is defined somewhere`);
    return t;
  }

  it('member types, sizes and offsets agree with gdb', async function () {
    if (!haveGdb()) this.skip();
    assert.equal(gdb.length, MEMBERS.length * 3 + new Set(MEMBERS.map(([s]) => s)).size, gdb.join('\n'));
    for (let i = 0; i < MEMBERS.length; i++) {
      const [s, m] = MEMBERS[i];
      const found = findMember(await struct(s), m);
      assert.ok(found, `${s}.${m}`);
      assert.equal(typeName(found.member.type), gdb[i * 3], `whatis ${s}.${m}`);
      assert.equal(String(sizeOf(found.member.type)), gdb[i * 3 + 1], `sizeof ${s}.${m}`);
      assert.equal(String(found.offset), gdb[i * 3 + 2], `offset of ${s}.${m}`);
    }
    const structs = [...new Set(MEMBERS.map(([s]) => s))];
    for (let i = 0; i < structs.length; i++) assert.equal(String(sizeOf(await struct(structs[i]))), gdb[MEMBERS.length * 3 + i], `sizeof struct ${structs[i]}`);
  });

  it('reads bit-fields, enums, flexible arrays and self-referential structs', async () => {
    const task = await struct('task_struct');
    const bit = findMember(task, 'in_execve');
    assert.equal(bit?.member.bitSize, 1);
    assert.ok(bit && bit.member.bitOffset !== undefined && bit.member.bitOffset >= 0 && bit.member.bitOffset < 8);
    const list = await struct('list_head');
    const next = findMember(list, 'next')?.member.type as CType;
    // The pointer's target is the very same type object: no infinite expansion.
    assert.equal(strip(next).kind === 'pointer' && (strip(next) as { target: CType }).target, list);
    const pid = await struct('pid');
    const numbers = strip(findMember(pid, 'numbers')?.member.type as CType);
    assert.equal(numbers.kind, 'array');
    const states = await program.findType('enum system_states');
    assert.ok(states && states.kind === 'enum' && states.enumerators.some((e) => e.name === 'SYSTEM_RUNNING'));
    assert.equal(typeName(program.builtin.get('unsigned long') as CType), 'unsigned long');
  });

  it('renders real types from guest-like bytes: members, bit-fields, strings, function pointers', async () => {
    const args = await struct('kernel_clone_args');
    const size = sizeOf(args) as number;
    const base = 0xffffc90000010000n;
    const mem = Buffer.alloc(size);
    const fn = findMember(args, 'fn');
    const flags = findMember(args, 'flags');
    const exit = findMember(args, 'exit_signal');
    assert.ok(fn && flags && exit);
    const kernelInit = SymbolTable.fromElf(elf).lookup('kernel_init')[0].value;
    mem.writeBigUInt64LE(kernelInit, fn.offset);
    mem.writeBigUInt64LE(0x800100n, flags.offset);
    mem.writeInt32LE(-1, exit.offset);
    const comm = Buffer.from('swapper/0\0\0\0\0\0\0\0');
    const env: FormatEnv = {
      pointerSize: 8,
      read: async (addr, n) => {
        if (addr >= base && addr + BigInt(n) <= base + BigInt(size)) return mem.subarray(Number(addr - base), Number(addr - base) + n);
        if (addr >= 0x1000n && addr + BigInt(n) <= 0x1010n) return comm.subarray(Number(addr - 0x1000n), Number(addr - 0x1000n) + n);
        throw new Error(`Cannot access memory at address 0x${addr.toString(16)}`);
      },
      symbolize: (a) => program.symbolize(a),
      complete: (t) => program.types.complete(t),
    };
    const v = memoryValue(args, base);
    assert.equal(await formatValue(memberValue(v, fn.member), env), `0x${kernelInit.toString(16)} <kernel_init>`);
    assert.equal(await formatValue(memberValue(v, exit.member), env), '-1');
    assert.equal(await formatValue(memberValue(v, flags.member), { ...env, hex: true }), '0x800100');
    assert.match(await formatValue(v, env, 10_000), /^\{flags = 8388864, pidfd = 0x0, .*fn = 0xffffffff[0-9a-f]+ <kernel_init>, .*\}$/);
    assert.ok(hasChildren(v, env));
    const kids = await childrenOf(v, env);
    assert.equal(kids[0].name, 'flags');
    assert.equal(await toInteger(kids[0].value, env), 0x800100n);
    // A char array is a bounded string; an unreadable pointer says so instead of failing.
    const task = await struct('task_struct');
    const c = findMember(task, 'comm');
    assert.ok(c);
    assert.equal(await formatValue(memoryValue(c.member.type, 0x1000n), env), '"swapper/0"');
    const ptr = findMember(task, 'stack');
    assert.ok(ptr);
    assert.match(await formatValue(memoryValue(ptr.member.type, 0x2000n), env), /<error: Cannot access memory at address 0x2000>/);
  });
});
