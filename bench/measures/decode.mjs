// D1: decoding a 200-line kernel report: `qkd decode` (a fresh process each run, as a user
// pipes a log into it) against the kernel's scripts/decode_stacktrace.sh with the same
// vmlinux and module folder, runs alternating. The report is real: the x86_64 sample guest
// (nokaslr, as the log's addresses are the same either way) prints a WARN, a NULL-dereference
// Oops and a BUG from the sample module, captured from its console and cut to 200 lines
// ending with the last report. Code: lines are left out on both sides (the script hands them
// to scripts/decodecode, a disassembly, not a decode).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ConsoleTail, consoleInput, guestModules, privateDir, shellReady } from '../lib/modules.mjs';
import { killQemu } from '../lib/modgdb.mjs';
import { say, toolEnv } from '../lib/proc.mjs';

export const ids = ['D1', 'L1'];

export const needs = () => ({ guest: true, qemu: true });

const LINES = 200;

export async function run(ctx, sel) {
  const mods = guestModules(ctx.guest);
  const rows = [];
  if (sel.has('L1')) rows.push(await lspStart(ctx, mods));
  if (!sel.has('D1')) return rows;
  const report = await captureReport(ctx.guest);
  // For profiling a decode by hand on the very report the bench times.
  if (process.env.QKD_BENCH_D1_REPORT) fs.writeFileSync(process.env.QKD_BENCH_D1_REPORT, report);
  const script = path.join(path.dirname(ctx.guest.vmlinux), 'scripts', 'decode_stacktrace.sh');
  const cli = path.join(ctx.repo, 'dist', 'cli.js');
  // The code map `qkd decode` leaves for the next decode (it starts `qkd index` in the
  // background after its first): built here ahead of the runs, and its build timed.
  const ib = process.hrtime.bigint();
  const built = spawnSync(cli, ['index', '--json', '--vmlinux', ctx.guest.vmlinux], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`qkd index failed (${built.status}):\n${built.stderr}`);
  const indexS = Number(process.hrtime.bigint() - ib) / 1e9;
  const map = JSON.parse(built.stdout);
  say(`D1: qkd index built the code map in ${indexS.toFixed(1)} s (${(map.bytes / 2 ** 20).toFixed(1)} MB)`);
  const ours = [];
  const cold = [];
  const theirs = [];
  const oursRss = [];
  for (let i = 0; i < ctx.runs; i++) {
    const o = timed(cli, ['decode', '--vmlinux', ctx.guest.vmlinux, '--modules', mods.dir], report);
    const c = timed(cli, ['decode', '--no-index', '--vmlinux', ctx.guest.vmlinux, '--modules', mods.dir], report);
    const t = timed('bash', [script, ctx.guest.vmlinux, 'auto', mods.dir], report);
    if (o.out !== c.out) throw new Error('D1: qkd decode printed something else with the code map than without it');
    ours.push(o.s);
    cold.push(c.s);
    theirs.push(t.s);
    if (o.rssKb) oursRss.push(o.rssKb / 1024);
    say(`D1 run ${i + 1}/${ctx.runs}: qkd decode ${(o.s * 1000).toFixed(1)} ms (no code map: ${(c.s * 1000).toFixed(1)} ms), decode_stacktrace.sh ${(t.s * 1000).toFixed(1)} ms`);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return [
    ...rows,
    {
      id: 'D1',
      what: `decode a ${LINES}-line report (WARN, Oops, BUG; ${report.split('\n').filter((l) => /\+0x[0-9a-f]+\/0x/.test(l)).length} code references): qkd decode vs decode_stacktrace.sh`,
      ours,
      gdb: theirs,
      oursRss,
      gdbRss: null,
      ratioKind: 'gdb/ours',
      runs: ctx.runs,
      target: { text: 'ours ≤ 100 ms and ≥ 20× faster than decode_stacktrace.sh', test: (j) => j.ours_s <= 0.1 && j.gdb_s / j.ours_s >= 20 },
      extra: {
        oracle: 'scripts/decode_stacktrace.sh (bash, nm, addr2line)',
        no_code_map_ms: Math.round(median(cold) * 1000),
        no_code_map_ratio: Number((median(theirs) / median(cold)).toFixed(1)),
        index_build_s: Number(indexS.toFixed(1)),
        code_map_mb: Number((map.bytes / 2 ** 20).toFixed(1)),
      },
    },
  ];
}

/**
 * L1: the language server's start as an editor sees it: spawn `node dist/lsp.js --stdio`, send
 * initialize (with the sample vmlinux and modules as its symbols), then open a two-line Oops:
 * the time until its diagnostics arrive. A fresh process per run.
 */
async function lspStart(ctx, mods) {
  const { createProtocolConnection, StreamMessageReader, StreamMessageWriter } = await import('vscode-languageserver-protocol/node.js');
  const n = ctx.quick ? ctx.runs : Math.max(ctx.runs, 10);
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    // In the environment the extension's language client gives it (src/extension/lspclient.ts).
    const child = spawn(process.execPath, [path.join(ctx.repo, 'dist', 'lsp.js'), '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'], env: toolEnv() });
    child.stdin.on('error', () => undefined);
    const conn = createProtocolConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    const diagnostics = new Promise((resolve) => conn.onNotification('textDocument/publishDiagnostics', resolve));
    conn.listen();
    await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: { vmlinux: ctx.guest.vmlinux, modules: [mods.dir] } });
    await conn.sendNotification('initialized', {});
    await conn.sendNotification('textDocument/didOpen', { textDocument: { uri: 'file:///bench.log', languageId: 'linux-kernel-log', version: 1, text: '[    1.0] BUG: kernel NULL pointer dereference, address: 0000000000000000\n[    1.0] Oops: 0000 [#1] SMP NOPTI\n' } });
    const d = await diagnostics;
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
    if (d.diagnostics?.length !== 1) throw new Error(`L1: expected one diagnostic, got ${JSON.stringify(d)}`);
    await conn.sendRequest('shutdown').catch(() => undefined);
    await conn.sendNotification('exit').catch(() => undefined);
    conn.dispose();
    child.kill();
  }
  say(`L1: language server start to first diagnostics, ${n} fresh processes: ${samples.map((x) => (x * 1000).toFixed(0)).join(', ')} ms`);
  return { id: 'L1', what: 'kernel-log language server: spawn → initialize → first diagnostics', ours: samples, gdb: null, oursRss: [], gdbRss: null, ratioKind: null, runs: n, target: { text: 'ours ≤ 100 ms', test: (j) => j.ours_s <= 0.1 } };
}

