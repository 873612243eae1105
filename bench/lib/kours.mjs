// K1–K3, ours: attach to the running KASLR guest in the module rows' stand-in extension host
// (bench/lib/modhost.mjs). K1 is the adapter's own figure for finding the offset at the
// attach stop (its Debug Console line says how long it took); K2 and K3 are the tasks and
// kernel-log requests as a DAP client sees them: at the attach stop (cold: the layouts are
// read from DWARF then) and at a second stop (warm): the guest runs, then a pause.
import { openSession, initialize, nextEvent, endSession } from './dap.mjs';

const timed = async (fn) => {
  const t0 = performance.now();
  const body = await fn();
  return { s: (performance.now() - t0) / 1000, body };
};

export async function oursKernel({ repo, guest, sock, offset }) {
  const output = [];
  let dc;
  const r = {};
  try {
    ({ dc } = openSession(repo, output));
    await initialize(dc);
    const attach = await timed(() => dc.attachRequest({ target: sock, vmlinux: guest.vmlinux, arch: 'x86_64' }));
    r.attach_s = attach.s;
    const line = output.find((o) => o.includes('KASLR: vmlinux runs at offset'));
    const m = line && /offset 0x([0-9a-f]+) .*found by (.+) in ([\d.]+) ms/.exec(line);
    if (!m) throw new Error(`no KASLR line after attach: ${output.slice(-5).join('')}`);
    if (BigInt('0x' + m[1]) !== BigInt(offset)) throw new Error(`KASLR offset 0x${m[1]} is not the guest's own 0x${BigInt(offset).toString(16)} (/proc/kallsyms)`);
    r.k1_s = Number(m[3]) / 1000;
    r.k1_method = m[2];
    const tasks = (b) => b.body.body.tasks.length;
    // Still at the attach stop: the guest runs from configurationDone on.
    const coldTasks = await timed(() => dc.customRequest('qemuKernel.tasks', {}));
    const coldLog = await timed(() => dc.customRequest('qemuKernel.kernelLog', {}));
    r.k2_cold_s = coldTasks.s;
    r.k3_cold_s = coldLog.s;
    await dc.configurationDoneRequest();
    // A second stop: what every later stop costs.
    await new Promise((res) => setTimeout(res, 300));
    const stopped = nextEvent(dc, 'stopped');
    await dc.pauseRequest({ threadId: 1 });
    await stopped;
    const warmTasks = await timed(() => dc.customRequest('qemuKernel.tasks', {}));
    const warmLog = await timed(() => dc.customRequest('qemuKernel.kernelLog', {}));
    r.k2_s = warmTasks.s;
    r.k3_s = warmLog.s;
    r.tasks = tasks(warmTasks);
    r.tasks_adapter_ms = warmTasks.body.body.ms;
    r.log_records = warmLog.body.body.records;
    r.log_lines = warmLog.body.body.text.split('\n').length - 1;
    if (r.tasks < 200) throw new Error(`the task list has ${r.tasks} tasks, fewer than 200`);
    // A third stop, read 1 s after it: the stop's own background work (the stepper's
    // read-ahead of the stopped function's DWARF) done, as when the user opens the view.
    await dc.continueRequest({ threadId: 1 });
    await new Promise((res) => setTimeout(res, 300));
    const third = nextEvent(dc, 'stopped');
    await dc.pauseRequest({ threadId: 1 });
    await third;
    await new Promise((res) => setTimeout(res, 1000));
    r.k2_settled_s = (await timed(() => dc.customRequest('qemuKernel.tasks', {}))).s;
    r.k3_settled_s = (await timed(() => dc.customRequest('qemuKernel.kernelLog', {}))).s;
    await dc.disconnectRequest({ terminateDebuggee: false });
  } catch (e) {
    e.message = `ours (K): ${e.message}\nadapter output (last lines):\n${output.join('').split('\n').slice(-15).join('\n')}`;
    await endSession(dc);
    throw e;
  }
  return r;
}
