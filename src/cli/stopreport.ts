/**
 * A stop told the way gdb tells it, so `qkd debug` reads like the session a kernel developer
 * knows: "Breakpoint 1, fn (args) at file:line", the source line, the backtrace with
 * arguments, then the registers. The same facts as data for --json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { InProcessDap } from './dap';

export interface ReportArg {
  name: string;
  value: string;
}

export interface ReportFrame {
  level: number;
  function: string;
  pc?: string;
  file?: string;
  line?: number;
  inlined: boolean;
  args: ReportArg[];
  /** The label of the section this frame starts (an exception stop's reporting path). */
  section?: string;
}

/** What a stop on a kernel failure report says (exceptionInfo). */
export interface ReportException {
  filter: string;
  message: string;
  /** CPU, PID, comm, taint; the faulting PC and Code:, one per line. */
  details: string;
}

export interface StopReport {
  reason: string;
  thread: number;
  /** gdb's breakpoint number (the order breakpoints were given in), when one was hit. */
  breakpoint?: number;
  function: string;
  pc?: string;
  file?: string;
  line?: number;
  sourceLine?: string;
  seconds: number;
  frames: ReportFrame[];
  registers: Record<string, string>;
  exception?: ReportException;
}

/** gdb shortens long argument values in frame lines; a backtrace stays one line per frame. */
const MAX_VALUE = 60;

async function frameArgs(dap: InProcessDap, frameId: number): Promise<ReportArg[]> {
  try {
    const scopes = await dap.request<DebugProtocol.ScopesResponse['body']>('scopes', { frameId });
    const scope = scopes.scopes.find((s) => s.presentationHint === 'arguments');
    if (!scope) return [];
    const vars = await dap.request<DebugProtocol.VariablesResponse['body']>('variables', { variablesReference: scope.variablesReference });
    return vars.variables.map((v) => ({ name: v.name, value: v.value.length > MAX_VALUE ? v.value.slice(0, MAX_VALUE - 3) + '...' : v.value }));
  } catch {
    // A frame whose arguments can't be read still has its place in the backtrace.
    return [];
  }
}

function sourceLine(file: string | undefined, line: number | undefined): string | undefined {
  if (!file || !line) return undefined;
  try {
    return fs.readFileSync(file, 'utf8').split('\n')[line - 1]?.replace(/\s+$/, '');
  } catch {
    return undefined;
  }
}

export async function collectStop(
  dap: InProcessDap,
  stop: DebugProtocol.StoppedEvent['body'],
  breakpointIds: Array<number | undefined>,
  seconds: number,
  levels = 20,
): Promise<StopReport> {
  const thread = stop.threadId ?? 1;
  const st = await dap.request<DebugProtocol.StackTraceResponse['body']>('stackTrace', { threadId: thread, levels });
  const frames: ReportFrame[] = [];
  let section: string | undefined;
  const all = st.stackFrames;
  for (const [i, f] of all.entries()) {
    // A label frame names the section the frames after it form; it is no frame of its own.
    if (f.presentationHint === 'label') {
      section = f.name;
      continue;
    }
    const level = frames.length;
    frames.push({
      level,
      ...(section ? { section } : {}),
      function: f.name,
      pc: f.instructionPointerReference,
      file: f.source?.path,
      line: f.source?.path ? f.line : undefined,
      // An inlined frame shares its PC with the frame that holds it; gdb prints no address for it.
      inlined: i + 1 < all.length && all[i + 1].presentationHint !== 'label' && all[i + 1].instructionPointerReference === f.instructionPointerReference,
      args: await frameArgs(dap, f.id),
    });
    section = undefined;
  }
  const top = all.find((f) => f.presentationHint !== 'label');
  let registers: Record<string, string> = {};
  if (top) {
    const scopes = await dap.request<DebugProtocol.ScopesResponse['body']>('scopes', { frameId: top.id });
    const reg = scopes.scopes.find((s) => s.presentationHint === 'registers' || s.name === 'Registers');
    if (reg) {
      const vars = await dap.request<DebugProtocol.VariablesResponse['body']>('variables', { variablesReference: reg.variablesReference });
      registers = Object.fromEntries(vars.variables.map((v) => [v.name, v.value]));
    }
  }
  let exception: ReportException | undefined;
  if (stop.reason === 'exception') {
    const info = await dap.request<DebugProtocol.ExceptionInfoResponse['body']>('exceptionInfo', { threadId: thread }).catch(() => undefined);
    if (info) exception = { filter: info.exceptionId, message: info.description ?? '', details: info.details?.stackTrace ?? '' };
  }
  const hit = stop.hitBreakpointIds?.[0];
  const index = hit !== undefined ? breakpointIds.indexOf(hit) : -1;
  return {
    reason: stop.reason,
    thread,
    breakpoint: index >= 0 ? index + 1 : undefined,
    function: frames[0]?.function ?? '??',
    pc: frames[0]?.pc,
    file: frames[0]?.file,
    line: frames[0]?.line,
    sourceLine: sourceLine(frames[0]?.file, frames[0]?.line),
    seconds,
    frames,
    registers,
    ...(exception ? { exception } : {}),
  };
}

/** Inside the working directory (a kernel tree, usually) a path reads as gdb prints it: kernel/fork.c. */
function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function frameText(f: ReportFrame, withPc: boolean): string {
  const args = `(${f.args.map((a) => `${a.name}=${a.value}`).join(', ')})`;
  const at = f.file ? ` at ${shown(f.file)}:${f.line}` : '';
  return `${withPc && f.pc ? `${f.pc} in ` : ''}${f.function} ${args}${at}`;
}

/** FPU and vector registers are long and rarely wanted at a glance; `info registers` leaves them out too. */
const NOT_GENERAL = /^(st\d|f(ctrl|stat|tag|iseg|ioff|oseg|ooff|op)$|[xyz]mm|k\d$|mxcsr|v\d|q\d|d\d|s\d+$|f\d+$|ft\d|fa\d|fs\d|fcsr|fflags|frm)/;

export function formatStop(r: StopReport): string {
  const out: string[] = [];
  const head = r.breakpoint !== undefined ? `Breakpoint ${r.breakpoint}, ` : r.reason === 'breakpoint' || r.exception ? '' : `Stopped (${r.reason}): `;
  if (r.exception) out.push(`Kernel failure (${r.exception.filter}): ${r.exception.message}`, ...r.exception.details.split('\n').filter(Boolean).map((l) => `  ${l}`), '');
  const top = r.frames[0];
  out.push(`${head}${top ? frameText(top, false) : `${r.function}`}`);
  if (r.line !== undefined) out.push(r.sourceLine !== undefined ? `${r.line}\t${r.sourceLine}` : `${r.line}\tin ${r.file}`);
  out.push(`(CPU ${r.thread - 1}, ${r.seconds.toFixed(2)} s after launch)`, '');
  for (const f of r.frames) {
    if (f.section) out.push(`--- ${f.section} ---`);
    out.push(`#${String(f.level).padEnd(2)} ${frameText(f, f.level > 0 && !f.inlined)}`);
  }
  out.push('');
  const general = Object.entries(r.registers).filter(([n]) => !NOT_GENERAL.test(n));
  for (const [name, value] of general) {
    const n = /^0x[0-9a-f]+$/i.test(value) ? BigInt(value) : undefined;
    out.push(`${name.padEnd(15)}${value.padEnd(19)}${n !== undefined ? n.toString() : ''}`.trimEnd());
  }
  return out.join('\n');
}
