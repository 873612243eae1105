// What the module rows (M1a, M1b, M2) share: the sample guest's modules, the guest console
// (its log tailed for a pattern, its socket typed into), the GDB remote-protocol wire log and
// the pauses read from it: from the stop reply at a module hook to the packet that lets the
// guest run on. Ours' wire log is its `rspLog`; gdb's is its own `set debug remote 1` with
// `set debug timestamp on`, rewritten in the same format (gdbRemoteLog below).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { median } from './stats.mjs';

// src/guest/initramfs.ts: init prints READY_LINE after loading the modules named by LOAD_PARAM.
export const READY_LINE = 'qkd-guest: ready';
export const LOAD_PARAM = 'qkd.load';
export const SAMPLE = 'qkd_sample';
/** A module init's console line (`qkd_bench_07: loaded, value=7`), for the time each module came in. */
export const LOADED_LINE = /\b(qkd_\w+): loaded\b/;

/**
 * The sample guest's modules and gdb scripts: `qkd guest build --json` gives `modules` { dir,
 * sample, release, guestDir } and `gdbScripts` (the tree's vmlinux-gdb.py); the 20 bench
 * modules are `qkd_bench_01.ko` … `qkd_bench_20.ko` beside the sample. A CLI that prints only
 * the kernel stage is helped out by the userspace stage's stage.json beside the initramfs,
 * which holds the same.
 */
export function guestModules(guest) {
  let m = guest.modules;
  let gdbScripts = guest.gdbScripts;
  if (!m || !gdbScripts) {
    const file = path.join(path.dirname(guest.initrd), 'stage.json');
    try {
      const stage = JSON.parse(fs.readFileSync(file, 'utf8'));
      m ??= stage.modules;
      gdbScripts ??= stage.gdbScripts;
    } catch (e) {
      throw new Error(`the sample guest names no modules (qkd guest build --json, ${file}: ${e.message}); run: node dist/cli.js guest build`);
    }
  }
  if (!m?.dir || !m.sample || !fs.existsSync(m.sample)) throw new Error('the sample guest has no sample module; run: node dist/cli.js guest build');
  if (!gdbScripts || !fs.existsSync(gdbScripts)) throw new Error("the sample guest's tree has no vmlinux-gdb.py (gdb's lx-symbols); run: node dist/cli.js guest build");
  const benchNames = Array.from({ length: 20 }, (_, i) => `qkd_bench_${String(i + 1).padStart(2, '0')}`);
  const bench = benchNames.map((n) => path.join(m.dir, `${n}.ko`));
  const missing = bench.filter((f) => !fs.existsSync(f));
  if (missing.length) throw new Error(`the sample guest's module folder lacks ${missing.map((f) => path.basename(f)).join(', ')}; run: node dist/cli.js guest build`);
  return { dir: m.dir, sample: m.sample, release: m.release, guestDir: m.guestDir, bench, benchNames, gdbScripts, sampleSource: path.join(m.dir, `${SAMPLE}.c`) };
}

/** The line of qkd_sample.c marked `qkd-test: <marker>` (the module's tests put breakpoints there). */
export function markerLine(file, marker) {
  const i = fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(`qkd-test: ${marker}`));
  if (i < 0) throw new Error(`no 'qkd-test: ${marker}' line in ${file}`);
  return i + 1;
}

/** A private 0700 directory for sockets and logs (QEMU's gdbstub must not be reachable by others). */
export function privateDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o700);
  return dir;
}

/**
 * The guest console's log, read as it grows. `waitFor(pattern)` resolves with the time (the
 * bench's clock) the pattern was first seen after `from` (a byte offset; default: where the
 * log ends now). The file is polled every `pollMs` (QEMU appends small writes: inotify would
 * wake the process as often, and polling works before the file exists).
 */
export class ConsoleTail {
  /** `stamp`: a pattern with one group; each line matching it gets `stamps[group]`, the time it was first read. */
  constructor(file, pollMs = 5, stamp = null) {
    this.file = file;
    this.pollMs = pollMs;
    this.text = '';
    this.fd = null;
    this.stamp = stamp;
    this.stamps = {};
    this.scanned = 0;
  }

  /** Reads what was appended since the last call; returns the whole log so far. */
  read() {
    if (this.fd === null) {
      try {
        this.fd = fs.openSync(this.file, 'r');
      } catch {
        return this.text;
      }
    }
    const buf = Buffer.alloc(65536);
    for (;;) {
      const n = fs.readSync(this.fd, buf, 0, buf.length, this.text.length);
      if (n <= 0) break;
      this.text += buf.toString('latin1', 0, n);
    }
    if (this.stamp) {
      const end = this.text.lastIndexOf('\n') + 1;
      if (end > this.scanned) {
        const t = performance.now();
        for (const line of this.text.slice(this.scanned, end).split('\n')) {
          const m = this.stamp.exec(line);
          if (m) this.stamps[m[1]] ??= t;
        }
        this.scanned = end;
      }
    }
    return this.text;
  }

