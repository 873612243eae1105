// Records a real exchange with QEMU's gdbstub (guest paused at reset, no kernel needed) into
// test/fixtures/, so unit tests of the RSP parsers run on bytes QEMU really sent.
// Usage: node scripts/capture-rsp-fixture.mjs [qemu-system-x86_64]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const qemu = process.argv[2] ?? 'qemu-system-x86_64';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-capture-'));
const sock = path.join(dir, 'gdb.sock');
const child = spawn(qemu, ['-nodefaults', '-display', 'none', '-machine', 'pc', '-accel', 'tcg', '-S', '-gdb', `unix:${sock},server=on,wait=off`], { stdio: 'inherit' });
const packets = [
  'qSupported:multiprocess-;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386',
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
  'qXfer:features:read:nosuch.xml:0,ffb',
  'qFoo',
];
const sum = (s) => [...s].reduce((a, c) => (a + c.charCodeAt(0)) & 0xff, 0).toString(16).padStart(2, '0');
const connect = () =>
  new Promise((resolve) => {
    const s = net.createConnection({ path: sock });
    s.once('connect', () => resolve(s));
    s.once('error', () => setTimeout(() => connect().then(resolve), 50));
  });
const s = await connect();
const chunks = [];
const exchanges = [];
let current = [];
s.on('data', (d) => current.push(d));
for (const p of packets) {
  current = [];
  s.write(`$${p}#${sum(p)}`);
  // Wait for "+" and a complete "$...#xx" reply.
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    const text = Buffer.concat(current).toString('latin1');
    if (/\$[^#]*#[0-9a-f]{2}$/.test(text)) break;
  }
  s.write('+');
  const raw = Buffer.concat(current);
  chunks.push(raw);
  exchanges.push({ sent: p, receivedLatin1: raw.toString('latin1') });
}
s.destroy();
child.kill();
fs.rmSync(dir, { recursive: true, force: true });
const version = (await new Promise((r) => { const v = spawn(qemu, ['--version']); let o = ''; v.stdout.on('data', (d) => (o += d)); v.on('close', () => r(o.split('\n')[0])); }));
fs.writeFileSync('test/fixtures/qemu-x86_64-gdbstub.json', JSON.stringify({ qemu: version, exchanges }, null, 1) + '\n');
console.log(`captured ${exchanges.length} exchanges from ${version}`);