/** Wall time of one process given `input` on stdin; its peak RSS from GNU time when there is one. */
function timed(cmd, args, input) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 1 << 26 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  if (!/\(\S+:\d+/.test(r.stdout)) throw new Error(`${cmd} decoded nothing`);
  return { s, out: r.stdout };
}

async function captureReport(guest) {
  const dir = privateDir('qkd-bench-d-');
  const conSock = path.join(dir, 'console.sock');
  const tail = new ConsoleTail(path.join(dir, 'console.log'), 20);
  const args = ['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-machine', 'pc', '-accel', 'tcg', '-m', '512M', '-smp', '1', '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', 'console=ttyS0 nokaslr qkd.load=qkd_sample'];
  const qemu = spawn('qemu-system-x86_64', [...args, '-chardev', `socket,id=con,path=${conSock},server=on,wait=off,logfile=${tail.file}`, '-serial', 'chardev:con'], { stdio: ['ignore', 'ignore', 'ignore'] });
  let input = null;
  try {
    await shellReady(tail);
    input = await consoleInput(conSock);
    const start = tail.size;
    for (const kind of ['warn', 'null', 'bug']) {
      const from = tail.size;
      input.write(`sh -c 'echo fault ${kind} > /dev/qkd_sample'; echo D-${kind}-$((40+2))\n`);
      await tail.waitFor(`D-${kind}-42`, { from, timeoutMs: 120000, what: `the ${kind} report` });
    }
    const all = fs.readFileSync(tail.file, 'utf8').slice(start).split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => !/Code: /.test(l));
    const lines = all.slice(Math.max(0, all.length - LINES));
    // Fewer than 200 lines printed: the boot log before them makes up the rest, as in a real paste.
    const before = fs.readFileSync(tail.file, 'utf8').slice(0, start).split('\n').map((l) => l.replace(/\r$/, ''));
    while (lines.length < LINES && before.length) lines.unshift(before.pop());
    return lines.join('\n') + '\n';
  } finally {
    input?.close();
    tail.close();
    await killQemu(qemu, conSock, 'D1 guest');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
