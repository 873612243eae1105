// P3's floor: QEMU alone, from spawn to the stop reply at the guest's first kernel_clone
// call, with no debugger's work in it. A minimal GDB remote-protocol client, independent of
// the adapter under test: the same QEMU command line as gdb's side (the adapter's machine
// arguments, a file serial, a unix-socket gdbstub, -S) in a private 0700 directory; once the
// socket answers, one `Z0` at kernel_clone's address from the vmlinux's symbol table, then
// `c`; the clock stops when the stop reply arrives. The PC is read afterwards (`g`, rip)
// to check the stop is the breakpoint, outside the timed span.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { elfSymbolAddress } from './elfsym.mjs';
import { ensureNoQemu } from './proc.mjs';

const checksum = (s) => (Buffer.from(s, 'latin1').reduce((a, b) => (a + b) & 0xff, 0)).toString(16).padStart(2, '0');
export const packet = (payload) => `$${payload}#${checksum(payload)}`;

/**
 * Packets over one socket: `send(payload)` writes it framed; `reply()` resolves with the next
 * packet's payload (acking it with `+`); `+`/`-` acks from QEMU are skipped (a `-` resends).
 */
export class RspWire {
  constructor(sock) {
    this.sock = sock;
    this.buf = '';
    this.waiters = [];
    this.last = null;
    this.closed = null;
    sock.setNoDelay?.(true);
    sock.on('data', (d) => {
      this.buf += d.toString('latin1');
      this.pump();
    });
    const fail = (e) => {
      this.closed = e ?? new Error('the gdbstub closed the connection');
      for (const w of this.waiters.splice(0)) w.reject(this.closed);
    };
    sock.on('error', fail);
    sock.on('close', () => fail());
  }

  send(payload) {
    this.last = packet(payload);
    this.sock.write(this.last);
  }

  reply() {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.pump();
    });
  }

  pump() {
    for (;;) {
      while (this.buf[0] === '+') this.buf = this.buf.slice(1);
      if (this.buf[0] === '-') {
        this.buf = this.buf.slice(1);
        if (this.last) this.sock.write(this.last);
        continue;
      }
      const start = this.buf.indexOf('$');
      if (start < 0) return;
      const end = this.buf.indexOf('#', start);
      if (end < 0 || this.buf.length < end + 3 || !this.waiters.length) return;
      const payload = this.buf.slice(start + 1, end);
      this.buf = this.buf.slice(end + 3);
      this.sock.write('+');
      this.waiters.shift().resolve(payload);
    }
  }
}

export async function connectWhenListening(sockPath, deadlineMs = 60000) {
  const deadline = performance.now() + deadlineMs;
  for (;;) {
    const s = await new Promise((resolve) => {
      const c = net.createConnection({ path: sockPath });
      c.once('connect', () => resolve(c));
      c.once('error', () => {
        c.destroy();
        resolve(null);
      });
    });
    if (s) return s;
    if (performance.now() > deadline) throw new Error(`no gdbstub listening at ${sockPath} within ${deadlineMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * One measurement. machineArgs: QEMU's binary and machine arguments (the adapter's, up to its
 * first -chardev, as gdb's side gets them). Returns { s, connect_s, pc, address }.
 */
export async function qemuLimit({ machineArgs, vmlinux, symbol = 'kernel_clone', timeoutMs = 180000 }) {
  const address = elfSymbolAddress(vmlinux, symbol);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-limit-'));
  fs.chmodSync(dir, 0o700);
  const sockPath = path.join(dir, 'gdb.sock');
  let qemu = null;
  let sock = null;
  let qemuErr = '';
  try {
    const t0 = performance.now();
    qemu = spawn(machineArgs[0], [...machineArgs.slice(1), '-serial', `file:${path.join(dir, 'console.log')}`, '-gdb', `unix:${sockPath},server=on,wait=off`, '-S'], { stdio: ['ignore', 'ignore', 'pipe'] });
    qemu.stderr.on('data', (d) => (qemuErr += d));
    const exited = new Promise((_, reject) => qemu.once('exit', (code, sig) => reject(new Error(`QEMU exited (code ${code}, signal ${sig}) before the stop: ${qemuErr.slice(-500)}`))));
    exited.catch(() => {});
    sock = await Promise.race([connectWhenListening(sockPath, 60000), exited]);
    const tConnect = performance.now();
    const wire = new RspWire(sock);
    const timer = setTimeout(() => sock.destroy(new Error(`no stop at ${symbol} within ${timeoutMs / 1000} s`)), timeoutMs);
    try {
      wire.send(`Z0,${address.toString(16)},1`);
      const z = await Promise.race([wire.reply(), exited]);
      if (z !== 'OK') throw new Error(`Z0 at 0x${address.toString(16)} answered ${JSON.stringify(z)}`);
      wire.send('c');
      const stop = await Promise.race([wire.reply(), exited]);
      const t1 = performance.now();
      if (!/^[TS][0-9a-f]{2}/i.test(stop)) throw new Error(`continue answered ${JSON.stringify(stop)}, not a stop reply`);
      // QEMU answers `p` only to a client that took its target XML; `g` is always there: in
      // long mode rax … r15 (8 bytes each), then rip.
      wire.send('g');
      const regs = await Promise.race([wire.reply(), exited]);
      if (regs.length < 17 * 16) throw new Error(`g answered ${JSON.stringify(regs.slice(0, 80))}`);
      const pc = Buffer.from(regs.slice(16 * 16, 17 * 16), 'hex').readBigUInt64LE(0);
      if (pc !== address) throw new Error(`stopped at 0x${pc.toString(16)}, not at ${symbol} (0x${address.toString(16)})`);
      return { s: (t1 - t0) / 1000, connect_s: (tConnect - t0) / 1000, stop, pc, address };
    } finally {
      clearTimeout(timer);
    }
  } finally {
    sock?.destroy();
    if (qemu) {
      if (qemu.exitCode === null && qemu.signalCode === null) {
        const gone = new Promise((r) => qemu.once('close', r));
        qemu.kill('SIGKILL');
        await gone;
      }
      await ensureNoQemu(sockPath, 'limit');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
