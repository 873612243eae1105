/** Why the guest stopped, as the engine reports it and the client shows it. */

export type StopReason = 'breakpoint' | 'instruction breakpoint' | 'step' | 'pause' | 'entry' | 'exception' | 'data breakpoint';

export interface StopEvent {
  reason: StopReason;
  threadId: number;
  pc: bigint;
  hitBreakpointIds: number[];
  description: string;
}

/** Reasons that come from user breakpoints: they carry hitBreakpointIds and run their conditions. */
export function isBreakpointReason(reason: StopReason): boolean {
  return reason === 'breakpoint' || reason === 'instruction breakpoint' || reason === 'data breakpoint';
}

export function describeReason(reason: StopReason, signal?: number): string {
  switch (reason) {
    case 'breakpoint':
      return 'Paused on breakpoint';
    case 'instruction breakpoint':
      return 'Paused on instruction breakpoint';
    case 'step':
      return 'Paused after step';
    case 'pause':
      return 'Paused';
    case 'entry':
      return 'Paused on entry';
    case 'exception':
      return `Paused on signal ${signal ?? '?'}`;
    case 'data breakpoint':
      return 'Paused on data breakpoint';
  }
}
