/**
 * Exception filters: stop where the kernel reports a failure (panic, Oops, BUG, WARN,
 * sanitizers, lockups) and show the fault, not the reporter. Each enabled filter is a hidden
 * breakpoint on its reporting functions (kernel/faults.ts); a hit reads the report
 * (faultreport.ts), runs the filter's condition, and either stops with reason 'exception' or
 * lets the guest go on without the client seeing anything. At the stop the Call Stack is
 * rearranged: the faulting context (unwound from the trap's pt_regs) first, the reporting
 * path after it as a labelled section.
 */
import { BugTables, type BugEntry } from '../kernel/bugtable';
import { ARGUMENT_REGISTERS, FAULT_FILTERS, filtersOf, reportersFor, type FaultFilterId, type Reporter } from '../kernel/faults';
import { StructLayout, type KernelAccess } from '../kernel/layout';
import type { LogRecord } from '../kernel/printk';
import type { ImageSet } from '../symbols/imageset';
import { messageOf } from '../util/errors';
import type { BreakpointTable } from './breakpoints';
import { parseExpression } from './expr/parse';
import { readReport, type FaultReport, type ReportReader } from './faultreport';
import type { KernelTasks } from './ktasks';
import type { ModuleView } from './modulefiles';
import type { StopEvent } from './stopreason';
import type { KernelTarget } from './target';
import type { UnwoundFrame } from './unwind';

export type { FaultReport } from './faultreport';
export { FAULT_FILTERS } from '../kernel/faults';

export interface FaultFilterSetting {
  filterId: string;
  /** A C expression, evaluated in the reporter's frame (its arguments by name); stop only when true. */
  condition?: string;
}

export interface FaultFilterResult {
  verified: boolean;
  message?: string;
}

export interface FaultHost {
  target: KernelTarget;
  images: ImageSet;
  bps: BreakpointTable;
  newId(): number;
  access(): KernelAccess;
  tasks(): KernelTasks;
  kernelLog(): Promise<LogRecord[]>;
  /** The loaded modules, brought up to date (a report names a module's code, and a BUG in one is in its table). */
  modules(): Promise<readonly ModuleView[]>;
  /** Whether a condition holds at this stop; throws with the reason when it can't be evaluated. */
  condition(expr: string, tid: number): Promise<boolean>;
  /** Drop what this stop had read (the Call Stack is rearranged once a report stops). */
  forgetStop(): void;
  unwind(regs: Map<number, bigint>): Promise<UnwoundFrame[]>;
  warn(message: string): void;
}

interface Hook {
  id: number;
  address: bigint;
  reporter: Reporter;
}

const LOADER = ['do_init_module', 'load_module', 'free_module'];

export class FaultCatcher {
  private readonly enabled = new Map<FaultFilterId, string | undefined>();
  private readonly hooks = new Map<number, Hook>();
  private found: ReturnType<typeof reportersFor> | undefined;
  /** The report this stop is showing, until the guest runs again. */
  private report: { tid: number; r: FaultReport } | undefined;
  /** A BUG just reported: the Oops die() makes of the same trap right after is not a second stop. */
  private lastBug: bigint | undefined;
  private bugTables: Promise<BugTables> | undefined;

  constructor(private readonly h: FaultHost) {}

  /** The reporters this kernel has, and why a filter has none. */
  private get kernel(): ReturnType<typeof reportersFor> {
    this.found ??= reportersFor(this.h.target.arch.name, (fn) => this.h.images.kernelSymbols(fn).some((s) => s.type === 'func' && s.value !== 0n));
    return this.found;
  }

  /** Why a filter can't work in this kernel, or undefined when it can. */
  unavailable(id: FaultFilterId): string | undefined {
    return this.kernel.missing.get(id);
  }