  get size() {
    return this.read().length;
  }

  waitFor(pattern, { from = this.size, timeoutMs = 120000, what = String(pattern) } = {}) {
    const test = (s) => (typeof pattern === 'string' ? s.includes(pattern) : pattern.test(s));
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const check = () => {
        const s = this.read().slice(from);
        const t = performance.now();
        if (test(s)) return resolve({ t, text: s });
        if (t - t0 > timeoutMs) return reject(new Error(`${what} did not appear on the guest console within ${timeoutMs / 1000} s; last output: ${JSON.stringify(s.slice(-400))}`));
        setTimeout(check, this.pollMs);
      };
      check();
    });
  }

  close() {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Where a boot's time went, from the console: clock start → the first module's `loaded`
 * line (the kernel's boot and init's start), first → last module line (the loads), last
 * module → ready line. Stamped when the bench read each line (every 5 ms).
 */
export function phases(tail, names, t0, tReady) {
  const first = tail.stamps[names[0]];
  const last = tail.stamps[names[names.length - 1]];
  if (first === undefined || last === undefined) return null;
  return { to_first_module_s: (first - t0) / 1000, modules_s: (last - first) / 1000, after_modules_s: (tReady - last) / 1000 };
}

/** Keystrokes into the guest console's socket; what comes back is read and dropped (QEMU stalls a UART whose client stops reading). */
export async function consoleInput(socketPath) {
  const sock = net.createConnection({ path: socketPath });
  sock.on('data', () => undefined);
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.on('error', () => undefined);
  return { write: (s) => sock.write(s), close: () => sock.destroy() };
}

/**
 * One insmod/rmmod cycle typed into the shell. Each command is followed by an `echo` of a
 * marker written with an empty quote inside (`M1""in-3`), so the shell's echo of the typed
 * line doesn't match and only the command's completion prints `M1in-3`. Returns once both
 * markers are on the console; the caller reads the wire log for what happened in between.
 */
export async function insmodCycle(input, tail, ko, name, i, timeoutMs = 60000) {
  let from = tail.size;
  input.write(`insmod ${ko}; echo M1""in-${i}\n`);
  const loaded = await tail.waitFor(`M1in-${i}`, { from, timeoutMs, what: `insmod ${name} (cycle ${i})` });
  if (!loaded.text.includes(`${name}: loaded`)) throw new Error(`insmod ${name} (cycle ${i}) did not print '${name}: loaded': ${JSON.stringify(loaded.text.slice(-300))}`);
  from = tail.size;
  input.write(`rmmod ${name}; echo M1""out-${i}\n`);
  const gone = await tail.waitFor(`M1out-${i}`, { from, timeoutMs, what: `rmmod ${name} (cycle ${i})` });
  if (/rmmod: /.test(gone.text)) throw new Error(`rmmod ${name} (cycle ${i}) failed: ${JSON.stringify(gone.text.slice(-300))}`);
}

/** Waits for init's ready line and the shell's prompt (busybox sh as root: "# "). */
export function shellReady(tail, timeoutMs = 180000) {
  return tail.waitFor(new RegExp(`${READY_LINE}[^]*# `), { from: 0, timeoutMs, what: `'${READY_LINE}' and a shell prompt` });
}

// ---------------------------------------------------------------------------------------
// The wire log. Ours writes it itself (launch field `rspLog`, src/adapter/backend.ts
// wireLogTo): `<seconds> -> <frame>` for what it sends, `<seconds> <- $<payload>` for what
// it receives, stamped as each is written to or parsed from the socket. gdb's debug log is
// stamped at the same two points (remote.c logs a packet as it sends it and as it has read
// it), on its own clock; gdbRemoteLog rewrites it in ours' format, so one reader serves both.

const LINE = /^(\d+(?:\.\d+)?) (->|<-) (.*)$/;

/** The packets of a wire log: { t (s), dir ('->' sent to QEMU, '<-' from QEMU), payload }. Acks and resends are left out. */
export function parseWireLog(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m || m[3].endsWith('(resend)')) continue;
    let p = m[3];
    if (p === '^C') {
      out.push({ t: Number(m[1]), dir: m[2], payload: '\x03' });
      continue;
    }
    if (!p.startsWith('$')) continue;
    p = p.slice(1).replace(/#[0-9a-f]{2}$/i, '');
    out.push({ t: Number(m[1]), dir: m[2], payload: p });
  }
  return out;
}

