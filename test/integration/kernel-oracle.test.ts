/**
 * The kernel as a living system against gdb and the kernel's own scripts/gdb, on each arch's
 * sample guest booted with KASLR on and two CPUs: our session attaches through an RspSwitch
 * (test/support/handover.ts), finds the offset, stops in kernel_clone by a function and by a
 * line breakpoint as the shell forks, reads the stop, and lends the connection to gdb at that
 * same stop. gdb is told the offset we found (`add-symbol-file vmlinux -o OFFSET`) and runs
 * `bt`, prints, `lx-ps`, `$lx_current()`, `$lx_per_cpu()`, `lx-dmesg` and `lx-lsmod`.
 *
 * Telling gdb the offset: `symbol-file -o` moves every section, and on x86_64 (before 6.15)
 * the per-CPU variables are linked at small offsets from zero and do not move with KASLR, so
 * gdb would read `current_task` and `runqueues` at wrong addresses. gdb gets
 * `-s .data..percpu 0` there, which keeps them where they are, as our adapter does.
 * riscv64's 6.1 kernel has no KASLR (its offset is 0), and its scripts/gdb has no
 * `$lx_current()`: gdb reads `tp`, which is `current` in the kernel, instead.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { TasksResponseBody } from '../../src/adapter/events';
import { GuestPaths } from '../../src/guest/build';
import { artifact, requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbFor, gdbFrames, haveGdb, MarkedOutput, normalizeValue } from '../support/gdb';
import { OwnGuest, RspSwitch, runGdb, startOwnGuest } from '../support/handover';
import { nmAddress } from '../support/oracle';
import { TestSession } from '../support/session';
import { lineOf, ours } from '../support/source';

const ARCHES = ['x86_64', 'aarch64', 'riscv64'];

/** Helpers given what does not exist: each says so. */
const BAD = ['per_cpu(runqueues, 99)', '$task(99999)', 'container_of(&init_task.tasks, struct task_struct, no_such)'];

/** Expressions both sides print at the stop: kernel_clone's argument, and data moved by KASLR. */
const VALUES = ['args->flags', 'args->exit_signal', 'linux_banner', 'init_task.comm', 'nr_threads'];

/**
 * vCPUs per guest. The x86_64 sample kernel is built without ACPI, and SeaBIOS's MP table
 * under TCG lists only the boot CPU, so it sees one whatever -smp says.
 */
const CPUS: Record<string, number> = { x86_64: 1, aarch64: 2, riscv64: 2 };

/**
 * Ours and gdb's spelling of the kernel helpers, where gdb's scripts have one. `cpu` is the
 * Linux CPU of the stopped vCPU (its current task's): scripts/gdb takes gdb's thread number
 * minus one for the CPU when none is given, and gdb numbers threads from 2 once the stub's
 * thread list replaces its first guess, so both sides are given it.
 */
function helperPairs(arch: string, cpu: number): Array<[string, string]> {
  const other = CPUS[arch] - 1 - cpu;
  const current = arch === 'riscv64' ? '((struct task_struct *)$tp)' : `$lx_current(${cpu})`;
  return [
    ['$current->pid', `${current}.pid`],
    ['$current->comm', `${current}.comm`],
    ['current->tgid', `${current}.tgid`],
    ['this_cpu(runqueues).nr_running', `$lx_per_cpu("runqueues", ${cpu}).nr_running`],
    ['this_cpu_ptr(&runqueues)->cpu', `$lx_per_cpu("runqueues", ${cpu}).cpu`],
    [`per_cpu(runqueues, ${other}).cpu`, `$lx_per_cpu("runqueues", ${other}).cpu`],
    [`per_cpu(runqueues, ${other}).curr->comm`, `$lx_per_cpu("runqueues", ${other}).curr->comm`],
    [`per_cpu_ptr(&runqueues, ${other})->nr_switches`, `$lx_per_cpu("runqueues", ${other}).nr_switches`],
    ['$task(1)->comm', '$lx_task_by_pid(1).comm'],
    ['container_of(init_task.tasks.next, struct task_struct, tasks)->pid', '$container_of(init_task.tasks.next, "struct task_struct", "tasks")->pid'],
  ];
}

