// gdb's side of the module rows, with the kernel's own gdb scripts (vmlinux-gdb.py of the
// sample guest's tree) and their `lx-symbols`, which loads every loaded module's symbols and
// sets a silent breakpoint on do_init_module that loads each new one's; and the plain boots
// (no debugger) of M1b and M2. QEMU gets the adapter's own machine arguments where the row
// has an ours session to read them from (P3's way), a file or socket serial, and a unix
// gdbstub in a private 0700 directory.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureNoQemu } from './proc.mjs';
import { ConsoleTail, LOADED_LINE, READY_LINE, phases, consoleInput, gdbRemoteLog, insmodCycle, isContinue, parseWireLog, privateDir, shellReady } from './modules.mjs';

const PYTHON = `
import gdb, time, os

def _out(s):
    gdb.write(s)
    gdb.flush()

def qkd_wait_socket(p):
    deadline = time.time() + 60
    while not os.path.exists(p):
        if time.time() > deadline:
            raise gdb.GdbError('no gdbstub socket at ' + p)
        time.sleep(0.002)

def qkd_mark(tag):
    _out('@@%s\\n' % tag)

def qkd_m2(sock, moddir):
    t0 = time.perf_counter()
    gdb.execute('target remote ' + sock, to_string=True)
    t1 = time.perf_counter()
    out = gdb.execute('lx-symbols ' + moddir, to_string=True)
    t2 = time.perf_counter()
    n = out.count('loading @')
    _out(out)
    _out('@@M2 %.6f %.6f %d\\n' % (t2 - t0, t1 - t0, n))

def qkd_end():
    with open('/proc/self/status') as f:
        for l in f:
            if l.startswith('VmHWM:'):
                _out('@@RSS %s\\n' % l.split()[1])
`;

/** gdb -batch with the kernel's scripts sourced (not auto-loaded: the tree is not on gdb's safe path). */
function gdbArgs(guest, mods, script, ex) {
  return [
    '-q',
    '-nx',
    '-batch',
    // lx-symbols re-reads vmlinux with symbol-file; its auto-load of vmlinux-gdb.py would only warn.
    '-iex',
    'set auto-load python-scripts off',
    '-ex',
    'set pagination off',
    '-ex',
    'set confirm off',
    '-ex',
    `source ${mods.gdbScripts}`,
    '-ex',
    `source ${script}`,
    ...ex.flatMap((c) => ['-ex', c]),
    guest.vmlinux,
  ];
}

/** A child's stdout/stderr kept, with a hook on each stdout chunk. */
function collect(child, onOut = () => undefined) {
  const io = { out: '', err: '' };
  child.stdout?.on('data', (d) => {
    io.out += d;
    onOut(io.out);
  });
  child.stderr?.on('data', (d) => (io.err += d));
  return io;
}

const exited = (child) => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('close', r)));

export async function killQemu(qemu, sockPattern, who) {
  if (!qemu) return;
  if (qemu.exitCode === null && qemu.signalCode === null) {
    const gone = exited(qemu);
    qemu.kill('SIGKILL');
    await gone;
  }
  await ensureNoQemu(sockPattern, who);
}

/** Ends gdb: SIGINT interrupts its `continue` (the batch then runs its last commands), then SIGKILL if it is still there after `ms`. */
async function endGdb(g, ms = 20000) {
  if (g.exitCode !== null || g.signalCode !== null) return;
  const done = exited(g);
  g.kill('SIGINT');
  const timer = setTimeout(() => g.kill('SIGKILL'), ms);
  await done;
  clearTimeout(timer);
}

/**
 * M1a, gdb: the guest boots by itself (no debugger during the boot: lx-symbols needs the
 * kernel's memory mapped); once its shell is up, gdb attaches, runs `lx-symbols <modules
 * dir>`, sets the pending line breakpoint, turns on `set debug timestamp on` and `set debug
 * remote 1` (its stderr goes to a file) and continues; then the insmod/rmmod cycles are typed
 * into the console. The debug log, rewritten in ours' rspLog format, gives the pauses, read
 * the same way as ours'. Afterwards gdb is interrupted: its batch lists the breakpoint,
 * reports its peak RSS and detaches.
 */
