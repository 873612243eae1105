// M1b's floor for a debugger that follows module loads with breakpoints: QEMU alone, driven
// by a bare GDB remote-protocol client (bench/lib/qemulimit.mjs's RspWire, no code of the
// adapter's) that sends, at each module load, the packets that change QEMU's state in ours'
// pattern in M1b, read from ours' wire log (at do_init_module's stop, a breakpoint on the
// return address, a single step over the hook, a continue; at the return address, that
// breakpoint removed and a continue), with no debugger work in between: no memory reads, no
// symbols. Under TCG each breakpoint change and each single step makes QEMU 7.2 drop every
// translated block, so the guest pays for retranslation after each of these stops whatever
// the debugger does while stopped; this is that cost alone.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { connectWhenListening, RspWire } from './qemulimit.mjs';
import { elfSymbolAddress } from './elfsym.mjs';
import { ensureNoQemu } from './proc.mjs';
import { ConsoleTail, LOADED_LINE, READY_LINE, phases, privateDir } from './modules.mjs';

const rip = (g) => Buffer.from(g.slice(16 * 16, 17 * 16), 'hex').readBigUInt64LE(0);
const rsp = (g) => Buffer.from(g.slice(7 * 16, 8 * 16), 'hex').readBigUInt64LE(0);

/**
 * pattern: 'ours' (two stops per load, as above) or 'single' (one stop per load: a single
 * step over the hook and a continue, gdb's lx-symbols' count of stops). Clock: QEMU's spawn
 * (paused) → the ready line; returns the time and the console phases.
 */
export async function hookFloorBoot({ machineArgs, names, vmlinux, pattern = 'ours' }) {
  const dir = privateDir('qkd-bench-m1b-floor-');
  const sock = path.join(dir, 'gdb.sock');
  const tail = new ConsoleTail(path.join(dir, 'console.log'), 5, LOADED_LINE);
  const hook = elfSymbolAddress(vmlinux, 'do_init_module');
  let qemu = null;
  let s = null;
  try {
    const t0 = performance.now();
    qemu = spawn(machineArgs[0], [...machineArgs.slice(1), '-serial', `file:${tail.file}`, '-gdb', `unix:${sock},server=on,wait=off`, '-S'], { stdio: ['ignore', 'ignore', 'ignore'] });
    s = await connectWhenListening(sock);
    const w = new RspWire(s);
    const x = async (p) => {
      w.send(p);
      return w.reply();
    };
    await x(`Z0,${hook.toString(16)},1`);
    let ready = null;
    let failed = null;
    tail.waitFor(READY_LINE, { from: 0, timeoutMs: 180000 }).then(
      (r) => (ready = r),
      (e) => (failed = e),
    );
    let ret = null;
    let stops = 0;
    let pending = null;
    // Stops at neither address: continued, counted, and the last few packets kept to say why.
    const unexpected = [];
    const trail = [];
    w.send('c');
    while (!ready) {
      if (failed) throw failed;
      pending ??= w.reply();
      const stop = await Promise.race([pending, new Promise((r) => setTimeout(() => r(null), 20))]);
      if (stop === null) continue;
      pending = null;
      stops++;
      const g = await x('g');
      const pc = rip(g);
      trail.push(`${stop} at 0x${pc.toString(16)} (ret ${ret === null ? '-' : `0x${ret.toString(16)}`})`);
      if (trail.length > 6) trail.shift();
      if (pc === hook) {
        if (pattern === 'ours') {
          ret = Buffer.from(await x(`m${rsp(g).toString(16)},8`), 'hex').readBigUInt64LE(0);
          await x(`Z0,${ret.toString(16)},1`);
        }
        await x('vCont;s:1');
        await x('g');
      } else if (pc === ret) {
        await x(`z0,${ret.toString(16)},1`);
        ret = null;
      } else unexpected.push(trail.join('; '));
      w.send('vCont;c');
    }
    const text = tail.read();
    const missing = names.filter((n) => !text.includes(`${n}: loaded`));
    if (missing.length) throw new Error(`hook floor: the guest did not load ${missing.join(', ')}`);
    return { s: (ready.t - t0) / 1000, stops, unexpected, phases: phases(tail, names, t0, ready.t) };
  } finally {
    s?.destroy();
    tail.close();
    if (qemu) {
      if (qemu.exitCode === null && qemu.signalCode === null) {
        const gone = new Promise((r) => qemu.once('close', r));
        qemu.kill('SIGKILL');
        await gone;
      }
      await ensureNoQemu(sock, 'hook floor');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
