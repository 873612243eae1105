/**
 * DAP stack frames from the engine's unwound frames. Each physical frame expands into its
 * inlined calls (innermost first, sharing one PC), each with source, line and column; a frame
 * with no line information gets a raw-code document instead so the editor can still focus it.
 */
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { Debugger } from '../engine/debugger';
import { isReturnAddress } from '../engine/unwind';
import type { SourceInfo } from '../engine/sourceinfo';
import type { SymbolLookup } from '../symbols/symtab';
import type { StopHandles } from './handles';
import { listingRange, rawCodeListing } from './rawcode';

export interface FrameRef {
  tid: number;
  pc: bigint;
  /** Index of the physical frame (0 = innermost). */
  physical: number;
  /** Which inlined call of that physical frame (0 = innermost). */
  inlineDepth: number;
}

export interface RawSources {
  put(key: string, text: string): number;
}

export async function stackFrames(
  dbg: Debugger,
  symbols: SymbolLookup | undefined,
  source: SourceInfo | undefined,
  args: DebugProtocol.StackTraceArguments,
  handles: StopHandles<FrameRef>,
  raw: RawSources,
): Promise<DebugProtocol.StackTraceResponse['body']> {
  const tid = args.threadId;
  const physical = await dbg.stack(tid);
  const all: DebugProtocol.StackFrame[] = [];
  const start = args.startFrame ?? 0;
  const want = args.levels && args.levels > 0 ? start + args.levels : Infinity;
  // VS Code asks for the top frame first: describing callers means reading their units' DWARF.
  let i = 0;
  for (; i < physical.length && all.length < want; i++) {
    const pc = physical[i].pc;
    // After a watchpoint the PC is past the instruction that wrote: show the line that wrote.
    const afterWrite = i === 0 && dbg.lastStopReason === 'data breakpoint';
    const described = source ? source.describe(pc, isReturnAddress(physical, i) || afterWrite, i === 0 ? dbg.functionBreakpointsAt(pc) : undefined) : [{ name: symbols?.describe(pc) ?? `0x${pc.toString(16)}`, inlined: false }];
    for (let depth = 0; depth < described.length; depth++) {
      const d = described[depth];
      const id = handles.create({ tid, pc, physical: i, inlineDepth: depth });
      const frame: DebugProtocol.StackFrame = { id, name: d.name, line: 0, column: 0, instructionPointerReference: `0x${pc.toString(16)}` };
      if (d.location) {
        frame.source = { name: path.basename(d.location.path), path: d.location.path };
        frame.line = d.location.line;
        frame.column = Math.max(1, d.location.column);
      } else if (i === 0 || all.length === 0) {
        // Only the frames a user can land in need a raw listing; callers without lines stay plain.
        const fn = symbols?.locate(pc)?.symbol;
        const range = listingRange(pc, fn);
        const bytes = await dbg.target.readMemoryPartial(range.start, range.length, tid);
        const describe = (a: bigint): string => (symbols ? symbols.describe(a) : `0x${a.toString(16)}`);
        const code = rawCodeListing(fn?.name ?? d.name, range.start, bytes, pc, describe);
        frame.source = { name: `${fn?.name ?? d.name} [CPU ${tid - 1}, raw]`, sourceReference: raw.put(`${tid}:${fn?.name ?? d.name}`, code.text) };
        frame.line = code.line;
        frame.column = 1;
      } else {
        frame.presentationHint = 'subtle';
      }
      if (d.inlined) frame.name = `${d.name} [inlined]`;
      if (depth === 0 && physical[i].label) all.push({ id: handles.create({ tid, pc, physical: i, inlineDepth: 0 }), name: physical[i].label as string, line: 0, column: 0, presentationHint: 'label' });
      // The reporting path stays reachable but dimmed, so the editor focuses the failure itself.
      if (physical[i].reporting) {
        frame.presentationHint = 'subtle';
        if (frame.source) frame.source.presentationHint = 'deemphasize';
      }
      all.push(frame);
    }
  }
  const frames = all.slice(start, want);
  // Stopped early: the total is unknown (inlined calls add frames), so let the client page on.
  if (i < physical.length) return { stackFrames: frames };
  return { stackFrames: frames, totalFrames: all.length };
}
