/**
 * The code references in a kernel log line, as the kernel prints them (%pS, %pB):
 * `func+0x1a/0x200`, `func+0x1a/0x200 [mod]` (with a build ID after the name when the kernel
 * has CONFIG_STACKTRACE_BUILD_ID), `RIP: 0010:func+…`, arm64's `pc : func+…`, a call
 * trace's `? func+…`, and old kernels' `[<ffffffff8100…>] func+…`. Plain text in, positions
 * out, so the decoder, the language server's links and its hovers read a line the same way.
 */

export interface CodeRef {
  /** Where `func+0xoff/0xsize` starts and ends in the line (the segment, `0010:`, excluded). */
  start: number;
  end: number;
  func: string;
  offset: bigint;
  size: bigint;
  /** The module named in brackets after it; undefined for vmlinux. */
  module?: string;
  buildId?: string;
  /** Where the `[mod]` (or `[mod buildid]`) ends, when there is one. */
  moduleEnd?: number;
  /** A call trace's `? ` entry: an address found on the stack that the unwinder could not vouch for. */
  unreliable: boolean;
  /** The trapping PC (RIP:, pc :, epc :), not a return address. */
  trap: boolean;
}

const REF = /(?:^|[\s(:<])(\?\s+)?((?:[0-9a-f]{4}:)?)([A-Za-z_.$][\w.$]*)\+0x([0-9a-f]+)\/0x([0-9a-f]+)(?:\s+\[([\w-]+)(?:\s+([0-9a-f]+))?\])?/g;

/** Every code reference in one log line. */
export function codeRefs(line: string): CodeRef[] {
  const out: CodeRef[] = [];
  for (const m of line.matchAll(REF)) {
    const text = `${m[3]}+0x${m[4]}/0x${m[5]}`;
    const start = line.indexOf(text, m.index ?? 0);
    const before = line.slice(0, start);
    const ref: CodeRef = {
      start,
      end: start + text.length,
      func: m[3],
      offset: BigInt('0x' + m[4]),
      size: BigInt('0x' + m[5]),
      unreliable: m[1] !== undefined,
      trap: /(?:\bRIP:\s*(?:[0-9a-f]{4}:)?|\bpc\s*:\s*|\bepc\s*:\s*)$/.test(before),
    };
    if (m[6]) {
      ref.module = m[6];
      if (m[7]) ref.buildId = m[7];
      ref.moduleEnd = (m.index ?? 0) + m[0].length;
    }
    out.push(ref);
  }
  return out;
}

const LOG_LINE = /^\s*(?:<\d>)?\[\s*\d+\.\d{6}\]|^Linux version \d|^Booting Linux on /;

/**
 * Whether a text's first lines read like the kernel's console (dmesg, a serial log): most of
 * the first 20 non-empty lines carry printk's timestamp. A serial log starts with firmware
 * chatter (SeaBIOS, OpenSBI) before the kernel's first line, hence a share and not all.
 */
export function looksLikeKernelLog(text: string): boolean {
  const lines = text.split('\n', 200).filter((l) => l.trim() !== '').slice(0, 20);
  const hits = lines.filter((l) => LOG_LINE.test(l)).length;
  return hits >= 3 && hits * 2 >= lines.length;
}
