// Records a real exchange with QEMU's gdbstub (guest paused at reset, no kernel needed) into
// test/fixtures/, so unit tests of the RSP parsers and of each arch's register tables run on
// bytes QEMU really sent.
// Usage: node scripts/capture-rsp-fixture.mjs [x86_64|aarch64|riscv64] [-cpu NAME]
//   x86_64 (the default) replays a fixed packet list; the others fetch target.xml and every
//   include it names, the `g` block, and `p` for each register past the block (FP/SIMD and
//   system registers), so decoders can be tested on a real vCPU's reset values.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const MACHINES = {
  x86_64: { qemu: 'qemu-system-x86_64', args: ['-machine', 'pc'] },
  // -bios none: the riscv virt board starts in its reset ROM at 0x1000 (real code to record).
  aarch64: { qemu: 'qemu-system-aarch64', args: ['-machine', 'virt', '-cpu', 'cortex-a57'] },
  riscv64: { qemu: 'qemu-system-riscv64', args: ['-machine', 'virt', '-bios', 'none'] },
};

// Backwards compatible: a qemu binary name as the first argument still means x86_64.
let arch = process.argv[2] ?? 'x86_64';
if (arch.startsWith('qemu-system-')) arch = 'x86_64';
const machine = MACHINES[arch];
if (!machine) throw new Error(`unknown arch '${arch}' (one of ${Object.keys(MACHINES).join(', ')})`);
const cpuAt = process.argv.indexOf('-cpu');
const cpu = cpuAt > 0 ? process.argv[cpuAt + 1] : undefined;
const args = [...machine.args];
if (cpu) args.splice(args.indexOf('-cpu'), 2, '-cpu', cpu);
const out = `test/fixtures/qemu-${arch}${cpu ? `-${cpu}` : ''}-gdbstub.json`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-capture-'));
const sock = path.join(dir, 'gdb.sock');
const child = spawn(machine.qemu, ['-nodefaults', '-display', 'none', ...args, '-accel', 'tcg', '-S', '-gdb', `unix:${sock},server=on,wait=off`], { stdio: 'inherit' });
const X86_PACKETS = [
  'qXfer:features:read:target.xml:0,ffb',
  'qXfer:features:read:i386-64bit.xml:0,ffb',
  'qXfer:features:read:i386-64bit.xml:7fd,ffb',
  'qXfer:features:read:i386-64bit.xml:ffa,ffb',
  'qXfer:features:read:i386-64bit.xml:17f7,ffb',
  'vCont?',
  '?',
  'qfThreadInfo',
  'qsThreadInfo',
  'g',
  'p10',
  'mffff0,10',
  'm0,1000',
];
const sum = (s) => [...s].reduce((a, c) => (a + c.charCodeAt(0)) & 0xff, 0).toString(16).padStart(2, '0');
const connect = () =>
  new Promise((resolve) => {
    const s = net.createConnection({ path: sock });
    s.once('connect', () => resolve(s));
    s.once('error', () => setTimeout(() => connect().then(resolve), 50));
  });
const s = await connect();
const exchanges = [];
let current = [];
s.on('data', (d) => current.push(d));

/** Send one packet, record the raw reply, and return its payload (the client's view). */
async function exchange(p) {
  current = [];
  s.write(`$${p}#${sum(p)}`);
  // Wait for "+" and a complete "$...#xx" reply.
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    const text = Buffer.concat(current).toString('latin1');
    if (/\$[^#]*#[0-9a-f]{2}$/.test(text)) break;
  }
  s.write('+');
  const raw = Buffer.concat(current).toString('latin1');
  exchanges.push({ sent: p, receivedLatin1: raw });
  // Run-length encoding (`X*n`) only matters for the register-counting below, which reads XML.
  return raw.slice(raw.indexOf('$') + 1, raw.lastIndexOf('#'));
}

/** A feature document, chunk by chunk as the client reads it. */
async function document(annex) {
  let text = '';
  for (let offset = 0; ; ) {
    const reply = await exchange(`qXfer:features:read:${annex}:${offset.toString(16)},ffb`);
    text += reply.slice(1);
    offset += reply.length - 1;
    if (reply[0] !== 'm' || reply.length === 1) return text;
  }
}

await exchange('qSupported:multiprocess-;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386');
if (arch === 'x86_64') {
  for (const p of X86_PACKETS) await exchange(p);
} else {
  // gdb's numbering: a register's regnum attribute, else one past the previous register.
  const regnums = [];
  let next = 0;
  const walk = async (annex) => {
    const text = await document(annex);
    for (const m of text.matchAll(/<xi:include\s+href="([^"]+)"|<reg\s([^>]*)>/g)) {
      if (m[1]) await walk(m[1]);
      else {
        const n = /regnum="(\d+)"/.exec(m[2]);
        next = n ? Number(n[1]) : next;
        regnums.push(next++);
      }
    }
  };
  await walk('target.xml');
  for (const p of ['vCont?', '?', 'qfThreadInfo', 'qsThreadInfo']) await exchange(p);
  await exchange('g');
  // The `g` block holds the core registers only; `p` reads each one, FP/SIMD and system
  // registers included (and, for those in the block, cross-checks it).
  for (const n of regnums) await exchange(`p${n.toString(16)}`);
  if (arch === 'riscv64') await exchange('m1000,20');
}
await exchange('qXfer:features:read:nosuch.xml:0,ffb');
await exchange('qFoo');
s.destroy();
child.kill();
fs.rmSync(dir, { recursive: true, force: true });
const version = await new Promise((r) => {
  const v = spawn(machine.qemu, ['--version']);
  let o = '';
  v.stdout.on('data', (d) => (o += d));
  v.on('close', () => r(o.split('\n')[0]));
});
fs.writeFileSync(out, JSON.stringify({ qemu: version, machine: [machine.qemu, ...args].join(' '), exchanges }, null, 1) + '\n');
console.log(`captured ${exchanges.length} exchanges from ${version} into ${out}`);
