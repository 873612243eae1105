/**
 * Reading ahead while the guest runs toward its breakpoints, so that the stop itself only
 * evaluates: the DWARF and symbol orders a stop at those addresses needs, and the decoder a
 * step over a line uses.
 */
import type { ArchInfo } from '../arch';
import { Disassembler } from './disasm';
import type { SourceInfo } from './sourceinfo';

/**
 * Starts on the next turn of the event loop: the caller has just queued the resume packet,
 * which goes out in a microtask, and each millisecond of parsing before it would hold the
 * guest back by as much.
 */
export function readAhead(source: SourceInfo | undefined, arch: ArchInfo, addresses: readonly bigint[]): void {
  setImmediate(() => {
    void source?.warm(addresses);
    void Disassembler.create(arch.disassembler, 'intel').then(
      (d) => d.warmUp(),
      () => undefined,
    );
  });
}
