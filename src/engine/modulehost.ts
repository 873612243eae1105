/**
 * The engine as the module tracker sees it: internal breakpoints, and the breakpoint sets
 * to re-resolve when a module's image comes or goes. Kept out of the Debugger so the facade
 * stays a list of wires.
 */
import type { EventEmitter } from 'node:events';
import { inRanges, type Image } from '../symbols/imageset';
import type { BreakpointTable } from './breakpoints';
import type { FunctionBreakpoints } from './functionbps';
import type { ModuleHost } from './moduletracker';
import type { SourceBreakpoints } from './sourcebps';
import type { SourceSet } from './sources';
import type { KernelTarget } from './target';
import type { Program } from './values/program';

export interface ModuleHostDeps {
  target: KernelTarget;
  source: SourceSet;
  bps: BreakpointTable;
  functions: FunctionBreakpoints;
  lines: SourceBreakpoints;
  events: EventEmitter;
  program(): Program | undefined;
  newId(): number;
  thread(): number;
}

export function moduleHost(d: ModuleHostDeps): ModuleHost {
  return {
    target: d.target,
    source: d.source,
    program: d.program,
    newId: d.newId,
    thread: d.thread,
    wantsModuleEvents: () => {
      // A breakpoint with no address yet may be in a module to come; one in a module must leave when it goes.
      const all = [...d.functions.all(), ...d.lines.all()];
      return all.some((p) => p.addresses.length === 0 || p.addresses.some((a) => d.source.images.moduleAt(a) !== undefined));
    },
    breakpointsIn: (ranges) => [...d.functions.all(), ...d.lines.all()].some((p) => p.addresses.some((a) => inRanges(ranges, a))),
    addInternal: (addr, id) => d.bps.add(addr, id),
    removeInternal: (addr, id) => d.bps.remove(addr, id),
    imageAdded: async (name) => {
      const info = d.source.moduleSource(name);
      if (!info) return;
      await d.functions.imageAdded(info);
      await d.lines.imageAdded(info);
    },
    imageRemoved: async (image: Image) => {
      const gone = (a: bigint): boolean => inRanges(image.ranges, a);
      const why = `pending: module ${image.name} is not loaded (it was unloaded); the breakpoint is placed when it loads again`;
      await d.functions.lift(gone, why);
      await d.lines.lift(gone, why);
    },
    rangesFreed: async (module, ranges) => {
      const gone = (a: bigint): boolean => inRanges(ranges, a);
      const why = `dropped: ${module}'s init code was freed once its init function returned; the breakpoint is placed again if the module loads again`;
      await d.functions.lift(gone, why);
      await d.lines.lift(gone, why);
    },
    event: (reason, view) => d.events.emit('module', reason, view),
    log: (m) => d.events.emit('log', m),
    warn: (m) => d.events.emit('warning', m),
  };
}
