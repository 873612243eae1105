/**
 * Variables and C expressions at the first kernel_clone stop of the real sample guest, with
 * gdb 13's `print` on the same guest and the same stop as the oracle: every member of
 * `*args`, the frame's arguments and locals, and a list of expressions over globals, casts,
 * arrays, pointers, strings, init_task, sizeof, arithmetic and registers.
 */
import * as assert from 'node:assert/strict';
import { DebugProtocol } from '@vscode/debugprotocol';
import { GuestPaths } from '../../src/guest/build';
import { requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbSession, haveGdb, normalizeValue } from '../support/gdb';
import { TestSession } from '../support/session';

/** [ours, gdb's print command] when they differ; a plain string is both. */
type Case = string | { ours: string; gdb: string };

export const EXPRESSIONS: Case[] = [
  'args',
  'args->fn',
  '*args',
  'init_task.comm',
  'init_task.pid',
  'init_task.prio',
  'init_task.stack',
  // Declared extern in DWARF with no location, placed by the linker script: gdb joins the
  // declaration's type with the ELF symbol's address.
  'init_task.stack == (void *)&init_stack',
  '&init_stack',
  'init_stack[0]',
  'sizeof(init_stack)',
  // The same join for an array of unknown length (`extern char _text[]`): gdb prints where it
  // is and the bytes there as a string.
  '_text',
  '&_text',
  '&init_task',
  'init_task.tasks',
  'init_task.tasks.next',
  'sizeof(struct task_struct)',
  'sizeof(init_task)',
  'sizeof(args)',
  'sizeof(*args)',
  'sizeof(long)',
  'init_task.comm[0]',
  '*init_task.comm@4',
  '$rip',
  '$rsp',
  '$rdi',
  '$rdi == (unsigned long)args',
  { ours: '$eflags,x', gdb: 'print/x $eflags' },
  'init_uts_ns.name.sysname',
  'init_uts_ns.name.release',
  'linux_banner',
  'system_state',
  'system_state == SYSTEM_BOOTING',
  '(enum system_states)2',
  'init_task.active_mm',
  'init_task.sched_class',
  'init_task.cred->uid.val',
  'init_task.real_parent == &init_task',
  '(long)&init_task.comm - (long)&init_task',
  '&init_task.comm[2] - &init_task.comm[0]',
  '((struct task_struct *)&init_task)->pid',
  '((struct task_struct *)&init_task)->comm',
  '(unsigned long)args->fn',
  'args->fn == kernel_init',
  'kernel_init',
  '&kernel_init',
  '*args->fn',
  'init_task.in_execve',
  'init_task.se.load',
  'init_task.se.load.weight >> 10',
  'init_task.policy',
  'init_task.flags',
  { ours: 'init_task.flags,x', gdb: 'print/x init_task.flags' },
  'init_task.signal->rlim[7]',
  'init_task.signal->rlim[7].rlim_max / 4',
  'init_task.cpus_ptr',
  'init_task.nr_cpus_allowed',
  'nr_cpu_ids',
  '(char)65',
  "'a'",
  "'A' + 1",
  '-init_task.prio',
  '~init_task.pid',
  '!init_task.pid',
  'init_task.prio > 100 ? 11 : 22',
  'init_task.pid == 0 && init_task.prio > 100',
  '7 / 2',
  '-7 / 2',
  '-7 % 3',
  '4294967295 + 1',
  '0x7fffffff + 1',
  '(unsigned char)300',
  '(short)-1 < 0',
  'init_task.thread_info',
  '&init_top_pgt',
  '(unsigned long)&init_top_pgt',
  '*(unsigned long *)&phys_base',
];

export function gdbCommand(c: Case): string {
  return typeof c === 'string' ? `print ${c}` : c.gdb;
}

export function ourExpression(c: Case): string {
  return typeof c === 'string' ? c : c.ours;
}

/** The same value, formatting aside (test/support/gdb.ts says what is set aside). */
export const normalize = normalizeValue;

/** gdb's `$N = value` lines, in order, between our echo markers. */
export function gdbValues(out: string, count: number): string[] {
  const values: string[] = [];
  for (let i = 0; i < count; i++) {
    const start = out.indexOf(`@@${i}@@\n`);
    const end = out.indexOf(`@@${i + 1}@@\n`);
    const chunk = start < 0 ? '' : out.slice(start + `@@${i}@@\n`.length, end < 0 ? undefined : end);
    const m = /^\$\d+ = ([\s\S]*?)\s*$/m.exec(chunk.trim());
    values.push(m ? m[1] : `<gdb: ${chunk.trim()}>`);
  }
  return values;
}

function marked(commands: string[]): string[] {
  return commands.flatMap((c, i) => [`echo @@${i}@@\\n`, c]).concat([`echo @@${commands.length}@@\\n`]);
}