const isStop = (p) => /^[TS][0-9a-f]{2}/i.test(p);
/** A resume that lets every thread run freely: `c`, `C sig`, or a vCont whose actions are all continues. */
export const isContinue = (p) => /^[cC]/.test(p) || (/^vCont;/.test(p) && p.slice(6).split(';').every((a) => /^[cC]/.test(a)));
const isResume = (p) => isContinue(p) || /^[sS]/.test(p) || /^vCont;[^?]/.test(p);

/** rip from a `g` reply in long mode: rax … r15 (8 bytes each), then rip. */
function ripOf(gReply) {
  if (!/^[0-9a-f]+$/i.test(gReply) || gReply.length < 17 * 16) return undefined;
  return Buffer.from(gReply.slice(16 * 16, 17 * 16), 'hex').readBigUInt64LE(0);
}

/**
 * Every pause of the guest in a wire log: from a stop reply that answers a continue to the
 * next continue sent (a single step in between, over the breakpoint just hit, is part of the
 * pause: the guest runs one instruction of the debugger's choosing). Each is classified by
 * the PC of the stop, read from the first `g` reply after it (QEMU's x86 stop replies carry
 * no registers): `hooks` maps an address to a kind ('load' for do_init_module, 'free' for
 * free_module); any other PC is 'other'. Per pause: its length, the packets exchanged, and
 * where the time went: `hostMs` is the time with no request of the debugger's outstanding
 * (the debugger computing), `wireMs` the rest (waiting for QEMU), and the longest such host
 * gap with the packet that ended it.
 */
export function pausesOf(entries, hooks) {
  const out = [];
  let running = false;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.dir === '->' && isContinue(e.payload)) {
      running = true;
      continue;
    }
    if (!(running && e.dir === '<-' && isStop(e.payload))) continue;
    running = false;
    let pc;
    let end = -1;
    let host = 0;
    let maxGap = { ms: 0, before: null };
    let packets = 0;
    let outstanding = 0;
    let last = e.t;
    for (let j = i + 1; j < entries.length; j++) {
      const x = entries[j];
      if (x.dir === '->') {
        packets++;
        if (outstanding === 0) {
          const gap = (x.t - last) * 1000;
          host += gap;
          if (gap > maxGap.ms) maxGap = { ms: gap, before: x.payload.slice(0, 40) };
        }
        if (pc === undefined && x.payload === 'g') {
          const r = entries.slice(j + 1).find((y) => y.dir === '<-');
          pc = r && ripOf(r.payload);
        }
        if (isContinue(x.payload)) {
          end = j;
          break;
        }
        // A step's stop reply is the answer it waits for; other packets get one reply each.
        outstanding++;
      } else {
        outstanding = Math.max(0, outstanding - 1);
        last = x.t;
      }
    }
    if (end < 0) break;
    const ms = (entries[end].t - e.t) * 1000;
    const kind = pc === undefined ? 'other' : hooks.get(pc) ?? 'other';
    out.push({ kind, pc, t: e.t, ms, packets, hostMs: host, wireMs: ms - host, maxGap, steps: entries.slice(i + 1, end).filter((x) => x.dir === '->' && isResume(x.payload)).length });
    i = end - 1;
  }
  return out;
}

/** Medians of a list of pauses, in ms, for the JSON. */
export function pauseSummary(ps) {
  const r = (x) => (x === null ? null : Math.round(x * 100) / 100);
  return { n: ps.length, median_ms: r(median(ps.map((p) => p.ms))), host_ms: r(median(ps.map((p) => p.hostMs))), wire_ms: r(median(ps.map((p) => p.wireMs))), packets: median(ps.map((p) => p.packets)) };
}

/**
 * gdb's `set debug timestamp on` + `set debug remote 1` output (its stderr), e.g.
 * `12736.726363 [remote] Sending packet: $mffffffff81000000,8#8a` and
 * `12736.726510 [remote] Packet received: E14`, as a wire log in ours' format. Long packets
 * come truncated (`… [N bytes omitted]`), which leaves what is read here: the first bytes.
 */
export function gdbRemoteLog(text) {
  const out = [];
  for (const line of text.split('\n')) {
    let m = /^(\d+\.\d+) +\[remote\] Sending packet: (\$.*)$/.exec(line);
    if (m) {
      out.push(`${m[1]} -> ${m[2]}`);
      continue;
    }
    m = /^(\d+\.\d+) +\[remote\] Packet received: (.*)$/.exec(line);
    if (m) out.push(`${m[1]} <- $${m[2].replace(/\s*(\.\.\.)?\s*\[\d+ bytes omitted\]$/, '')}`);
  }
  return out.join('\n');
}
