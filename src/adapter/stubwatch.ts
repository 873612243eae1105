/**
 * What the session says when QEMU's gdbstub stops answering (QEMU SIGSTOPped, or hung) and
 * when it answers again. Requests fail meanwhile (the RSP client's timeout), so what was
 * read during the silence (a stack cut short at its first unreadable frame) is dropped once
 * the stub is back, and the client is asked to read it again.
 */
import type { Debugger } from '../engine/debugger';
import type { LogLevel } from './events';

export function watchStub(dbg: Debugger, log: (text: string, level: LogLevel) => void, invalidate: () => void): void {
  const rsp = dbg.target.rsp;
  rsp.on('stalled', (what: string) =>
    log(`QEMU's gdbstub is not answering (${what}): QEMU may be stopped (SIGSTOP, another debugger) or hung. Requests fail until it answers again.`, 'warn'),
  );
  rsp.on('answering', () => {
    log("QEMU's gdbstub answers again.", 'info');
    if (dbg.isRunning || dbg.isExited) return;
    dbg.forgetStop();
    invalidate();
  });
}
