/**
 * `qkd debug`: headless debugging through the same DAP session the editor uses. Boots, stops
 * at the first hit of a function breakpoint, prints where and the registers, ends the guest.
 */
import { parseArgs } from 'node:util';
import { DebugProtocol } from '@vscode/debugprotocol';
import { InProcessDap } from './dap';
import { launchConfigFrom, say } from './launchargs';
import { LAUNCH_OPTIONS } from './options';

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
    const seconds = (Date.now() - t0) / 1000;
    const threadId = stop.threadId ?? 1;
    const st = await dap.request<DebugProtocol.StackTraceResponse['body']>('stackTrace', { threadId, levels: 20 });
    const top = st.stackFrames[0];
    const scopes = await dap.request<DebugProtocol.ScopesResponse['body']>('scopes', { frameId: top.id });
    const regScope = scopes.scopes.find((s) => s.name === 'Registers');
    const regs = regScope ? (await dap.request<DebugProtocol.VariablesResponse['body']>('variables', { variablesReference: regScope.variablesReference })).variables : [];
    if (values.json) {
      const out = { reason: stop.reason, thread: threadId, function: top.name, pc: top.instructionPointerReference, seconds, registers: Object.fromEntries(regs.map((r) => [r.name, r.value])) };
      process.stdout.write(JSON.stringify(out) + '\n');
    } else {
      process.stdout.write(`Stopped (${stop.reason}) at ${top.name} [${top.instructionPointerReference}] on CPU ${threadId - 1}, ${seconds.toFixed(2)} s after launch\n\n`);
      process.stdout.write(formatRegisters(regs) + '\n');
    }
    return 0;
  } finally {
    if (!terminated) await dap.request('disconnect', { terminateDebuggee: true }).catch(() => undefined);
  }
}

/** General registers in aligned columns, the rest after them. */
function formatRegisters(regs: DebugProtocol.Variable[]): string {
  // FPU and vector registers are long and rarely wanted at a glance; the rest fits a screen.
  const general = regs.filter((r) => !/^(st\d|f(ctrl|stat|tag|iseg|ioff|oseg|ooff|op)$|[xyz]mm|mxcsr)/.test(r.name));
  const width = Math.max(...general.map((r) => r.name.length));
  const cells = general.map((r) => `${r.name.padStart(width)} ${r.value}`);
  const lines: string[] = [];
  for (let i = 0; i < cells.length; i += 3) lines.push(cells.slice(i, i + 3).join('   '));
  return lines.join('\n');
}