for (const arch of ARCHES) {
  describe(`${arch}: KASLR, tasks, current and per-CPU data at a stop, against gdb and scripts/gdb at the same stop`, function () {
    this.timeout(900_000);
    let guest: GuestPaths;
    let vm: OwnGuest | undefined;
    let sw: RspSwitch | undefined;
    let s: TestSession | undefined;
    let offset = 0n;
    let firstStop: DebugProtocol.StoppedEvent | undefined;
    let bpIds: number[] = [];
    let where = '';
    let lineStop: DebugProtocol.StoppedEvent | undefined;
    let frames: DebugProtocol.StackFrame[] = [];
    let tasks: TasksResponseBody | undefined;
    let ourLog = '';
    const ourValue = new Map<string, string>();
    let gdb = new MarkedOutput('');
    let cloneLine = 0;
    let sleeperThread = 0;
    let sleeperStop: DebugProtocol.StoppedEvent | undefined;
    let sleeperFrames: DebugProtocol.StackFrame[] = [];
    let threadsAfter: DebugProtocol.Thread[] = [];
    let cpu = 0;
    let fork = '';

    async function evaluate(expression: string): Promise<string> {
      // An error is a value the test shows, not a reason to skip every other comparison.
      return (s as TestSession).dc
        .evaluateRequest({ expression, frameId: frames[0].id, context: 'clipboard' })
        .then((r) => r.body.result)
        .catch((e: Error) => `<error: ${e.message}>`);
    }

    before(async function () {
      requireBuilt(this);
      guest = sampleGuest(this, arch);
      requireOrSkip(this, !!guest.gdbScripts && fs.existsSync(guest.gdbScripts), `the ${arch} guest's kernel tree has no vmlinux-gdb.py`);
      requireOrSkip(this, haveGdb(arch), `${gdbFor(arch)} is not installed`);
      fork = path.join(guest.source, 'kernel', 'fork.c');
      cloneLine = lineOf(fork, 'u64 clone_flags = args->flags;', lineOf(fork, 'pid_t kernel_clone(struct kernel_clone_args *args)'));

      vm = await startOwnGuest(guest, artifact(this, 'console.log'), 'kaslr', 300_000, CPUS[arch]);
      sw = await RspSwitch.open(vm.gdbSocket, vm.dir);
      s = new TestSession(this);
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      await s.dc.attachRequest({ target: sw.adapterPath, vmlinux: guest.vmlinux, arch, rspLog: artifact(this, 'rsp.log') } as DebugProtocol.AttachRequestArguments);
      await initialized;
      // Kernel threads fork too (kthreadd makes workers at any time): only the shell's clone
      // stops, told by a condition on `current`, a kernel helper in a condition.
      const condition = "current->comm[0] == 's' && current->comm[1] == 'h' && $current->comm[2] == 0";
      const [fn] = (await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone', condition }] })).body.breakpoints;
      const [line] = (await s.dc.setBreakpointsRequest({ source: { path: fork }, breakpoints: [{ line: cloneLine, condition }] })).body.breakpoints;
      assert.ok(fn.verified && line.verified, `both verified at attach: ${JSON.stringify([fn, line])}`);
      bpIds = [fn.id ?? -1, line.id ?? -1];
      where = `function breakpoint ${fn.id} at ${fn.instructionReference}, line breakpoint ${line.id} at ${line.instructionReference}`;
      offset = BigInt(fn.instructionReference ?? '0') - nmAddress(guest.vmlinux, 'kernel_clone');
      await s.dc.configurationDoneRequest();

      // The shell forks for the command: kernel_clone's entry, then the line.
      let stopped = s.dc.waitForEvent('stopped', 120_000);
      // A pipeline: busybox runs `echo` without forking, but not both ends of a pipe.
      vm.console.write('echo forked | cat\n');
      firstStop = (await stopped) as DebugProtocol.StoppedEvent;
      stopped = s.dc.waitForEvent('stopped', 120_000);
      await s.dc.continueRequest({ threadId: firstStop.body.threadId ?? 1 });
      lineStop = (await stopped) as DebugProtocol.StoppedEvent;
      const tid = lineStop.body.threadId ?? 1;
      frames = (await s.dc.stackTraceRequest({ threadId: tid })).body.stackFrames;
      tasks = (await s.dc.customRequest('qemuKernel.tasks', {})).body as TasksResponseBody;
      for (const bad of BAD) ourValue.set(bad, await evaluate(bad));
      cpu = tasks.cpus.find((c) => c.thread === tid)?.cpu ?? -1;
      for (const v of [...VALUES, ...helperPairs(arch, cpu).map(([o]) => o)]) ourValue.set(v, await evaluate(v));
      ourLog = ((await s.dc.customRequest('qemuKernel.kernelLog', {})).body as { text: string }).text;
      // The sample's `sleep` daemon, asleep in nanosleep: its stack from what its switch saved.
      const sleeper = tasks.tasks.find((t) => t.comm === 'sleep' && t.ppid === 1);
      if (sleeper) {
        const shown = s.dc.waitForEvent('stopped');
        sleeperThread = ((await s.dc.customRequest('qemuKernel.showTask', { pid: sleeper.pid })).body as { threadId: number }).threadId;
        sleeperStop = (await shown) as DebugProtocol.StoppedEvent;
        sleeperFrames = (await s.dc.stackTraceRequest({ threadId: sleeperThread })).body.stackFrames;
        threadsAfter = (await s.dc.threadsRequest()).body.threads;
      }

      await sw.lend();
      const m = MarkedOutput.commands;
      const keepPerCpu = arch === 'x86_64' ? ' -s .data..percpu 0' : '';
      const out = await runGdb(arch, guest.vmlinux, vm.dir, [
        'symbol-file',
        `add-symbol-file ${guest.vmlinux} -o 0x${offset.toString(16)}${keepPerCpu}`,
        `source ${guest.gdbScripts}`,
        `target remote ${sw.gdbPath}`,
        // gdb's thread numbers are not QEMU's thread ids (see helperPairs): select by id.
        `python [t.switch() for t in gdb.selected_inferior().threads() if t.ptid[1] == ${tid}]`,
        ...m('threads', 'python print([(t.num, t.ptid) for t in gdb.selected_inferior().threads()], gdb.selected_thread().num)'),
        ...m('bt', 'bt'),
        ...VALUES.flatMap((v) => m(`value ${v}`, `print ${v}`)),
        ...helperPairs(arch, cpu).flatMap(([o, g]) => m(`helper ${o}`, `print ${g}`)),
        ...m('ps', 'lx-ps'),
        ...m('dmesg', 'lx-dmesg'),
        ...m('lsmod', 'lx-lsmod'),
        ...m('end', 'disconnect'),
      ]);
      gdb = new MarkedOutput(out);
      await sw.reclaim();
      fs.writeFileSync(artifact(this, 'gdb.log'), `${out}\n--- packets gdb sent through the switch ---\n${sw.gdbPackets.join('\n')}\n`);
    });

    after(async () => {
      await s?.stop();
      sw?.close();
      await vm?.console.close();
      await vm?.kill();
    });

    it('KASLR: both breakpoints hit where the kernel runs kernel_clone, first its entry, then the line', async () => {
      if (arch !== 'riscv64') assert.notEqual(offset, 0n, 'booted with kaslr, the kernel moved');
      assert.deepEqual(firstStop?.body.hitBreakpointIds, [bpIds[0]], where);
      assert.deepEqual(lineStop?.body.hitBreakpointIds, [bpIds[1]], where);
      assert.equal(frames[0].name, 'kernel_clone');
      assert.equal(frames[0].line, cloneLine);
    });

    it("backtrace: gdb's frames, functions and lines, told the same offset, are ours", () => {
      // Past the user-to-kernel entry an unwinder runs on whatever the stack holds: gdb can
      // repeat the entry frame (el0t_64_sync) two or three times before it says "corrupt
      // stack?", depending on that memory. A frame repeated at the end counts once, both sides.
      const once = <T extends { fn?: string; line?: number }>(list: T[]): T[] => {
        while (list.length > 1 && list[list.length - 1].fn === list[list.length - 2].fn && list[list.length - 1].line === list[list.length - 2].line) list.pop();
        return list;
      };
      const theirs = once(gdbFrames(gdb.section('bt')));
      assert.ok(theirs.length >= 3, `gdb's backtrace:\n${gdb.section('bt')}`);
      const mine = once(frames.map(ours));
      assert.deepEqual(
        mine.map((f) => `${f.fn}:${f.line}`),
        theirs.map((f) => `${f.fn}:${f.line}`),
        gdb.section('bt'),
      );
    });

    it('arguments and globals moved by KASLR (linux_banner, init_task) print as gdb prints them', () => {
      // gdb takes linux_banner's type from a unit that declares it (`extern const char
      // linux_banner[]`, no length) and prints its address before the string.
      const theirs = (v: string): string => normalizeValue(gdb.printed(`value ${v}`)).replace(/^0x[0-9a-f]+ (?=")/, '');
      for (const v of VALUES) assert.equal(normalizeValue(ourValue.get(v) ?? ''), theirs(v), `${v}: ours ${ourValue.get(v)}, gdb ${gdb.printed(`value ${v}`)}`);
      assert.match(ourValue.get('linux_banner') ?? '', /^"Linux version 6\.1\./);
    });

    it("$current, current, this_cpu, per_cpu, $task and container_of agree with scripts/gdb's helpers", () => {
      for (const [o, g] of helperPairs(arch, cpu)) assert.equal(normalizeValue(ourValue.get(o) ?? ''), normalizeValue(gdb.printed(`helper ${o}`)), `${o}: ours ${ourValue.get(o)}; gdb's ${g}: ${gdb.printed(`helper ${o}`)}`);
      // The shell forked for the command, on this CPU.
      assert.equal(normalizeValue(ourValue.get('$current->comm') ?? ''), '"sh"');
      assert.equal(normalizeValue(ourValue.get('$task(1)->comm') ?? ''), '"init"');
    });

    it('a helper given a CPU, a pid or a member that does not exist says which', () => {
      assert.match(ourValue.get(BAD[0]) ?? '', new RegExp(`CPU 99 does not exist: this kernel has CPUs 0 to ${CPUS[arch] - 1}`));
      assert.match(ourValue.get(BAD[1]) ?? '', /No task has pid 99999/);
      assert.match(ourValue.get(BAD[2]) ?? '', /struct task_struct has no member no_such/);
    });

    it("the task list is lx-ps's, task for task, with the running ones marked on each CPU", () => {
      const theirs = gdb
        .section('ps')
        .split('\n')
        .map((l) => /^(0x[0-9a-f]+)(?: <[^>]*>)?\s+(-?\d+)\s+(.*?)\s*$/.exec(l))
        .filter((x): x is RegExpExecArray => x !== null)
        .map((x) => `${BigInt(x[1]).toString(16)} ${x[2]} ${x[3]}`);
      const mine = (tasks?.tasks ?? []).map((t) => `${BigInt(t.address).toString(16)} ${t.pid} ${t.comm}`);
      assert.ok(theirs.length > 20, gdb.section('ps').slice(0, 500));
      assert.deepEqual(mine, theirs);
      // Every vCPU is a Linux CPU with a current task; the idle tasks of CPUs but the first are on no list.
      const cpus = tasks?.cpus ?? [];
      assert.deepEqual(cpus.map((c) => c.cpu).sort(), Array.from({ length: CPUS[arch] }, (_, i) => i), JSON.stringify(cpus));
      const running = (tasks?.tasks ?? []).filter((t) => t.runningOn !== undefined);
      for (const t of running) assert.equal(cpus.find((c) => c.cpu === t.runningOn)?.current, t.address, `${t.comm} runs on CPU ${t.runningOn}: ${JSON.stringify(cpus)}`);
      const sh = running.find((t) => t.vcpu === lineStop?.body.threadId);
      assert.equal(sh?.comm, 'sh', `the stopped vCPU runs the shell: ${JSON.stringify(running)}`);
      // The vCPU's CPU, told by its per-CPU base (tp's task on riscv), is the one the shell's task_struct records.
      assert.equal(sh?.cpu, cpu);
      assert.ok(tasks?.tasks.some((t) => t.comm === 'syslogd' && t.state === 'S' && t.ppid === 1), 'the sample daemons sleep, children of init');
      assert.ok(tasks?.tasks.some((t) => t.comm === 'kthreadd' && t.kthread && t.pid === 2));
      // eslint-disable-next-line no-console
      console.log(`      ${arch}: ${tasks?.tasks.length} tasks read in ${tasks?.ms} ms; CPUs ${JSON.stringify(tasks?.cpus)}`);
    });

    it("a sleeping task's stack, from the registers its switch saved: sleep's, through nanosleep to the syscall entry", () => {
      assert.equal(sleeperStop?.body.reason, 'task');
      assert.equal(sleeperStop?.body.threadId, sleeperThread);
      assert.ok(threadsAfter.some((t) => t.id === sleeperThread && /^Task \d+ sleep \(sleeping\)$/.test(t.name)), JSON.stringify(threadsAfter));
      const names = sleeperFrames.map((f) => f.name);
      const shown = names.join(' < ');
      for (const fn of ['__schedule', 'schedule', 'do_nanosleep', 'hrtimer_nanosleep']) assert.ok(names.includes(fn), `${fn} in ${shown}`);
      assert.ok(names.indexOf('__schedule') < names.indexOf('do_nanosleep'), shown);
      const entry = { x86_64: /^entry_SYSCALL_64/, aarch64: /^el0t_64_sync$/, riscv64: /^handle_exception$|^ret_from_exception$/ }[arch] as RegExp;
      assert.match(names[names.length - 1], entry, shown);
      // eslint-disable-next-line no-console
      console.log(`      ${arch}: sleep's stack: ${shown}`);
      assert.ok(sleeperFrames.every((f) => f.line > 0 || /^entry_|^el0t|^handle_exc|^ret_from/.test(f.name)), `every C frame has its line: ${JSON.stringify(sleeperFrames.map((f) => [f.name, f.line]))}`);
    });

    it("the kernel log is lx-dmesg's, and lx-lsmod lists no modules, as ours", async () => {
      const lines = (text: string): string[] => text.split('\n').map((l) => /^\[\s*\d+\.\d{6}\] (.*)$/.exec(l)?.[1]).filter((l): l is string => l !== undefined);
      assert.deepEqual(lines(ourLog), lines(gdb.section('dmesg')));
      assert.ok(lines(ourLog).length > 50);
      const mods = ((await (s as TestSession).dc.customRequest('modules', {})).body.modules as DebugProtocol.Module[]).map((x) => x.name);
      const theirs = gdb
        .section('lsmod')
        .split('\n')
        .slice(1)
        .filter((l) => /^0x/.test(l))
        .map((l) => l.split(/\s+/)[1]);
      assert.deepEqual(mods, theirs);
    });
  });
}
