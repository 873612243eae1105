/**
 * What a failure report says, read at the reporter's first instruction: its kind and
 * message (the text the kernel is about to print, or printed just before), the trap's
 * registers when the reporter got a `struct pt_regs`, and the lines a kernel developer reads
 * first (CPU, PID, comm, taint, the faulting PC and its code bytes).
 */
import type { BugEntry } from '../kernel/bugtable';
import { BUGFLAG_DONE, BUGFLAG_ONCE, BUGFLAG_WARNING } from '../kernel/bugtable';
import { codeLine, codeWindow, kfenceError, ptRegsMembers, taintText, ubsanCheck, type FaultFilterId, type Reporter } from '../kernel/faults';
import { readCString, readUint, StructLayout, type KernelAccess } from '../kernel/layout';
import { formatKernelPrintf } from '../kernel/printf';
import type { LogRecord } from '../kernel/printk';
import type { KernelTask } from '../kernel/tasks';

export interface FaultReport {
  filter: FaultFilterId;
  reporter: string;
  /** Oops, BUG, WARNING, Kernel panic, KFENCE, KASAN, UBSAN, … */
  title: string;
  message: string;
  /** CPU/PID/comm/taint, the faulting PC, Code:, in the kernel's own notation. */
  details: string[];
  /** The trap's registers by DWARF number (from pt_regs), when the reporter had them. */
  regs?: Map<number, bigint>;
  /** Where that pt_regs is: the reporting path's frames are the ones below it on the stack. */
  regsAddr?: bigint;
  /** The faulting instruction (or the call that reported, without pt_regs). */
  faultPc?: bigint;
}

/** What reading a report needs from the engine, at the reporter's entry on vCPU `tid`. */
export interface ReportReader {
  arch: string;
  access: KernelAccess;
  /** The integer arguments, from their ABI registers. */
  args: bigint[];
  /** The return address: who called the reporter. */
  caller: bigint | undefined;
  /** `func+0x1a/0x200 [mod]` for a code address. */
  symbol(addr: bigint): string;
  /** The function holding a code address, by name. */
  functionAt(addr: bigint): string | undefined;
  /** The bug table entry for a BUG()/WARN() trap. */
  bug(addr: bigint): Promise<BugEntry | undefined>;
  /** `current` on this vCPU, and the Linux CPU it is. */
  current(): Promise<{ cpu?: number; task?: KernelTask }>;
  /** The task_struct at an address. */
  task(addr: bigint): Promise<KernelTask | undefined>;
  kernelLog(): Promise<LogRecord[]>;
  /** Code bytes at an address, as many as readable. */
  code(addr: bigint, length: number): Promise<Buffer | undefined>;
}

/** The report this reporter hit is making; undefined when it is not one the kernel will print. */
export async function readReport(r: Reporter, rd: ReportReader): Promise<FaultReport | undefined> {
  const a = rd.args;
  const str = async (addr: bigint | undefined): Promise<string> => (addr ? await readCString(rd.access, addr, 512).catch(() => '') : '');
  if (r.callers) {
    const from = rd.caller !== undefined ? rd.functionAt(rd.caller - 1n) : undefined;
    if (!from || !r.callers.includes(from)) return undefined;
  }
  const regsAddr = r.regsArg !== undefined && a[r.regsArg] ? a[r.regsArg] : undefined;
  const regs = regsAddr !== undefined ? await readPtRegs(rd, regsAddr, r.fn).catch(() => undefined) : undefined;
  const pcNumber = rd.arch === 'x86_64' ? 16 : rd.arch === 'aarch64' ? 32 : 64;
  const faultPc = regs?.get(pcNumber) ?? (rd.caller !== undefined ? rd.caller : undefined);
  const base = { reporter: r.fn, regs, regsAddr: regs ? regsAddr : undefined, faultPc };
  let out: Omit<FaultReport, 'details'> | undefined;
  switch (r.kind) {
    case 'panic':
    case 'vpanic': {
      const fmt = await str(a[0]);
      const text = r.kind === 'panic' ? await formatKernelPrintf(fmt, a.slice(1), { string: (p) => readCString(rd.access, p).catch(() => undefined), symbol: (p) => rd.symbol(p) }) : fmt;
      out = { ...base, filter: 'panic', title: 'Kernel panic', message: `Kernel panic - not syncing: ${text.trimEnd()}` };
      break;
    }
    case 'die': {
      const what = await str(a[r.strArg ?? 0]);
      const header = reportHeader(await rd.kernelLog().catch(() => []));
      out = { ...base, filter: 'oops', title: 'Oops', message: header ?? `Oops: ${what}` };
      break;
    }
    case 'report_bug': {
      const e = await rd.bug(a[0]);
      if (!e) return undefined;
      const at = e.file ? `${e.file}:${e.line ?? 0}` : undefined;
      if (e.flags & BUGFLAG_WARNING) {
        if (e.flags & BUGFLAG_ONCE && e.flags & BUGFLAG_DONE) return undefined;
        const cur = await rd.current().catch(() => ({ cpu: undefined, task: undefined }));
        out = { ...base, filter: 'warn', title: 'WARNING', message: `WARNING: CPU: ${cur.cpu ?? '?'} PID: ${cur.task?.pid ?? '?'} at ${at ? `${at} ` : ''}${rd.symbol(e.addr)}` };
      } else {
        out = { ...base, filter: 'bug', title: 'BUG', message: at ? `kernel BUG at ${at}!` : `Kernel BUG at ${rd.symbol(e.addr)} [verbose debug info unavailable]` };
      }
      break;
    }
    case 'kfence': {
      const where = faultPc !== undefined ? rd.symbol(faultPc) : '?';
      out = { ...base, filter: 'sanitizer', title: 'KFENCE', message: `BUG: KFENCE: ${kfenceError(Number(a[4] ?? 0n), (a[1] ?? 0n) !== 0n)} in ${where}` };
      break;
    }
    case 'kasan': {
      const free = r.fn === 'kasan_report_invalid_free';
      const ip = free ? a[1] : a[3];
      out = { ...base, faultPc: ip, filter: 'sanitizer', title: 'KASAN', message: free ? `BUG: KASAN: double-free or invalid-free in ${rd.symbol(ip)}` : `BUG: KASAN: invalid ${a[2] ? 'write' : 'read'} of size ${a[1]} at addr ${hex(a[0])} in ${rd.symbol(ip)}` };
      break;
    }
    case 'ubsan': {
      // Every check's data starts with struct source_location { file_name; line; column }.
      const loc = await rd.access.read(a[0], rd.access.pointerSize + 8).catch(() => undefined);
      if (!loc) return undefined;
      const column = loc.readUInt32LE(rd.access.pointerSize + 4);
      // lib/ubsan.c reports a place once: it sets the column's top bit when it does.
      if (column & 0x80000000) return undefined;
      const file = await str(readUint(loc, 0, rd.access.pointerSize));
      const line = loc.readUInt32LE(rd.access.pointerSize) & 0x7fffffff;
      out = { ...base, filter: 'sanitizer', title: 'UBSAN', message: `UBSAN: ${ubsanCheck(r.fn)} in ${file}:${line}:${column}` };
      break;
    }
    case 'hung': {
      // sched_show_task(t) is handed the hung task; check_hung_task() has just printed its line.
      const t = await rd.task(a[0]).catch(() => undefined);
      const limit = rd.access.symbol('sysctl_hung_task_timeout_secs');
      const secs = limit !== undefined ? await rd.access.read(limit, 8).then((b) => b.readBigUInt64LE(0)).catch(() => undefined) : undefined;
      out = { ...base, filter: 'lockup', title: 'Hung task', message: `INFO: task ${t?.comm ?? '?'}:${t?.pid ?? '?'} blocked for more than ${secs ?? '?'} seconds.` };
      break;
    }
    case 'softlockup':
      out = { ...base, filter: 'lockup', title: 'Soft lockup', message: reportHeader(await rd.kernelLog().catch(() => [])) ?? 'BUG: soft lockup' };
      break;
    case 'rcu':
      out = { ...base, filter: 'lockup', title: 'RCU stall', message: r.fn === 'print_cpu_stall' ? 'rcu: INFO: self-detected stall on CPU' : 'rcu: INFO: detected stalls on CPUs/tasks' };
      break;
  }
  if (!out) return undefined;
  return { ...out, details: await detailLines(rd, out.faultPc, regs !== undefined) };
}

