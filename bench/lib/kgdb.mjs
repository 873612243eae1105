// K2, K3, gdb: attach to the running KASLR guest told the offset the guest itself reports
// (add-symbol-file -o, with the x86 per-CPU section kept at 0, where KASLR leaves it), the
// kernel's vmlinux-gdb.py sourced, then lx-ps and lx-dmesg timed in gdb's Python with
// perf_counter, each twice: the first run pays for gdb's type lookups, as ours' cold does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';

const PYTHON = `
import gdb, time

def qkd_k(vmlinux, off, scripts, sock):
    gdb.execute('add-symbol-file %s -o %s -s .data..percpu 0' % (vmlinux, off), to_string=True)
    gdb.execute('source ' + scripts, to_string=True)
    gdb.execute('target remote ' + sock, to_string=True)
    r = []
    for cmd in ['lx-ps', 'lx-ps', 'lx-dmesg', 'lx-dmesg']:
        t0 = time.perf_counter()
        out = gdb.execute(cmd, to_string=True)
        r.append('%.6f %d' % (time.perf_counter() - t0, out.count('\\n')))
    gdb.write('@@K %s\\n' % ' '.join(r))
    gdb.flush()
`;

export async function gdbKernel({ guest, scripts, sock, dir, offset }) {
  const script = path.join(dir, 'qkd_k.py');
  fs.writeFileSync(script, PYTHON);
  const args = ['-q', '-nx', '-batch', '-iex', 'set auto-load python-scripts off', '-ex', 'set pagination off', '-ex', 'set confirm off', '-ex', `source ${script}`, '-ex', `python qkd_k('${guest.vmlinux}', '0x${BigInt(offset).toString(16)}', '${scripts}', '${sock}')`, '-ex', 'detach'];
  const g = spawn('gdb', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  g.stdout.on('data', (d) => (out += d));
  g.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => g.kill('SIGKILL'), 180000);
  const code = await new Promise((r) => g.on('close', r));
  clearTimeout(timer);
  const m = /^@@K ([\d.]+) (\d+) ([\d.]+) (\d+) ([\d.]+) (\d+) ([\d.]+) (\d+)$/m.exec(out);
  if (!m) throw new Error(`gdb (K): no @@K line (exit ${code})\nstderr: ${err.slice(-1500)}\nstdout: ${out.slice(-1500)}`);
  return { ps_cold_s: Number(m[1]), ps_s: Number(m[3]), ps_lines: Number(m[4]), dmesg_cold_s: Number(m[5]), dmesg_s: Number(m[7]), dmesg_lines: Number(m[8]) };
}
