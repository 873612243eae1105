/**
 * Loaded modules over DAP: the `modules` request and `module` events, one Module per kernel
 * module with its address range and its symbol file or why it has none.
 */
import { Event } from '@vscode/debugadapter';
import type { DebugProtocol } from '@vscode/debugprotocol';
import type { Debugger } from '../engine/debugger';
import type { ModuleView } from '../engine/modulefiles';
import type { ModuleUsage } from '../kernel/modules';

const hex = (v: bigint): string => `0x${v.toString(16)}`;

export function dapModule(v: ModuleView): DebugProtocol.Module {
  const first = v.ranges[0];
  return {
    id: v.name,
    name: v.name,
    path: v.symbolFile,
    isOptimized: true,
    symbolStatus: v.symbolStatus,
    symbolFilePath: v.symbolFile,
    addressRange: first ? `${hex(first.start)}-${hex(v.ranges.reduce((e, r) => (r.end > e ? r.end : e), first.end))}` : undefined,
  };
}

/** A DAP Module with lsmod's columns (the Kernel Modules view and `qkd --lsmod` show them). */
export type KernelModule = DebugProtocol.Module & Partial<ModuleUsage>;

export async function modulesBody(dbg: Debugger, args: DebugProtocol.ModulesArguments): Promise<DebugProtocol.ModulesResponse['body']> {
  // Loads since the last stop are found now when no hook followed them; references are read then too.
  const usage = !dbg.modules ? new Map<string, ModuleUsage>() : dbg.isRunning && !dbg.kernel.listStaleWhileRunning ? new Map<string, ModuleUsage>() : await dbg.stoppedTurn(async () => (dbg.modules ? dbg.modules.usage() : new Map<string, ModuleUsage>())).catch(() => new Map<string, ModuleUsage>());
  const all: KernelModule[] = (dbg.modules?.modules() ?? []).map((v) => ({ ...dapModule(v), ...usage.get(v.name) }));
  const start = args.startModule ?? 0;
  const count = args.moduleCount ? args.moduleCount : all.length;
  return { modules: all.slice(start, start + count), totalModules: all.length };
}

/** Forward the engine's module changes to the client as `module` events. */
export function wireModuleEvents(dbg: Debugger, send: (e: DebugProtocol.Event) => void): void {
  dbg.on('module', (reason: 'new' | 'changed' | 'removed', view: ModuleView) => {
    send(new Event('module', { reason, module: dapModule(view) }) as DebugProtocol.ModuleEvent);
  });
}
