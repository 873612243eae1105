/**
 * The adapter's capabilities, among them the Breakpoints view's exception filters (panic,
 * Oops, BUG, WARN, sanitizers, lockups), and the exception widget's content at a stop on one.
 * The engine's FaultCatcher does the work.
 */
import { DebugProtocol } from '@vscode/debugprotocol';
import type { Debugger } from '../engine/debugger';
import type { FaultFilterSetting } from '../engine/faults';
import { FAULT_FILTERS } from '../kernel/faults';
import { errors } from '../util/errors';

/** What the adapter does, as the initialize response says it. */
export function capabilities(): DebugProtocol.Capabilities {
  return {
    supportsConfigurationDoneRequest: true,
    supportsFunctionBreakpoints: true,
    supportsTerminateRequest: true,
    supportTerminateDebuggee: true,
    supportsReadMemoryRequest: true,
    supportsConditionalBreakpoints: true,
    supportsHitConditionalBreakpoints: true,
    supportsLogPoints: true,
    supportsEvaluateForHovers: true,
    supportsSetExpression: true,
    supportsDataBreakpoints: true,
    supportsClipboardContext: true,
    supportsValueFormattingOptions: true,
    supportsSteppingGranularity: true,
    supportsInstructionBreakpoints: true,
    supportsDisassembleRequest: true,
    supportsWriteMemoryRequest: true,
    supportsSetVariable: true,
    supportsRestartRequest: false,
    supportsModulesRequest: true,
    exceptionBreakpointFilters: exceptionFilters(),
    supportsExceptionFilterOptions: true,
    supportsExceptionInfoRequest: true,
  };
}

/** The filters as the initialize response offers them: each takes a C condition. */
function exceptionFilters(): DebugProtocol.ExceptionBreakpointsFilter[] {
  return FAULT_FILTERS.map((f) => ({
    filter: f.id,
    label: f.label,
    description: f.description,
    default: f.default,
    supportsCondition: true,
    conditionDescription: 'A C expression over the reporting function’s arguments, e.g. regs->ip != 0 or str[0] == \'O\'; the guest stops only when it is non-zero.',
  }));
}

/** setExceptionBreakpoints: plain filters and filters with options, one result each in the order given. */
export async function setExceptionFilters(dbg: Debugger, a: DebugProtocol.SetExceptionBreakpointsArguments, log: (m: string) => void): Promise<DebugProtocol.SetExceptionBreakpointsResponse['body']> {
  const settings: FaultFilterSetting[] = [...(a.filters ?? []).map((filterId) => ({ filterId })), ...(a.filterOptions ?? []).map((o) => ({ filterId: o.filterId, condition: o.condition }))];
  const results = await dbg.setExceptionFilters(settings);
  for (const r of results) if (!r.verified && r.message) log(r.message);
  return { breakpoints: results.map((r) => ({ verified: r.verified, message: r.message })) };
}

/** exceptionInfo: what the report says, with the kernel's own first lines as its details. */
export function exceptionInfo(dbg: Debugger, a: DebugProtocol.ExceptionInfoArguments): DebugProtocol.ExceptionInfoResponse['body'] {
  const r = dbg.kernel.faults?.current(a.threadId);
  if (!r) throw errors.unsupported(`Thread ${a.threadId} did not stop on a kernel failure report.`);
  return {
    exceptionId: r.filter,
    description: r.message,
    breakMode: 'always',
    details: {
      message: r.message,
      typeName: r.title,
      fullTypeName: `${r.title} (reported by ${r.reporter})`,
      stackTrace: r.details.join('\n'),
    },
  };
}
