// gdb's side of one guest session: QEMU started paused with the adapter's own machine
// arguments, gdb -batch scripted through the same stops, timings taken in gdb's Python.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureNoQemu } from './proc.mjs';

// Each timing is taken inside gdb (no client round trips in gdb's figures) and printed as a
// `@@TAG value…` line for the bench to parse. Output is flushed at once because the bench
// stream-parses stdout for P3's end.
const PYTHON = `
import gdb, time, os, hashlib

def _out(s):
    gdb.write(s)
    gdb.flush()

def qkd_wait_socket(p):
    deadline = time.time() + 60
    while not os.path.exists(p):
        if time.time() > deadline:
            raise gdb.GdbError('no gdbstub socket at ' + p)
        time.sleep(0.002)

def _line():
    return gdb.selected_frame().find_sal().line

def qkd_stop(tag):
    t0 = time.perf_counter()
    for c in ('bt', 'info args', 'info locals'):
        _out(gdb.execute(c, to_string=True))
    dt = time.perf_counter() - t0
    _out('@@%s %.6f %s %d\\n' % (tag, dt, gdb.selected_frame().name(), _line()))

def qkd_steps(n):
    _out('@@LINE0 %d\\n' % _line())
    for i in range(n):
        t0 = time.perf_counter()
        gdb.execute('next', to_string=True)
        dt = time.perf_counter() - t0
        _out('@@P4 %.6f %d\\n' % (dt, _line()))

def qkd_read(size):
    addr = int(gdb.parse_and_eval('(unsigned long)&_text'))
    inf = gdb.selected_inferior()
    t0 = time.perf_counter()
    b = bytes(inf.read_memory(addr, size))
    dt = time.perf_counter() - t0
    _out('@@P5 %.6f %x %d %s %s %s\\n' % (dt, addr, len(b), b[:64].hex(), b[-64:].hex(), hashlib.sha256(b).hexdigest()))

def qkd_end():
    with open('/proc/self/status') as f:
        for l in f:
            if l.startswith('VmHWM:'):
                _out('@@RSS %s\\n' % l.split()[1])
`;

/**
 * One boot under gdb. The clock starts before QEMU and gdb are spawned together; gdb reads
 * the vmlinux while QEMU starts, then waits for the gdbstub's socket (as a script would),
 * so gdb isn't charged for starting the two one after the other.
 */
export async function gdbSession({ guest, dir, steps, machineArgs, readSize }) {
  const sock = path.join(dir, 'gdb.sock');
  const script = path.join(dir, 'qkd_bench.py');
  fs.writeFileSync(script, PYTHON);
  const ex = [
    'set pagination off',
    `source ${script}`,
    `python qkd_wait_socket('${sock}')`,
    `target remote ${sock}`,
    'break kernel_clone',
    'continue',
    'python qkd_stop("P6")',
    `python qkd_steps(${steps})`,
    `python qkd_read(${readSize})`,
    'continue',
    'python qkd_stop("P6b")',
    'python qkd_end()',
  ];
  const t0 = performance.now();
  const qemu = spawn(machineArgs[0], [...machineArgs.slice(1), '-serial', `file:${path.join(dir, 'gdb-console.log')}`, '-gdb', `unix:${sock},server=on,wait=off`, '-S'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let qemuErr = '';
  qemu.stderr.on('data', (d) => (qemuErr += d));
  const g = spawn('gdb', ['-q', '-nx', '-batch', ...ex.flatMap((c) => ['-ex', c]), guest.vmlinux], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let tArgs = null;
  let tStop = null;
  g.stdout.on('data', (d) => {
    out += d;
    if (tStop === null && /^Breakpoint 1, /m.test(out)) tStop = performance.now();
    // P3 ends when `info args` at the first stop has printed `args = …`.
    if (tArgs === null && /^args = /m.test(out)) tArgs = performance.now();
  });
  g.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => g.kill('SIGKILL'), 180000);
  const code = await new Promise((resolve) => g.on('close', resolve));
  clearTimeout(timer);
  qemu.kill('SIGKILL');
  await new Promise((resolve) => (qemu.exitCode !== null || qemu.signalCode !== null ? resolve() : qemu.on('close', resolve)));
  await ensureNoQemu(sock, 'gdb');

  const fail = (why) => new Error(`gdb: ${why} (exit ${code})\nstderr: ${err.slice(-1500)}\nQEMU stderr: ${qemuErr.slice(-500)}\nstdout (last lines):\n${out.split('\n').slice(-20).join('\n')}`);
  const one = (tag) => {
    const m = new RegExp(`^@@${tag} (.*)$`, 'm').exec(out);
    if (!m) throw fail(`no @@${tag} line`);
    return m[1].split(' ');
  };
  const r = {};
  if (tArgs === null) throw fail('`info args` never printed `args = `');
  r.p3 = (tArgs - t0) / 1000;
  r.toStop = tStop === null ? null : (tStop - t0) / 1000;
  const p6 = one('P6');
  if (p6[1] !== 'kernel_clone') throw fail(`first stop in ${p6[1]}, not kernel_clone`);
  r.p6 = Number(p6[0]);
  r.lines = [Number(one('LINE0')[0])];
  r.p4 = [];
  for (const m of out.matchAll(/^@@P4 (\S+) (\d+)$/gm)) {
    r.p4.push(Number(m[1]));
    r.lines.push(Number(m[2]));
  }
  if (r.p4.length !== steps) throw fail(`${r.p4.length} timed steps of ${steps}`);
  const p5 = one('P5');
  r.p5 = Number(p5[0]);
  r.textAddr = BigInt(`0x${p5[1]}`);
  r.memLength = Number(p5[2]);
  r.memFirst = p5[3];
  r.memLast = p5[4];
  r.memSha = p5[5];
  const p6b = one('P6b');
  if (p6b[1] !== 'kernel_clone') throw fail(`second stop in ${p6b[1]}, not kernel_clone`);
  r.p6b = Number(p6b[0]);
  r.rssMb = Number(one('RSS')[0]) / 1024;
  return r;
}
