/**
 * `qkd debug`: headless debugging through the same DAP session the editor uses. Boots, stops
 * at the first hit of a function breakpoint, prints the stop as gdb would (where, the source
 * line, the backtrace with arguments, the registers), ends the guest.
 */
import { KERNEL_LOG_REQUEST, TASKS_REQUEST, type KernelLogResponseBody, type TasksResponseBody } from '../adapter/events';
import { psText } from '../adapter/pstext';
import type { KernelModule } from '../adapter/modules';
import { parseArgs } from 'node:util';
import { DebugProtocol } from '@vscode/debugprotocol';
import { InProcessDap } from './dap';
import { launchConfigFrom, say } from './launchargs';
import { LAUNCH_OPTIONS } from './options';
import { collectStop, formatStop } from './stopreport';
import { FAULT_FILTERS } from '../engine/faults';
import { errors } from '../util/errors';

/** The Modules list as lsmod prints it (name, size, users), with its address range and where its symbols came from. */
function lsmodText(modules: KernelModule[]): string[] {
  const used = (m: KernelModule): string => (m.refcnt === undefined ? '-' : `${m.refcnt}${m.usedBy?.length ? ` ${m.usedBy.join(',')}` : ''}`);
  const rows = modules.map((m) => [m.name, m.size === undefined ? '-' : String(m.size), used(m), m.addressRange ?? '-', m.path ?? m.symbolStatus ?? '']);
  const head = ['Module', 'Size', 'Used by', 'Address range', 'Symbols'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === 1 ? c.padStart(w[i]) : i < 4 ? c.padEnd(w[i]) : c)).join('  '));
}

/** --catch: the exception filters, comma-separated; "none" for none. The editor's defaults otherwise. */
function catchFilters(text: string | undefined): string[] {
  if (text === undefined) return FAULT_FILTERS.filter((f) => f.default).map((f) => f.id);
  if (text.trim() === 'none') return [];
  const ids = text.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.filter((id) => !FAULT_FILTERS.some((f) => f.id === id));
  if (bad.length) throw errors.unsupported(`--catch: unknown filter ${bad.map((b) => `"${b}"`).join(', ')}; the filters are ${FAULT_FILTERS.map((f) => f.id).join(', ')}, or none`);
  return ids;
}

export async function debugCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...LAUNCH_OPTIONS, break: { type: 'string', multiple: true }, catch: { type: 'string' }, timeout: { type: 'string' }, lsmod: { type: 'boolean' }, dmesg: { type: 'boolean' }, ps: { type: 'boolean' } } });
  const breaks = values.break?.length ? values.break : ['kernel_clone'];
  const timeoutMs = Number(values.timeout ?? 300) * 1000;
  // Checked before anything boots: a typo should not cost a boot.
  const filters = catchFilters(values.catch);
  const cfg = await launchConfigFrom(values);

  const dap = new InProcessDap();
  dap.on('output', (b: DebugProtocol.OutputEvent['body']) => say(b.output.trimEnd()));
  let terminated = false;
  dap.on('terminated', () => (terminated = true));
  const t0 = Date.now();
  try {
    await dap.request('initialize', { adapterID: 'qemu-kernel', clientID: 'qkd', linesStartAt1: true, columnsStartAt1: true });
    const initialized = dap.waitEvent('initialized', timeoutMs);
    await dap.request('launch', cfg);
    await initialized;
    const bps = await dap.request<DebugProtocol.SetFunctionBreakpointsResponse['body']>('setFunctionBreakpoints', { breakpoints: breaks.map((name) => ({ name })) });
    bps.breakpoints.forEach((b, i) => say(`breakpoint ${breaks[i]}: ${b.verified ? `at ${b.instructionReference}` : b.message?.startsWith('pending:') ? b.message : `not set: ${b.message}`}`));
    const caught = await dap.request<DebugProtocol.SetExceptionBreakpointsResponse['body']>('setExceptionBreakpoints', { filters });
    (caught?.breakpoints ?? []).forEach((b, i) => say(b.verified ? `stops on: ${filters[i]}` : `cannot stop on ${filters[i]}: ${b.message}`));
    // A pending breakpoint (in a module not loaded yet) can still be hit once the module loads.
    if (!bps.breakpoints.some((b) => b.verified || b.message?.startsWith('pending:'))) throw new Error('no breakpoint could be set, so the guest would never stop');
    const stopped = Promise.race([
      dap.waitEvent<DebugProtocol.StoppedEvent['body']>('stopped', timeoutMs),
      dap.waitEvent('terminated', timeoutMs).then(() => {
        throw new Error('the guest ended before any breakpoint was hit');
      }),
    ]);
    await dap.request('configurationDone');
    const stop = await stopped;
    const report = await collectStop(dap, stop, bps.breakpoints.map((b) => b.id), (Date.now() - t0) / 1000);
    const modules = values.lsmod ? ((await dap.request<DebugProtocol.ModulesResponse['body']>('modules', {})).modules as KernelModule[]) : undefined;
    const dmesg = values.dmesg ? (await dap.request<KernelLogResponseBody>(KERNEL_LOG_REQUEST, {})).text : undefined;
    const ps = values.ps ? await dap.request<TasksResponseBody>(TASKS_REQUEST, {}) : undefined;
    if (values.json) process.stdout.write(JSON.stringify({ ...report, ...(modules ? { modules } : {}), ...(dmesg !== undefined ? { dmesg } : {}), ...(ps ? { tasks: ps.tasks, cpus: ps.cpus } : {}) }) + '\n');
    else process.stdout.write(formatStop(report) + '\n' + (modules ? `\n${lsmodText(modules).join('\n')}\n` : '') + (ps ? `\n${psText(ps.tasks).join('\n')}\n` : '') + (dmesg !== undefined ? `\n${dmesg}` : ''));
    return 0;
  } finally {
    if (!terminated) await dap.request('disconnect', { terminateDebuggee: true }).catch(() => undefined);
  }
}