  /** Replace the enabled filters (DAP setExceptionBreakpoints); one result per setting, in order. */
  async set(settings: readonly FaultFilterSetting[]): Promise<FaultFilterResult[]> {
    this.enabled.clear();
    const results: FaultFilterResult[] = [];
    for (const s of settings) {
      const f = FAULT_FILTERS.find((x) => x.id === s.filterId);
      if (!f) {
        results.push({ verified: false, message: `Unknown exception filter "${s.filterId}": this debugger has ${FAULT_FILTERS.map((x) => x.id).join(', ')}.` });
        continue;
      }
      const missing = this.unavailable(f.id);
      if (missing) {
        results.push({ verified: false, message: `${f.label}: ${missing}.` });
        continue;
      }
      const condition = s.condition?.trim() || undefined;
      const bad = condition ? syntaxError(condition) : undefined;
      if (bad) {
        results.push({ verified: false, message: `${f.label}: the condition does not parse: ${bad}` });
        continue;
      }
      this.enabled.set(f.id, condition);
      results.push({ verified: true });
    }
    await this.place();
    return results;
  }

  /** Hooks on exactly the reporters the enabled filters need. */
  private async place(): Promise<void> {
    const want = new Map(this.kernel.reporters.filter((r) => filtersOf(r.kind).some((f) => this.enabled.has(f))).map((r) => [r.fn, r]));
    for (const h of [...this.hooks.values()]) {
      if (want.has(h.reporter.fn)) {
        want.delete(h.reporter.fn);
        continue;
      }
      this.hooks.delete(h.id);
      await this.h.bps.remove(h.address, h.id).catch(() => undefined);
    }
    for (const r of want.values()) {
      const sym = this.h.images.kernelSymbols(r.fn).find((s) => s.type === 'func' && s.value !== 0n);
      if (!sym) continue;
      const hook = { id: this.h.newId(), address: sym.value, reporter: r };
      await this.h.bps.add(hook.address, hook.id);
      this.hooks.set(hook.id, hook);
    }
  }

  /** vmlinux moved (KASLR found): the hooks move with it. */
  async rebase(to: (addr: bigint) => bigint): Promise<void> {
    for (const h of this.hooks.values()) {
      const at = to(h.address);
      if (at === h.address) continue;
      await this.h.bps.remove(h.address, h.id).catch(() => undefined);
      h.address = at;
      await this.h.bps.add(h.address, h.id);
    }
  }

  async removeAll(): Promise<void> {
    for (const h of this.hooks.values()) await this.h.bps.remove(h.address, h.id).catch(() => undefined);
    this.hooks.clear();
  }

  /** The guest runs again: the report shown is over. */
  forget(): void {
    this.report = undefined;
  }

  /**
   * The breakpoints a stop hit, with the reporter hooks taken out; a hook whose report
   * should stop stays in, so the stop is made (and described as an exception, see decorate).
   */
  async take(ids: readonly number[], tid: number): Promise<number[]> {
    const out = ids.filter((id) => !this.hooks.has(id));
    for (const id of ids) {
      const hook = this.hooks.get(id);
      if (!hook) continue;
      try {
        const r = await this.judge(hook.reporter, tid);
        if (r) {
          this.report = { tid, r };
          // The condition's evaluation unwound the stack as it was: the client gets it rearranged.
          this.h.forgetStop();
          out.push(id);
        }
      } catch (e) {
        this.h.warn(`Exception filter on ${hook.reporter.fn}: ${messageOf(e)}`);
      }
    }
    return out;
  }

  private async judge(reporter: Reporter, tid: number): Promise<FaultReport | undefined> {
    const r = await readReport(reporter, await this.reader(tid));
    if (!r || !this.enabled.has(r.filter)) return undefined;
    if (r.filter === 'bug') this.lastBug = r.faultPc;
    if (r.filter === 'oops' && r.faultPc !== undefined && r.faultPc === this.lastBug) {
      this.lastBug = undefined;
      return undefined;
    }
    const condition = this.enabled.get(r.filter);
    if (condition && !(await this.h.condition(condition, tid))) return undefined;
    return r;
  }

