/**
 * Where the kernel reports its failures, and how to read a report at the reporter's first
 * instruction (arguments still in their ABI registers). The debugger's exception filters
 * break on these functions; which exist depends on the arch, the version and the config.
 */

export type FaultFilterId = 'panic' | 'oops' | 'bug' | 'warn' | 'sanitizer' | 'lockup';

export interface FaultFilter {
  id: FaultFilterId;
  label: string;
  description: string;
  /** On unless the user turns it off (WARNs and lockup reports can be noisy). */
  default: boolean;
}

export const FAULT_FILTERS: readonly FaultFilter[] = [
  { id: 'panic', label: 'Kernel panic', description: 'Stop in panic(), before the kernel halts: the Call Stack shows who panicked.', default: true },
  { id: 'oops', label: 'Oops / die', description: 'Stop on an Oops (a bad access, a trap in kernel mode) at the faulting instruction, rebuilt from the trap’s pt_regs.', default: true },
  { id: 'bug', label: 'BUG()', description: 'Stop on BUG() and BUG_ON() at the line that failed.', default: true },
  { id: 'warn', label: 'WARN', description: 'Stop on WARN(), WARN_ON() and WARN_ONCE() at the line that warned (off by default: some kernels warn often).', default: false },
  { id: 'sanitizer', label: 'KASAN / KFENCE / UBSAN reports', description: 'Stop on a sanitizer report, at the access it caught.', default: true },
  { id: 'lockup', label: 'Hung task / soft lockup / RCU stall', description: 'Stop when the kernel reports a hung task, a soft lockup or an RCU stall.', default: false },
];

/** How a reporter's arguments say what happened. */
export type ReporterKind = 'panic' | 'vpanic' | 'die' | 'report_bug' | 'kfence' | 'kasan' | 'ubsan' | 'hung' | 'softlockup' | 'rcu';

export interface Reporter {
  fn: string;
  kind: ReporterKind;
  /** Which argument (0-based) is the `struct pt_regs *` of the trap, when the reporter has one. */
  regsArg?: number;
  /** Which argument is the reporter's own text (die's "Oops", "invalid opcode"). */
  strArg?: number;
  /** Only a call from one of these functions is a report (the reporter is also used elsewhere). */
  callers?: readonly string[];
}

/** The filters a report of this kind is caught by. report_bug serves both: its bug entry tells BUG from WARN. */
export function filtersOf(kind: ReporterKind): FaultFilterId[] {
  switch (kind) {
    case 'panic':
    case 'vpanic':
      return ['panic'];
    case 'die':
      return ['oops'];
    case 'report_bug':
      return ['bug', 'warn'];
    case 'kfence':
    case 'kasan':
    case 'ubsan':
      return ['sanitizer'];
    default:
      return ['lockup'];
  }
}

/** UBSAN's handlers (lib/ubsan.c), one per check; a kernel has those of the checks it was built with. */
const UBSAN_HANDLERS = ['out_of_bounds', 'shift_out_of_bounds', 'divrem_overflow', 'load_invalid_value', 'builtin_unreachable', 'type_mismatch', 'type_mismatch_v1', 'alignment_assumption', 'add_overflow', 'sub_overflow', 'mul_overflow', 'negate_overflow', 'implicit_conversion'].map((c) => `__ubsan_handle_${c}`);