export async function gdbModuleLoads({ guest, mods, machineArgs, cycles, line }) {
  const dir = privateDir('qkd-bench-m1a-');
  const sock = path.join(dir, 'gdb.sock');
  const conSock = path.join(dir, 'console.sock');
  const script = path.join(dir, 'qkd_bench.py');
  const debugLog = path.join(dir, 'gdb-remote.log');
  fs.writeFileSync(script, PYTHON);
  const tail = new ConsoleTail(path.join(dir, 'console.log'), 20);
  let qemu = null;
  let g = null;
  let input = null;
  let io = { out: '', err: '' };
  let qemuErr = '';
  const log = () => (fs.existsSync(debugLog) ? fs.readFileSync(debugLog, 'latin1') : '');
  const fail = (why) => new Error(`gdb (M1a): ${why}\nstderr: ${log().slice(-1500)}\nQEMU stderr: ${qemuErr.slice(-500)}\nstdout (last lines):\n${io.out.split('\n').slice(-25).join('\n')}`);
  try {
    qemu = spawn(machineArgs[0], [...machineArgs.slice(1), '-chardev', `socket,id=con,path=${conSock},server=on,wait=off,logfile=${tail.file}`, '-serial', 'chardev:con', '-gdb', `unix:${sock},server=on,wait=off`], { stdio: ['ignore', 'ignore', 'pipe'] });
    qemu.stderr.on('data', (d) => (qemuErr += d));
    await shellReady(tail);
    const errFd = fs.openSync(debugLog, 'w');
    g = spawn(
      'gdb',
      gdbArgs(guest, mods, script, [
        `target remote ${sock}`,
        `lx-symbols ${mods.dir}`,
        'set breakpoint pending on',
        `break ${path.basename(mods.sampleSource)}:${line}`,
        'set debug timestamp on',
        'set debug remote 1',
        'continue',
        'set debug remote 0',
        'info breakpoints',
        'python qkd_end()',
        'detach',
      ]),
      { cwd: dir, stdio: ['ignore', 'pipe', errFd] },
    );
    fs.closeSync(errFd);
    io = collect(g);
    const gone = exited(g).then(() => {
      throw fail('gdb ended before the cycles were done');
    });
    gone.catch(() => undefined);
    // The `continue` is on the wire once gdb has logged it: the guest runs under gdb.
    const t0 = performance.now();
    while (!parseWireLog(gdbRemoteLog(log())).some((e) => e.dir === '->' && isContinue(e.payload))) {
      if (performance.now() - t0 > 60000) throw fail('gdb never continued the guest');
      await Promise.race([new Promise((r) => setTimeout(r, 20)), gone]);
    }
    input = await consoleInput(conSock);
    const ko = `${mods.guestDir}/${path.basename(mods.sample)}`;
    for (let i = 0; i < cycles; i++) await Promise.race([insmodCycle(input, tail, ko, 'qkd_sample', i), gone]);
    await endGdb(g);
    if (!/^@@RSS /m.test(io.out)) throw fail('gdb did not finish its batch after the interrupt');
    const loads = (io.out.match(/^loading @0x[0-9a-f]+: .*qkd_sample\.ko$/gm) ?? []).length;
    if (loads < cycles) throw fail(`lx-symbols loaded qkd_sample.ko ${loads} times in ${cycles} cycles`);
    // gdb's breakpoint got an address in the module (it stays at the last one after rmmod).
    if (!new RegExp(`0x[0-9a-f]+\\s+in \\w+ at .*${path.basename(mods.sampleSource)}:${line}`).test(io.out)) throw fail(`the breakpoint at ${path.basename(mods.sampleSource)}:${line} never got a location`);
    if (process.env.QKD_KEEP) fs.copyFileSync(debugLog, process.env.QKD_KEEP);
    return { wire: gdbRemoteLog(log()), rssMb: Number(/^@@RSS (\d+)/m.exec(io.out)[1]) / 1024, loads, reloads: (io.out.match(/^refreshing all symbols to reload module/gm) ?? []).length };
  } finally {
    input?.close();
    tail.close();
    if (g) {
      g.kill('SIGKILL');
      await exited(g);
    }
    await killQemu(qemu, sock, 'gdb (M1a)');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * M1b, gdb: QEMU (paused, -S) and gdb spawned together, the clock started just before;
 * gdb connects, runs to start_kernel (lx-symbols reads the kernel's module list, which is not
 * mapped at the reset vector), runs `lx-symbols <modules dir>` and continues. The clock stops
 * when the ready line is on the console. Then gdb is interrupted and must have loaded every
 * bench module's symbols.
 */
export async function gdbBoot({ guest, mods, machineArgs, names }) {
  const dir = privateDir('qkd-bench-m1b-gdb-');
  const sock = path.join(dir, 'gdb.sock');
  const script = path.join(dir, 'qkd_bench.py');
  fs.writeFileSync(script, PYTHON);
  const tail = new ConsoleTail(path.join(dir, 'console.log'), 5, LOADED_LINE);
  let qemu = null;
  let g = null;
  let io = { out: '', err: '' };
  const fail = (why) => new Error(`gdb (M1b): ${why}\nstderr: ${io.err.slice(-1500)}\nstdout (last lines):\n${io.out.split('\n').slice(-25).join('\n')}`);
  try {
    const t0 = performance.now();
    qemu = spawn(machineArgs[0], [...machineArgs.slice(1), '-serial', `file:${tail.file}`, '-gdb', `unix:${sock},server=on,wait=off`, '-S'], { stdio: ['ignore', 'ignore', 'ignore'] });
    g = spawn(
      'gdb',
      gdbArgs(guest, mods, script, [`python qkd_wait_socket('${sock}')`, `target remote ${sock}`, 'tbreak start_kernel', 'continue', `lx-symbols ${mods.dir}`, 'continue', 'python qkd_end()', 'detach']),
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    io = collect(g);
    const gone = exited(g).then(() => {
      throw fail('gdb ended before the ready line');
    });
    gone.catch(() => undefined);
    const ready = await Promise.race([tail.waitFor(READY_LINE, { from: 0, timeoutMs: 180000 }), gone]);
    const s = (ready.t - t0) / 1000;
    checkLoaded(tail.read(), names, fail);
    await endGdb(g);
    const loaded = names.filter((n) => new RegExp(`^loading @0x[0-9a-f]+: .*/${n}\\.ko$`, 'm').test(io.out));
    if (loaded.length !== names.length) throw fail(`lx-symbols loaded ${loaded.length} of the ${names.length} modules' symbols`);
    return { s, phases: phases(tail, names, t0, ready.t), rssMb: /^@@RSS (\d+)/m.test(io.out) ? Number(/^@@RSS (\d+)/m.exec(io.out)[1]) / 1024 : null };
  } finally {
    tail.close();
    if (g) {
      g.kill('SIGKILL');
      await exited(g);
    }
    await killQemu(qemu, sock, 'gdb (M1b)');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Every module init printed its line and none failed to load. */
function checkLoaded(consoleText, names, fail) {
  const missing = names.filter((n) => !consoleText.includes(`${n}: loaded`));
  if (missing.length || /qkd-guest: cannot load module/.test(consoleText)) throw fail(`the guest did not load ${missing.join(', ') || 'every module'}: ${JSON.stringify(consoleText.slice(-400))}`);
}

/** M1b with no debugger: the same QEMU command line, not paused, a file serial; spawn → ready line. */
export async function plainBoot({ machineArgs, names }) {
  const dir = privateDir('qkd-bench-m1b-plain-');
  const tail = new ConsoleTail(path.join(dir, 'console.log'), 5, LOADED_LINE);
  let qemu = null;
  try {
    const t0 = performance.now();
    qemu = spawn(machineArgs[0], [...machineArgs.slice(1), '-serial', `file:${tail.file}`], { stdio: ['ignore', 'ignore', 'ignore'] });
    const ready = await tail.waitFor(READY_LINE, { from: 0, timeoutMs: 180000 });
    checkLoaded(tail.read(), names, (why) => new Error(`QEMU alone (M1b): ${why}`));
    return { s: (ready.t - t0) / 1000, phases: phases(tail, names, t0, ready.t) };
  } finally {
    tail.close();
    await killQemu(qemu, tail.file, 'QEMU alone (M1b)');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * M2's guest: QEMU, not paused, with the modules loaded by init and a unix gdbstub in a
 * private 0700 directory; resolves once the shell is up. Both sides attach to it running.
 * `stop()` kills it.
 */
export async function bootForAttach({ machineArgs, names }) {
  const dir = privateDir('qkd-bench-m2-');
  const sock = path.join(dir, 'gdb.sock');
  const tail = new ConsoleTail(path.join(dir, 'console.log'), 20);
  const qemu = spawn(machineArgs[0], [...machineArgs.slice(1), '-serial', `file:${tail.file}`, '-gdb', `unix:${sock},server=on,wait=off`], { stdio: ['ignore', 'ignore', 'ignore'] });
  const stop = async () => {
    tail.close();
    await killQemu(qemu, sock, 'M2 guest');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await shellReady(tail);
    checkLoaded(tail.read(), names, (why) => new Error(`M2 guest: ${why}`));
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, sock, stop };
}

/**
 * M2, gdb: attach to the running guest and load every module's symbols. In gdb's Python:
 * `target remote` then `lx-symbols <modules dir>`, timed with perf_counter (the figure);
 * `whole` is the bench's clock from spawning gdb (which reads vmlinux first) to that line.
 * gdb detaches at the end, leaving the guest running.
 */
export async function gdbAttach({ guest, mods, sock, dir, names }) {
  const script = path.join(dir, 'qkd_bench.py');
  fs.writeFileSync(script, PYTHON);
  let tLine = null;
  const t0 = performance.now();
  const g = spawn('gdb', gdbArgs(guest, mods, script, [`python qkd_m2('${sock}', '${mods.dir}')`, 'python qkd_end()', 'detach']), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const io = collect(g, (out) => {
    if (tLine === null && /^@@M2 /m.test(out)) tLine = performance.now();
  });
  const timer = setTimeout(() => g.kill('SIGKILL'), 120000);
  const code = await new Promise((r) => g.on('close', r));
  clearTimeout(timer);
  const fail = (why) => new Error(`gdb (M2): ${why} (exit ${code})\nstderr: ${io.err.slice(-1500)}\nstdout (last lines):\n${io.out.split('\n').slice(-25).join('\n')}`);
  const m = /^@@M2 (\S+) (\S+) (\d+)$/m.exec(io.out);
  if (!m) throw fail('no @@M2 line');
  const loaded = names.filter((n) => new RegExp(`^loading @0x[0-9a-f]+: .*/${n}\\.ko$`, 'm').test(io.out));
  if (loaded.length !== names.length) throw fail(`lx-symbols loaded ${loaded.length} of the ${names.length} modules' symbols`);
  return { s: Number(m[1]), connect_s: Number(m[2]), whole_s: (tLine - t0) / 1000, rssMb: Number(/^@@RSS (\d+)/m.exec(io.out)?.[1] ?? NaN) / 1024 };
}
