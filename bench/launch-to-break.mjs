// Launch → stopped at kernel_clone: qemu-kernel-debug's adapter vs gdb on the same guest,
// alternating runs. Both sides start QEMU paused and end when the breakpoint is reported.
// Usage: node bench/launch-to-break.mjs [runs]   (after `node dist/cli.js guest build`)
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { DebugClient } = require('@vscode/debugadapter-testsupport');
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const runs = Number(process.argv[2] ?? 5);
const guest = JSON.parse(execFileSync('node', [path.join(repo, 'dist/cli.js'), 'guest', 'build', '--json'], { encoding: 'utf8' }));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function ours() {
  const dc = new DebugClient('node', path.join(repo, 'dist/adapter.js'), 'qemu-kernel');
  dc.defaultTimeout = 120000;
  await dc.start();
  await dc.initializeRequest({ adapterID: 'qemu-kernel' });
  const t0 = performance.now();
  const initialized = dc.waitForEvent('initialized');
  await dc.launchRequest({ kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd, accel: 'tcg', consoleLog: path.join(os.tmpdir(), 'qkd-bench-console.log') });
  await initialized;
  await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] });
  const stopped = dc.waitForEvent('stopped');
  await dc.configurationDoneRequest();
  const ev = await stopped;
  const st = await dc.stackTraceRequest({ threadId: ev.body.threadId });
  const t = (performance.now() - t0) / 1000;
  if (st.body.stackFrames[0].name !== 'kernel_clone') throw new Error(`ours stopped at ${st.body.stackFrames[0].name}`);
  await dc.disconnectRequest({});
  await dc.stop();
  return t;
}

async function gdb() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-bench-'));
  const sock = path.join(dir, 'gdb.sock');
  const t0 = performance.now();
  const qemu = spawn('qemu-system-x86_64', ['-nodefaults', '-no-user-config', '-display', 'none', '-machine', 'pc', '-accel', 'tcg', '-m', '512M', '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', 'console=ttyS0 nokaslr', '-serial', `file:${dir}/console.log`, '-gdb', `unix:${sock},server=on,wait=off`, '-S'], { stdio: 'ignore' });
  while (!fs.existsSync(sock)) await new Promise((r) => setTimeout(r, 5));
  const g = spawn('gdb', ['-q', '-nx', '-batch', '-ex', `target remote ${sock}`, '-ex', 'break kernel_clone', '-ex', 'continue', '-ex', 'bt 1', guest.vmlinux], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const t = await new Promise((resolve, reject) => {
    g.stdout.on('data', (d) => {
      out += d;
      if (/Breakpoint 1, .*kernel_clone/.test(out)) resolve((performance.now() - t0) / 1000);
    });
    g.on('exit', () => reject(new Error(`gdb ended without the stop: ${out}`)));
  });
  g.kill('SIGKILL');
  qemu.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
  return t;
}

const results = { ours: [], gdb: [] };
for (let i = 0; i < runs; i++) {
  results.ours.push(await ours());
  results.gdb.push(await gdb());
  process.stderr.write(`run ${i + 1}/${runs}: ours ${results.ours.at(-1).toFixed(2)} s, gdb ${results.gdb.at(-1).toFixed(2)} s\n`);
}
const o = median(results.ours);
const g = median(results.gdb);
console.log(`launch → stopped at kernel_clone (median of ${runs}): ours ${o.toFixed(2)} s, gdb ${g.toFixed(2)} s, ours/gdb ${(o / g).toFixed(2)}`);
console.log(JSON.stringify({ ours_s: results.ours, gdb_s: results.gdb }));