  private async reader(tid: number): Promise<ReportReader> {
    const t = this.h.target;
    const arch = t.arch;
    const regs = await t.readDwarfRegisters(tid);
    const args = (ARGUMENT_REGISTERS[arch.name] ?? []).map((n) => regs.get(n) ?? 0n);
    let caller: bigint | undefined;
    if (arch.returnAddress.kind === 'register') caller = regs.get(arch.returnAddress.dwarf);
    else {
      const sp = regs.get(arch.dwarfSp);
      const b = sp !== undefined ? await t.readMemory(sp, 8, tid).catch(() => undefined) : undefined;
      caller = b?.readBigUInt64LE(0);
    }
    const modules = await this.h.modules();
    const images = this.h.images;
    const access = this.h.access();
    const tasks = this.h.tasks();
    return {
      arch: arch.name,
      access,
      args,
      caller,
      symbol: (a) => kernelSymbolText(images, a),
      functionAt: (a) => images.locate(a)?.symbol.name,
      bug: (a) => this.bug(access, modules, a),
      current: async () => {
        const v = await tasks.vcpu(tid);
        const task = v.current ? await (await tasks.tasks()).read(v.current).catch(() => undefined) : undefined;
        return { cpu: v.cpu, task };
      },
      task: async (a) => (await tasks.tasks()).read(a),
      kernelLog: () => this.h.kernelLog(),
      code: (a, n) => t.readMemory(a, n, tid).catch(() => undefined),
    };
  }

  /** The bug table entry of a trap: vmlinux's table, or the module's the address is in. */
  private async bug(access: KernelAccess, modules: readonly ModuleView[], addr: bigint): Promise<BugEntry | undefined> {
    this.bugTables ??= BugTables.create(access);
    const tables = await this.bugTables;
    const m = modules.find((v) => v.ranges.some((r) => addr >= r.start && addr < r.end));
    if (m) {
      const layout = await StructLayout.of(access, 'struct module', LOADER);
      const table = await tables.moduleTable(m.structAddress, layout);
      return table && tables.find(table, addr);
    }
    const table = tables.kernelTable();
    return table && tables.find(table, addr);
  }

  /** A stop made for a report is an exception stop, described by the report. */
  decorate(e: StopEvent): StopEvent {
    const r = this.report;
    if (!r || r.tid !== e.threadId) return e;
    return { ...e, reason: 'exception', hitBreakpointIds: [], description: `Paused on ${r.r.title}: ${r.r.message}` };
  }

  /** The report the stop of `tid` shows (exceptionInfo). */
  current(tid: number): FaultReport | undefined {
    return this.report?.tid === tid ? this.report.r : undefined;
  }

  /**
   * The Call Stack of an exception stop. With the trap's registers: the faulting context
   * unwound from them, then the reporting path (the frames below the pt_regs on the stack)
   * labelled. Without (panic, UBSAN): the reporter's own frame labelled as the reporting
   * path, then its caller, where the failure is.
   */
  async arrange(tid: number, frames: UnwoundFrame[]): Promise<UnwoundFrame[]> {
    const r = this.current(tid);
    if (!r || !frames.length) return frames;
    const label = `Reporting path (${r.title}: ${r.reporter})`;
    if (!r.regs) {
      return [{ ...frames[0], label, reporting: true, exact: true }, ...frames.slice(1)];
    }
    const fault = await this.h.unwind(r.regs);
    if (!fault.length) return frames;
    fault[0] = { ...fault[0], trap: true };
    const regsAt = r.regsAddr ?? 0n;
    const reporting: UnwoundFrame[] = [];
    for (const f of frames) {
      // Past the pt_regs the walk is in the faulting context, which the first section shows.
      if (reporting.length && (f.cfa === undefined || f.cfa > regsAt || f.pc === r.faultPc)) break;
      reporting.push({ ...f, reporting: true });
    }
    reporting[0] = { ...reporting[0], label, exact: true };
    return [...fault, ...reporting];
  }
}

function syntaxError(expr: string): string | undefined {
  try {
    parseExpression(expr);
    return undefined;
  } catch (e) {
    return messageOf(e);
  }
}

/** `func+0x1a/0x200 [mod]`, as the kernel's %pS prints a code address. */
export function kernelSymbolText(images: ImageSet, addr: bigint): string {
  const loc = images.locate(addr);
  if (!loc) return `0x${addr.toString(16)}`;
  const m = images.moduleAt(addr);
  return `${loc.symbol.name}+0x${loc.offset.toString(16)}/0x${loc.symbol.size.toString(16)}${m ? ` [${m.name}]` : ''}`;
}