/** CPU/PID/comm/taint, the PC, and Code: around it, as the kernel's report starts. */
async function detailLines(rd: ReportReader, pc: bigint | undefined, trapped: boolean): Promise<string[]> {
  const lines: string[] = [];
  const cur = await rd.current().catch(() => ({ cpu: undefined, task: undefined }));
  const tainted = rd.access.symbol('tainted_mask');
  const mask = tainted !== undefined ? await rd.access.read(tainted, rd.access.pointerSize).then((b) => readUint(b, 0, rd.access.pointerSize)).catch(() => undefined) : undefined;
  lines.push(`CPU: ${cur.cpu ?? '?'} PID: ${cur.task?.pid ?? '?'} Comm: ${cur.task?.comm ?? '?'}${mask !== undefined ? ` ${taintText(mask)}` : ''}`);
  if (pc === undefined) return lines;
  const pcName = rd.arch === 'x86_64' ? 'RIP' : rd.arch === 'aarch64' ? 'pc ' : 'epc';
  lines.push(`${trapped ? pcName : 'called from'}: ${rd.symbol(pc)}`);
  if (!trapped) return lines;
  const w = codeWindow(rd.arch);
  const bytes = await rd.code(pc - BigInt(w.before), w.before + w.after);
  if (bytes && bytes.length === w.before + w.after) lines.push(codeLine(rd.arch, bytes, w.before));
  return lines;
}

/**
 * The line that says what faulted, printed just before die(): x86's "BUG: kernel NULL
 * pointer dereference, address: …", arm64's and riscv's "Unable to handle kernel …". Only
 * records after the last report's end count: an older Oops must not name this one.
 */
export function reportHeader(records: readonly LogRecord[]): string | undefined {
  for (let i = records.length - 1; i >= 0 && i >= records.length - 64; i--) {
    const t = records[i].text;
    if (/^-+\[ end trace/.test(t) || /^-+\[ end Kernel panic/.test(t)) return undefined;
    if (/^(BUG: |Unable to handle kernel|general protection fault|stack segment|kernel BUG at|Internal error|Kernel BUG)/.test(t)) return t.trimEnd();
  }
  return undefined;
}

/** The trap's registers from its `struct pt_regs`, by DWARF number. */
async function readPtRegs(rd: ReportReader, addr: bigint, near: string): Promise<Map<number, bigint>> {
  const layout = await StructLayout.of(rd.access, 'struct pt_regs', [near, 'show_regs', '__show_regs', 'report_bug']);
  const bytes = await rd.access.read(addr, layout.size);
  const regs = new Map<number, bigint>();
  for (const [member, dwarf] of ptRegsMembers(rd.arch)) {
    if (!layout.has(member)) continue;
    regs.set(dwarf, readUint(bytes, layout.offset(member), 8));
  }
  return regs;
}

const hex = (v: bigint | undefined): string => `0x${(v ?? 0n).toString(16).padStart(16, '0')}`;
