/**
 * `qkd debug`: headless debugging through the same DAP session the editor uses. Boots, stops
 * at the first hit of a function breakpoint, prints the stop as gdb would (where, the source
 * line, the backtrace with arguments, the registers), ends the guest.
 */
import { parseArgs } from 'node:util';
import { DebugProtocol } from '@vscode/debugprotocol';
import { InProcessDap } from './dap';
import { launchConfigFrom, say } from './launchargs';
import { LAUNCH_OPTIONS } from './options';
import { collectStop, formatStop } from './stopreport';

export async function debugCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...LAUNCH_OPTIONS, break: { type: 'string', multiple: true }, timeout: { type: 'string' } } });
  const breaks = values.break?.length ? values.break : ['kernel_clone'];
  const timeoutMs = Number(values.timeout ?? 300) * 1000;
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
    bps.breakpoints.forEach((b, i) => say(`breakpoint ${breaks[i]}: ${b.verified ? `at ${b.instructionReference}` : `not set: ${b.message}`}`));
    if (!bps.breakpoints.some((b) => b.verified)) throw new Error('no breakpoint could be set, so the guest would never stop');
    const stopped = Promise.race([
      dap.waitEvent<DebugProtocol.StoppedEvent['body']>('stopped', timeoutMs),
      dap.waitEvent('terminated', timeoutMs).then(() => {
        throw new Error('the guest ended before any breakpoint was hit');
      }),
    ]);
    await dap.request('configurationDone');
    const stop = await stopped;
    const report = await collectStop(dap, stop, bps.breakpoints.map((b) => b.id), (Date.now() - t0) / 1000);
    process.stdout.write(values.json ? JSON.stringify(report) + '\n' : formatStop(report) + '\n');
    return 0;
  } finally {
    if (!terminated) await dap.request('disconnect', { terminateDebuggee: true }).catch(() => undefined);
  }
}