/** The reporters this kernel has; `has` tells whether vmlinux defines a function. */
export function reportersFor(arch: string, has: (fn: string) => boolean): { reporters: Reporter[]; missing: Map<FaultFilterId, string> } {
  const reporters: Reporter[] = [];
  const missing = new Map<FaultFilterId, string>();
  // 6.17 moved panic's body to vpanic(fmt, va_list); panic() calls it, so one breakpoint does.
  if (has('vpanic')) reporters.push({ fn: 'vpanic', kind: 'vpanic' });
  else if (has('panic')) reporters.push({ fn: 'panic', kind: 'panic' });
  else missing.set('panic', 'this kernel has no panic() function');
  // x86: die(), die_addr() and page_fault_oops() all print through __die(str, regs, err).
  // arm64: die(str, regs, err); riscv: die(regs, str).
  if (arch === 'x86_64') {
    if (has('__die')) reporters.push({ fn: '__die', kind: 'die', strArg: 0, regsArg: 1 });
    else missing.set('oops', 'this kernel has no __die() function');
  } else if (has('die')) {
    reporters.push(arch === 'riscv64' ? { fn: 'die', kind: 'die', regsArg: 0, strArg: 1 } : { fn: 'die', kind: 'die', strArg: 0, regsArg: 1 });
  } else missing.set('oops', 'this kernel has no die() function');
  if (has('report_bug')) reporters.push({ fn: 'report_bug', kind: 'report_bug', regsArg: 1 });
  else {
    const why = 'this kernel has no report_bug() (built without CONFIG_BUG): BUG() is a bare invalid-instruction Oops and WARN() prints nothing';
    missing.set('bug', why);
    missing.set('warn', why);
  }
  const sanitizers: Reporter[] = [];
  if (has('kfence_report_error')) sanitizers.push({ fn: 'kfence_report_error', kind: 'kfence', regsArg: 2 });
  for (const fn of ['kasan_report', 'kasan_report_invalid_free']) if (has(fn)) sanitizers.push({ fn, kind: 'kasan' });
  for (const fn of UBSAN_HANDLERS.filter(has)) sanitizers.push({ fn, kind: 'ubsan' });
  if (sanitizers.length) reporters.push(...sanitizers);
  else missing.set('sanitizer', 'this kernel has no sanitizer (built without CONFIG_KASAN, CONFIG_KFENCE and CONFIG_UBSAN)');
  const lockups: Reporter[] = [];
  // check_hung_task() is inlined; it reports a hung task through sched_show_task(), which
  // sysrq and show_state() call too, hence the caller check.
  if (has('check_hung_uninterruptible_tasks') && has('sched_show_task')) lockups.push({ fn: 'sched_show_task', kind: 'hung', callers: ['check_hung_uninterruptible_tasks', 'check_hung_task'] });
  // The soft-lockup watchdog prints the module list only once it has found a CPU stuck.
  if (has('watchdog_timer_fn') && has('print_modules')) lockups.push({ fn: 'print_modules', kind: 'softlockup', callers: ['watchdog_timer_fn'] });
  for (const fn of ['print_cpu_stall', 'print_other_cpu_stall']) if (has(fn)) lockups.push({ fn, kind: 'rcu' });
  if (lockups.length) reporters.push(...lockups);
  else missing.set('lockup', 'this kernel reports none of them (built without CONFIG_DETECT_HUNG_TASK and CONFIG_SOFTLOCKUP_DETECTOR, and its RCU stall reporters are inlined)');
  return { reporters, missing };
}

/** DWARF register numbers of the first integer arguments, by arch (SysV x86-64, AAPCS64, riscv psABI). */
export const ARGUMENT_REGISTERS: Record<string, readonly number[]> = {
  x86_64: [5, 4, 1, 2, 8, 9],
  aarch64: [0, 1, 2, 3, 4, 5, 6, 7],
  riscv64: [10, 11, 12, 13, 14, 15, 16, 17],
};

/** `struct pt_regs` members and the DWARF register each saves (arm64's `regs[]` is expanded). */
export function ptRegsMembers(arch: string): Array<[string, number]> {
  if (arch === 'x86_64') {
    const names: Array<[string, number]> = [['ax', 0], ['dx', 1], ['cx', 2], ['bx', 3], ['si', 4], ['di', 5], ['bp', 6], ['sp', 7], ['ip', 16]];
    for (let r = 8; r <= 15; r++) names.push([`r${r}`, r]);
    return names;
  }
  if (arch === 'aarch64') {
    const names: Array<[string, number]> = Array.from({ length: 31 }, (_, i): [string, number] => [`regs[${i}]`, i]);
    names.push(['sp', 31], ['pc', 32]);
    return names;
  }
  const x = ['ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6'];
  return [['epc', 64], ...x.map((n, i): [string, number] => [n, i + 1])];
}