describe('variables and expressions at kernel_clone (gdb as oracle)', function () {
  this.timeout(600_000);
  let guest: GuestPaths;
  let gdbOut = '';
  let s: TestSession;
  let frameId = 0;
  let threadId = 1;
  const MEMBERS = ['flags', 'pidfd', 'child_tid', 'parent_tid', 'exit_signal', 'stack', 'stack_size', 'tls', 'set_tid', 'set_tid_size', 'cgroup', 'io_thread', 'kthread', 'idle', 'fn', 'fn_arg', 'cgrp', 'cset', 'kill_seq'];
  const LOCALS = ['clone_flags', 'vfork', 'pid', 'p', 'trace', 'nr'];
  /**
   * Locals kernel_clone has not written yet at its first line: their bytes are old stack
   * contents, which depend on interrupt timing and so differ between our boot and gdb's.
   * For these the oracle checks the address and the shape, and the values against the bytes.
   */
  const UNWRITTEN = new Set(['vfork']);
  const gdbCommands = [...MEMBERS.map((m) => `print args->${m}`), 'print args', ...LOCALS.map((l) => `print ${l}`), ...EXPRESSIONS.map(gdbCommand), 'print &vfork'];

  before(async function () {
    requireBuilt(this);
    requireOrSkip(this, haveGdb(), 'gdb is not installed (apt-get install gdb)');
    guest = sampleGuest(this);
    gdbOut = await gdbSession(guest, ['break kernel_clone', 'continue', 'set print elements 200', ...marked(gdbCommands)]);
    assert.match(gdbOut, /Breakpoint 1, kernel_clone/);
    s = new TestSession(this);
    await s.start();
    const { stop } = await s.launchToBreak(s.launchArgs({ kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd, memory: '512M', smp: 1 }), ['kernel_clone']);
    threadId = stop.body.threadId as number;
    frameId = (await s.topFrame(threadId)).id;
  });

  after(async () => {
    await s?.stop();
  });

  const gdbAt = (i: number): string => gdbValues(gdbOut, gdbCommands.length)[i];

  async function evaluate(expression: string, context = 'watch'): Promise<DebugProtocol.EvaluateResponse['body']> {
    return (await s.dc.evaluateRequest({ expression, frameId, context })).body;
  }

  async function scope(name: string): Promise<DebugProtocol.Variable[]> {
    const scopes = (await s.dc.scopesRequest({ frameId })).body.scopes;
    const sc = scopes.find((x) => x.name === name);
    assert.ok(sc, `scope ${name} among ${scopes.map((x) => x.name).join(', ')}`);
    return (await s.dc.variablesRequest({ variablesReference: sc.variablesReference })).body.variables;
  }

  it('shows Arguments, Locals, Globals and Registers scopes', async () => {
    const scopes = (await s.dc.scopesRequest({ frameId })).body.scopes.map((x) => x.name);
    assert.deepEqual(scopes, ['Arguments', 'Locals', 'Globals (fork.c)', 'Registers']);
  });

  it('every member of *args agrees with gdb', async () => {
    const args = (await scope('Arguments')).find((v) => v.name === 'args');
    assert.ok(args && args.variablesReference > 0, 'args is expandable');
    assert.equal(args.type, 'struct kernel_clone_args *');
    assert.equal(normalize(args.value), normalize(gdbAt(MEMBERS.length)));
    const members = (await s.dc.variablesRequest({ variablesReference: args.variablesReference })).body.variables;
    assert.deepEqual(members.map((m) => m.name), MEMBERS);
    MEMBERS.forEach((m, i) => {
      const ours = members[i];
      assert.equal(normalize(ours.value), normalize(gdbAt(i)), `args->${m}: ours '${ours.value}', gdb '${gdbAt(i)}'`);
      assert.equal(ours.evaluateName, `args->${m}`);
    });
    // A function pointer shows the function it points at.
    assert.match(members[MEMBERS.indexOf('fn')].value, /^0xffffffff[0-9a-f]+ <kernel_init>$/);
  });

  it('the arguments and locals of the top frame agree with gdb, <optimized out> included', async () => {
    const locals = await scope('Locals');
    const byName = new Map(locals.map((v) => [v.name, v]));
    assert.deepEqual([...byName.keys()].sort(), [...LOCALS].sort());
    for (let i = 0; i < LOCALS.length; i++) {
      const theirs = gdbAt(MEMBERS.length + 1 + i);
      // The Variables pane shows a preview; the full value is what the clipboard gets.
      const full = await evaluate(LOCALS[i], 'clipboard');
      if (UNWRITTEN.has(LOCALS[i])) {
        const shape = (v: string): string => normalize(v).replace(/'(?:[^'\\]|\\.)*'/g, 'C').replace(/-?(?:0x[0-9a-f]+|\d+)/g, 'N');
        assert.equal(shape(full.result), shape(theirs), `${LOCALS[i]} has gdb's shape: ours '${full.result}', gdb '${theirs}'`);
        continue;
      }
      assert.equal(normalize(full.result), normalize(theirs), `${LOCALS[i]}: ours '${full.result}', gdb '${theirs}'`);
      if (theirs === '<optimized out>') assert.equal(byName.get(LOCALS[i])?.value, '<optimized out>');
    }
  });

  it('a local holding old stack bytes sits where gdb puts it and reads as those bytes', async () => {
    const addr = await evaluate('&vfork');
    assert.equal(normalize(addr.result), normalize(gdbAt(gdbCommands.length - 1)));
    const ref = (await evaluate('vfork')).memoryReference;
    assert.ok(ref, 'vfork has a memoryReference');
    const raw = await s.dc.customRequest('readMemory', { memoryReference: ref, count: 12 });
    const bytes = Buffer.from((raw.body as DebugProtocol.ReadMemoryResponse['body'])?.data ?? '', 'base64');
    // struct completion: done at 0; the swait_queue_head is 8-aligned, so its lock is at 8.
    assert.equal(bytes.length, 12, `12 bytes at ${ref}`);
    assert.equal((await evaluate('vfork.done')).result, String(bytes.readUInt32LE(0)));
    assert.equal((await evaluate('vfork.wait.lock.raw_lock.val.counter')).result, String(bytes.readInt32LE(8)));
  });

  it(`${EXPRESSIONS.length} expressions agree with gdb's print`, async () => {
    const base = MEMBERS.length + 1 + LOCALS.length;
    const failures: string[] = [];
    for (let i = 0; i < EXPRESSIONS.length; i++) {
      const expr = ourExpression(EXPRESSIONS[i]);
      const theirs = gdbAt(base + i);
      let ours: string;
      try {
        ours = (await evaluate(expr, 'clipboard')).result;
      } catch (e) {
        ours = `<error: ${(e as Error).message}>`;
      }
      if (normalize(ours) !== normalize(theirs)) failures.push(`${expr}\n    ours: ${ours}\n    gdb:  ${theirs}`);
    }
    assert.ok(EXPRESSIONS.length >= 30);
    assert.deepEqual(failures, [], `disagreements:\n${failures.join('\n')}`);
  });

  it('expression errors say what was wrong and where', async () => {
    const cases: Array<[string, RegExp]> = [
      ['args->nosuch', /There is no member named nosuch in struct kernel_clone_args/],
      ['no_such_symbol + 1', /No symbol "no_such_symbol" in current context/],
      ['init_task.', /column 11/],
      ['(struct no_such_struct *)0', /No type named 'struct no_such_struct'/],
      ['*init_task.pid', /Attempt to take contents of a non-pointer value/],
      ['init_task.prio / 0', /Division by zero/],
      ['*(long *)0', /Cannot access memory at address 0x0/],
      ['init_task.pid = 5', /cannot change the guest/],
    ];
    const wrong: string[] = [];
    for (const [expr, re] of cases) {
      try {
        const r = await s.dc.evaluateRequest({ expression: expr, frameId, context: 'watch' });
        wrong.push(`${expr}: no error, got ${r.body.result}`);
      } catch (e) {
        if (!re.test((e as Error).message)) wrong.push(`${expr}: ${(e as Error).message}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('setVariable, setExpression and the Debug Console change memory and registers, and read back', async () => {
    const before = (await evaluate('init_task.prio')).result;
    const set = (await s.dc.customRequest('setExpression', { expression: 'init_task.prio', value: '121', frameId })) as DebugProtocol.SetExpressionResponse;
    assert.equal(set.body.value, '121');
    assert.equal((await evaluate('init_task.prio')).result, '121');
    await evaluate(`init_task.prio = ${before}`, 'repl');
    assert.equal((await evaluate('init_task.prio')).result, before);

    // A member through the Variables tree: args->exit_signal, then back.
    const args = (await scope('Arguments')).find((v) => v.name === 'args') as DebugProtocol.Variable;
    const sv = await s.dc.setVariableRequest({ variablesReference: args.variablesReference, name: 'exit_signal', value: '17' });
    assert.equal(sv.body.value, '17');
    assert.equal((await evaluate('args->exit_signal')).result, '17');
    await s.dc.setVariableRequest({ variablesReference: args.variablesReference, name: 'exit_signal', value: '0' });

    // A register of the innermost frame, through the Registers scope.
    const regs = await scope('Registers');
    const rax = regs.find((r) => r.name === 'rax') as DebugProtocol.Variable;
    const scopes = (await s.dc.scopesRequest({ frameId })).body.scopes;
    const regRef = (scopes.find((x) => x.name === 'Registers') as DebugProtocol.Scope).variablesReference;
    await s.dc.setVariableRequest({ variablesReference: regRef, name: 'rax', value: '0x1234' });
    assert.equal((await evaluate('$rax')).result, '4660');
    await s.dc.setVariableRequest({ variablesReference: regRef, name: 'rax', value: rax.value });
    assert.equal(BigInt((await evaluate('$rax,x')).result), BigInt(rax.value));
  });
});
