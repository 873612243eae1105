/** The qkd command line: headless debug through the same adapter, and boot with the console on stdio. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { READY_LINE } from '../../src/guest/initramfs';
import { artifact, CLI, requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbSession, haveGdb, NO_AUTOLOAD } from '../support/gdb';
import { nmAddress } from '../support/oracle';

const run = promisify(execFile);

/** A data symbol's address as nm prints it (the sample booted with --kaslr false). */
function nmDataAddress(vmlinux: string, name: string): bigint {
  const m = new RegExp(`^([0-9a-f]{16}) [DdBb] ${name}$`, 'm').exec(execFileSync('nm', [vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 }));
  assert.ok(m, name);
  return BigInt('0x' + m[1]);
}

describe('qkd CLI', function () {
  this.timeout(240_000);

  it('guest build --json reuses the cached sample guest and prints its paths', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    const { stdout } = await run('node', [CLI, 'guest', 'build', '--json']);
    const { modules, gdbScripts, ...paths } = JSON.parse(stdout) as { modules?: { sample: string }; gdbScripts?: string };
    assert.deepEqual(paths, { arch: 'x86_64', kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, source: g.source });
    assert.equal(modules?.sample, g.modules?.sample);
    assert.ok(modules && fs.existsSync(modules.sample), 'the sample module is built');
    assert.equal(gdbScripts, g.gdbScripts);
  });

  it('debug --break kernel_clone --dmesg --ps --json stops there and prints the registers, the kernel log from memory and the tasks', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    const { stdout, stderr } = await run('node', [CLI, 'debug', '--break', 'kernel_clone', '--dmesg', '--ps', '--json', '--accel', 'tcg', '--kaslr', 'false', '--console-log', artifact(this, 'console.log')]);
    const out = JSON.parse(stdout) as { function: string; reason: string; pc: string; registers: Record<string, string>; dmesg: string; tasks: Array<{ pid: number; comm: string; runningOn?: number; address: string }> };
    // At the first clone (kernel_init's) only the boot task exists, running on CPU 0.
    assert.deepEqual(
      out.tasks.map((t) => [t.pid, t.comm, t.runningOn]),
      [[0, 'swapper/0', 0]],
    );
    assert.equal(BigInt(out.tasks[0].address), nmDataAddress(g.vmlinux, 'init_task'));
    assert.equal(out.function, 'kernel_clone');
    assert.equal(out.reason, 'breakpoint');
    assert.equal(BigInt(out.registers.rip), nmAddress(g.vmlinux, 'kernel_clone'));
    assert.match(stderr, /breakpoint kernel_clone: at 0x/);
    // The first kernel_clone runs before the console is registered: the ring already has the boot's start.
    assert.match(out.dmesg, /^\[    0\.000000\] Linux version 6\.1/);
    assert.match(out.dmesg, /\] Command line: .*console=ttyS0/);
  });

  it('debug with the defaults (accel auto, KASLR on) prints the stop as gdb does: the frame line, the source line, a backtrace gdb agrees with, the registers', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    requireOrSkip(this, haveGdb(), 'gdb is not installed (bash scripts/setup.sh)');
    // No --accel: auto, as the README's main job runs it (on a host whose KVM can't boot Linux it falls back).
    const { stdout, stderr } = await run('node', [CLI, 'debug', '--break', 'kernel_clone', '--console-log', artifact(this, 'console.log')], { timeout: 200_000 });
    assert.match(stderr, /[Aa]ccelerator: /);
    // The editor's default exception filters: a panic or an Oops would stop the run too.
    for (const f of ['panic', 'oops', 'bug', 'sanitizer']) assert.match(stderr, new RegExp(`stops on: ${f}\\b`));
    // The sample kernel randomizes its base: found before it ran, then gdb (nokaslr) is compared shifted by it.
    const found = /KASLR: vmlinux runs at offset 0x([0-9a-f]+) .*found by extract_kernel/.exec(stderr);
    assert.ok(found, stderr);
    const offset = BigInt('0x' + found[1]);
    const lines = stdout.split('\n');
    assert.match(lines[0], /^Breakpoint 1, kernel_clone \(args=0x[0-9a-f]+\) at \S+\/kernel\/fork\.c:\d+$/);
    const line = Number(/:(\d+)$/.exec(lines[0])?.[1]);
    const text = fs.readFileSync(`${g.source}/kernel/fork.c`, 'utf8').split('\n')[line - 1];
    assert.equal(lines[1], `${line}\t${text.trimEnd()}`);
    const ours = lines.filter((l) => /^#\d/.test(l));
    const gdbOut = await gdbSession(g, ['break kernel_clone', 'continue', 'bt']);
    // gdb's last frame past secondary_startup_64 is `0x0000000000000000 in ?? ()`, the zero
    // return address the boot code leaves: not a frame, and ours stops before it.
    const theirs = gdbOut.split('\n').filter((l) => /^#\d/.test(l) && !/ 0x0+ in \?\? \(\)$/.test(l));
    assert.ok(theirs.length >= 5, gdbOut);
    assert.equal(ours.length, theirs.length, `ours:\n${ours.join('\n')}\ngdb:\n${theirs.join('\n')}`);
    // gdb names each frame's function, its PC (not for #0 or inlined frames) and file:line; ours must agree.
    const shape = (l: string, shift: bigint): string => {
      const m = /^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(\S+) \(.*\) at (\S+):(\d+)$/.exec(l);
      assert.ok(m, l);
      return `#${m[1]} ${m[2] ? (BigInt(m[2]) - shift).toString(16) : '-'} ${m[3]} ${path.basename(m[4])}:${m[5]}`;
    };
    assert.deepEqual(
      ours.map((l) => shape(l, offset)),
      theirs.map((l) => shape(l, 0n)),
    );
    // The argument gdb prints for kernel_clone is the same pointer, moved with the kernel.
    const arg = (l: string): bigint => BigInt(/args=(?:args@entry=)?(0x[0-9a-f]+)/.exec(l)?.[1] ?? '-1');
    assert.equal(arg(ours[0]) - offset, arg(theirs[0]));
    const rip = lines.find((l) => /^rip\s/.test(l));
    assert.ok(rip, stdout);
    assert.equal(BigInt((rip as string).split(/\s+/)[1]), nmAddress(g.vmlinux, 'kernel_clone') + offset);
  });

  it('where --json puts function and line breakpoints where gdb\'s info line does', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    requireOrSkip(this, haveGdb(), 'gdb is not installed (bash scripts/setup.sh)');
    // Functions in C and in a big unit, a line with code and lines without (the next line with code is used).
    const locs = ['kernel_clone', 'start_kernel', 'handle_mm_fault', 'kernel/fork.c:2739', 'init/main.c:1000', 'mm/memory.c:5000'];
    const { stdout } = await run('node', [CLI, 'where', '--json', '--vmlinux', g.vmlinux, '--source', g.source, ...locs], { cwd: g.source });
    const ours = JSON.parse(stdout) as Array<{ location: string; addresses: Array<{ address: string; line?: number; file?: string }> }>;
    const gdb = execFileSync('gdb', ['-q', '-nx', '-batch', ...NO_AUTOLOAD, ...locs.flatMap((l) => ['-ex', `info line ${l}`]), g.vmlinux], { cwd: g.source, encoding: 'utf8' }).trim().split('\n');
    assert.equal(gdb.length, locs.length, gdb.join('\n'));
    locs.forEach((loc, i) => {
      const m = /^Line (\d+) of "([^"]+)" (starts at|is at) address (0x[0-9a-f]+) /.exec(gdb[i]);
      assert.ok(m, `gdb: ${gdb[i]}`);
      const [first] = ours[i].addresses;
      assert.equal(ours[i].location, loc);
      assert.equal(BigInt(first.address), BigInt(m[4]), `${loc}: gdb says ${gdb[i]}`);
      // gdb names the line only where it has code; the file is the one gdb names, under --source.
      if (m[3] === 'starts at') assert.equal(first.line, Number(m[1]), loc);
      assert.equal(first.file, `${g.source}/${m[2]}`, loc);
    });
  });

  it('where --inlined: on arm64 and riscv64 a function is one location, its ELF entry before the ftrace NOPs, not also its DWARF start', async function () {
    requireBuilt(this);
    for (const arch of ['aarch64', 'riscv64']) {
      const g = sampleGuest(this, arch);
      const { stdout } = await run('node', [CLI, 'where', '--json', '--inlined', '--vmlinux', g.vmlinux, 'kernel_clone']);
      const [where] = JSON.parse(stdout) as Array<{ addresses: Array<{ address: string }> }>;
      const nm = execFileSync('nm', [g.vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 });
      const entry = BigInt('0x' + (/^([0-9a-f]{16}) T kernel_clone$/m.exec(nm) as RegExpExecArray)[1]);
      // Both stops would be the same call: a continue from the first would stop again at once.
      assert.deepEqual(where.addresses.map((a) => BigInt(a.address)), [entry], `${arch}: ${stdout}`);
    }
  });

  it('where says a function has no code and exits 1; without --vmlinux it names the field', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    await assert.rejects(run('node', [CLI, 'where', '--vmlinux', g.vmlinux, 'no_such_function_anywhere']), (e: { code: number; stdout: string }) => {
      assert.equal(e.code, 1);
      assert.equal(e.stdout, 'no_such_function_anywhere: no code found\n');
      return true;
    });
    await assert.rejects(run('node', [CLI, 'where', 'kernel_clone']), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /^qkd: Launch config field 'vmlinux' is required/);
      return true;
    });
  });

  it('prints its usage with no command, and refuses an unknown one with exit 2', async function () {
    requireBuilt(this);
    const { stdout } = await run('node', [CLI]);
    assert.match(stdout, /^usage: qkd <command>/);
    assert.match(stdout, /where --vmlinux FILE/);
    await assert.rejects(run('node', [CLI, 'frobnicate']), (e: { code: number; stderr: string }) => e.code === 2 && /unknown command 'frobnicate'/.test(e.stderr));
  });

  it('COMMAND --help prints that command\'s usage and exits 0, booting nothing', async function () {
    requireBuilt(this);
    for (const command of ['guest', 'boot', 'debug', 'decode', 'index', 'initramfs', 'where']) {
      const { stdout, stderr } = await run('node', [CLI, command, '--help']);
      assert.match(stdout, new RegExp(`^usage: qkd ${command}\\b`), command);
      assert.doesNotMatch(stdout, /^commands:/m, `${command}: only its own usage`);
      // Nothing started: no guest cache lookup, no QEMU.
      assert.equal(stderr, '', `${command} --help wrote to stderr: ${stderr}`);
      assert.equal(/launch options/.test(stdout), command === 'boot' || command === 'debug', command);
    }
  });

  it('decode says what is wrong with the log it was given (missing, a folder) and exits 1', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    for (const [log, why] of [
      ['/nonexistent/console.log', 'does not exist'],
      [path.dirname(g.vmlinux), 'is a folder'],
    ]) {
      await assert.rejects(run('node', [CLI, 'decode', '--vmlinux', g.vmlinux, log]), (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.ok(e.stderr.includes(`the log '${log}' ${why}`), e.stderr);
        return true;
      });
    }
  });

  it('index names a file that is no vmlinux, or that is missing, and exits 1', async function () {
    requireBuilt(this);
    const notElf = path.join(os.tmpdir(), `qkd-not-elf-${process.pid}`);
    fs.writeFileSync(notElf, 'not an ELF file\n');
    try {
      await assert.rejects(run('node', [CLI, 'index', '--vmlinux', notElf]), (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.ok(e.stderr.includes(`qkd index: ${notElf}: not an ELF file`), e.stderr);
        return true;
      });
    } finally {
      fs.rmSync(notElf, { force: true });
    }
    await assert.rejects(run('node', [CLI, 'index', '--module', '/nonexistent/x.ko']), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /'module'.*\/nonexistent\/x\.ko.*does not exist/);
      return true;
    });
  });

  it('debug names the bad field and exits 1', async function () {
    requireBuilt(this);
    await assert.rejects(run('node', [CLI, 'debug', '--kernel', '/nonexistent/bzImage', '--vmlinux', '/nonexistent/vmlinux']), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /'kernel'.*does not exist/);
      return true;
    });
    // An unknown exception filter is refused before anything boots, with the ones there are.
    await assert.rejects(run('node', [CLI, 'debug', '--catch', 'panic,oopz']), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /--catch: unknown filter "oopz"; the filters are panic, oops, bug, warn, sanitizer, lockup, or none/);
      return true;
    });
  });

  it('boot puts the console on stdio: echo hi answers hi, reboot -f ends QEMU; an earlier session in the same log is kept, not replayed', async function () {
    requireBuilt(this);
    sampleGuest(this);
    // QEMU appends to the log: what an earlier session left there stays, and isn't this session's output.
    const log = artifact(this, 'console.log');
    const earlier = `earlier session ${process.pid}: qkd-guest: ready (kernel 6.1.0)\n/ # echo hi\nhi\n`;
    fs.writeFileSync(log, earlier);
    const child = spawn('node', [CLI, 'boot', '--accel', 'tcg', '--console-log', log], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const seen = (re: RegExp, ms: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${re} not seen; output: ${out.slice(-300)}`)), ms);
        const check = (): void => {
          if (re.test(out)) {
            clearTimeout(timer);
            child.stdout.off('data', check);
            resolve();
          }
        };
        child.stdout.on('data', check);
        check();
      });
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await seen(new RegExp(READY_LINE), 120_000);
      child.stdin.write('echo hi\n');
      await seen(/\r?\nhi\r?\n/, 30_000);
      child.stdin.write('reboot -f\n');
      assert.equal(await exited, 0);
      assert.ok(!out.includes('earlier session'), 'the earlier session was replayed');
      assert.equal((out.match(/Linux version 6\.1/g) ?? []).length, 1, 'one boot on stdout');
      const kept = fs.readFileSync(log, 'utf8');
      assert.ok(kept.startsWith(earlier) && /Linux version 6\.1/.test(kept.slice(earlier.length)), 'the log holds the earlier session, then this one');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