/** The kernel's taint letters (kernel/panic.c taint_flags), indexed by bit. */
const TAINTS: ReadonlyArray<[string, string]> = [
  ['P', 'G'], ['F', ' '], ['S', ' '], ['R', ' '], ['M', ' '], ['B', ' '], ['U', ' '], ['D', ' '], ['A', ' '],
  ['W', ' '], ['C', ' '], ['I', ' '], ['O', ' '], ['E', ' '], ['L', ' '], ['K', ' '], ['X', ' '], ['T', ' '],
];

/** `Not tainted`, or `Tainted: G           O` as print_tainted() writes it (trailing blanks dropped). */
export function taintText(mask: bigint): string {
  if (mask === 0n) return 'Not tainted';
  const letters = TAINTS.map(([set, clear], bit) => ((mask >> BigInt(bit)) & 1n ? set : clear)).join('');
  return `Tainted: ${letters.trimEnd()}`;
}

/** The names the kernel prints for UBSAN's checks (lib/ubsan.c), by handler. */
export function ubsanCheck(fn: string): string {
  const check = fn.replace(/^__ubsan_handle_/, '').replace(/_v1$/, '');
  const known: Record<string, string> = {
    out_of_bounds: 'array-index-out-of-bounds',
    shift_out_of_bounds: 'shift-out-of-bounds',
    divrem_overflow: 'division-overflow',
    load_invalid_value: 'invalid-load',
    builtin_unreachable: 'unreachable',
    type_mismatch: 'type-mismatch',
    alignment_assumption: 'alignment-assumption',
    add_overflow: 'integer-overflow',
    sub_overflow: 'integer-overflow',
    mul_overflow: 'integer-overflow',
    negate_overflow: 'negation-overflow',
    implicit_conversion: 'implicit-conversion',
  };
  return known[check] ?? check.replace(/_/g, '-');
}

/** KFENCE's error types (mm/kfence/kfence.h), as its report names them. */
export function kfenceError(type: number, write: boolean): string {
  const access = write ? 'write' : 'read';
  return [`out-of-bounds ${access}`, `use-after-free ${access}`, 'memory corruption', `invalid ${access}`, 'invalid free'][type] ?? `error ${type}`;
}

/** `Code:` as the kernel prints it: x86 bytes with the faulting one in <>, arm64 words with it in (). */
export function codeLine(arch: string, bytes: Buffer, at: number): string {
  if (arch === 'x86_64') {
    const parts = [...bytes].map((b, i) => (i === at ? `<${hex2(b)}>` : hex2(b)));
    return `Code: ${parts.join(' ')}`;
  }
  const unit = arch === 'aarch64' ? 4 : 2;
  const parts: string[] = [];
  for (let off = at % unit; off + unit <= bytes.length; off += unit) {
    const v = unit === 4 ? bytes.readUInt32LE(off) : bytes.readUInt16LE(off);
    const text = v.toString(16).padStart(unit * 2, '0');
    parts.push(off === at ? `(${text})` : text);
  }
  return `Code: ${parts.join(' ')}`;
}

/** How many bytes before and after the faulting instruction `Code:` shows, per arch (x86 show_opcodes: 42 and 21). */
export function codeWindow(arch: string): { before: number; after: number } {
  if (arch === 'x86_64') return { before: 42, after: 22 };
  if (arch === 'aarch64') return { before: 16, after: 4 };
  return { before: 20, after: 4 };
}

const hex2 = (b: number): string => b.toString(16).padStart(2, '0');
