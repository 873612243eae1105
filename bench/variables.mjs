// Stop → top frame's stackTrace + scopes + variables, as VS Code asks for them, vs gdb's
// `bt` + `info args` + `info locals` at the same stops of the same guest, in one run.
// Usage: node bench/variables.mjs [stops] [--json]   (after `node dist/cli.js guest build`)
import { spawn, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { DebugClient } = require('@vscode/debugadapter-testsupport');
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const stops = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 6);
const json = process.argv.includes('--json');
const guest = JSON.parse(execFileSync('node', [path.join(repo, 'dist/cli.js'), 'guest', 'build', '--json'], { encoding: 'utf8' }));
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => sorted(xs)[Math.floor(xs.length / 2)];

/** Each kernel_clone stop of one boot: from the `stopped` event to the last variables response. */
async function ours() {
  const dc = new DebugClient('node', path.join(repo, 'dist/adapter.js'), 'qemu-kernel');
  dc.defaultTimeout = 120000;
  await dc.start();
  await dc.initializeRequest({ adapterID: 'qemu-kernel', supportsVariableType: true });
  const initialized = dc.waitForEvent('initialized');
  await dc.launchRequest({ kernel: guest.kernel, vmlinux: guest.vmlinux, initrd: guest.initrd, accel: 'tcg', memory: '512M', consoleLog: path.join(os.tmpdir(), 'qkd-bench-console.log') });
  await initialized;
  await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] });
  const times = [];
  let counts;
  let stopped = dc.waitForEvent('stopped');
  await dc.configurationDoneRequest();
  for (let i = 0; i < stops; i++) {
    const ev = await stopped;
    const t0 = performance.now();
    // VS Code: threads, the top frame first, its scopes, then every scope that isn't expensive.
    await dc.threadsRequest();
    const st = await dc.stackTraceRequest({ threadId: ev.body.threadId, startFrame: 0, levels: 1 });
    const frame = st.body.stackFrames[0];
    const scopes = (await dc.scopesRequest({ frameId: frame.id })).body.scopes;
    const vars = await Promise.all(scopes.filter((s) => !s.expensive).map((s) => dc.variablesRequest({ variablesReference: s.variablesReference })));
    times.push(performance.now() - t0);
    if (frame.name !== 'kernel_clone') throw new Error(`ours stopped at ${frame.name}`);
    counts = vars.map((v) => v.body.variables.length);
    if (i + 1 < stops) {
      stopped = dc.waitForEvent('stopped');
      await dc.continueRequest({ threadId: ev.body.threadId });
    }
  }
  await dc.disconnectRequest({});
  await dc.stop();
  return { times, counts };
}

/** gdb at the same stops: a Python stop handler times `bt`, `info args`, `info locals`. */
async function gdb() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-bench-'));
  const sock = path.join(dir, 'gdb.sock');
  const script = path.join(dir, 'time.py');
  fs.writeFileSync(
    script,
    [
      'import gdb, time',
      'def on_stop(ev):',
      '    t0 = time.perf_counter()',
      "    for c in ('bt', 'info args', 'info locals'):",
      '        gdb.execute(c, to_string=True)',
      "    print('@@ms %.3f' % ((time.perf_counter() - t0) * 1000))",
      'gdb.events.stop.connect(on_stop)',
    ].join('\n'),
  );
  const qemu = spawn('qemu-system-x86_64', ['-nodefaults', '-no-user-config', '-display', 'none', '-machine', 'pc', '-accel', 'tcg', '-m', '512M', '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', 'console=ttyS0 nokaslr', '-serial', `file:${dir}/console.log`, '-gdb', `unix:${sock},server=on,wait=off`, '-S'], { stdio: 'ignore' });
  while (!fs.existsSync(sock)) await new Promise((r) => setTimeout(r, 5));
  const cmds = ['set pagination off', `source ${script}`, `target remote ${sock}`, 'break kernel_clone', ...Array(stops).fill('continue')];
  const out = execFileSync('gdb', ['-q', '-nx', '-batch', ...cmds.flatMap((c) => ['-ex', c]), guest.vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 });
  qemu.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
  // The first stop is `target remote` itself (the VM paused at reset); keep the breakpoint hits.
  const times = [...out.matchAll(/@@ms ([\d.]+)/g)].map((m) => Number(m[1])).slice(1);
  if (times.length !== stops) throw new Error(`gdb reported ${times.length} timed stops:\n${out.slice(-2000)}`);
  return { times };
}

const o = await ours();
const g = await gdb();
const row = (name, xs) => `${name}: first stop ${xs[0].toFixed(1)} ms, later stops median ${median(xs.slice(1)).toFixed(1)} ms (min ${sorted(xs.slice(1))[0].toFixed(1)}, max ${sorted(xs.slice(1)).at(-1).toFixed(1)})`;
if (json) {
  console.log(JSON.stringify([{ id: 'P6', what: 'stop → stackTrace + scopes + variables', ours_ms: o.times, gdb_ms: g.times, variables_per_scope: o.counts }]));
} else {
  console.log(`stop → top frame's stackTrace + scopes + variables, ${stops} kernel_clone stops of one boot`);
  console.log(row('ours (DAP: threads, stackTrace, scopes, variables of each non-expensive scope)', o.times));
  console.log(row("gdb  (bt, info args, info locals in a stop handler)", g.times));
  console.log(`variables per scope at the last stop: ${o.counts.join(', ')}`);
}
