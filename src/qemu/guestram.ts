/**
 * Guest RAM read straight from QEMU's memory backend, with no gdbstub round trip. A launch
 * gives the guest its RAM as a memfd (`memory-backend-memfd,share=on`); once QEMU runs, the
 * adapter opens that memfd through /proc/<pid>/fd (only QEMU's owner may), and `info mtree -f`
 * says which guest-physical ranges sit at which offsets in it. While the vCPUs are stopped the
 * bytes are the guest's at that stop, so a walk over 300 task_structs costs file reads in
 * this process instead of 600 `m` packets to QEMU. Nothing here is a path others can open:
 * a memfd has no name in any filesystem.
 */
import * as fs from 'node:fs';

/** The backend's id in QEMU's object tree (and the RAM region's name in `info mtree`). */
export const RAM_BACKEND_ID = 'qkd-ram';
/** What QEMU 7.2 names every backend's memfd, whatever its id. */
const MEMFD_NAME = /^\/memfd:memory-backend-memfd( \(deleted\))?$/;

export interface RamRange {
  /** Guest-physical start and end (exclusive). */
  start: bigint;
  end: bigint;
  /** Where `start` is in the backend. */
  offset: bigint;
}

/**
 * The ranges of the system address space that are `region`'s RAM, from HMP `info mtree -f`
 * (its first flat view that holds any; ROM and I/O overlays are left out, so a read there
 * goes to the gdbstub as before).
 */
export function parseMtreeRam(text: string, region: string): RamRange[] {
  const line = /^\s*([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, ram\): (\S+)(?: @([0-9a-f]+))?/;
  const views = text.split(/^FlatView #\d+/m);
  for (const view of views) {
    const out: RamRange[] = [];
    for (const l of view.split('\n')) {
      const m = line.exec(l);
      if (!m || m[3] !== region) continue;
      out.push({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]) + 1n, offset: m[4] ? BigInt('0x' + m[4]) : 0n });
    }
    if (out.length) return out;
  }
  return [];
}

/**
 * The memfd QEMU process `pid` holds for guest RAM, as a readable fd of ours: one named as
 * QEMU names backends' memfds and large enough to hold `ranges`. undefined when it has none
 * or we may not open it, or (`unique`) when it has more than one such memfd, which could be
 * any backend's.
 */
export function openBackendMemfd(pid: number, ranges: readonly RamRange[], unique = false): number | undefined {
  const need = ranges.reduce((m, r) => (r.offset + (r.end - r.start) > m ? r.offset + (r.end - r.start) : m), 0n);
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const named = fds.filter((fd) => {
    try {
      return MEMFD_NAME.test(fs.readlinkSync(`${dir}/${fd}`));
    } catch {
      return false;
    }
  });
  if (unique && named.length !== 1) return undefined;
  for (const fd of named) {
    let ours: number | undefined;
    try {
      ours = fs.openSync(`${dir}/${fd}`, 'r');
      if (BigInt(fs.fstatSync(ours).size) >= need) return ours;
    } catch {
      // Not ours to open (another user's QEMU), or gone.
    }
    if (ours !== undefined) fs.closeSync(ours);
  }
  return undefined;
}

export class RamFile {
  /** Reads served, for tests and benchmarks. */
  reads = 0;

  constructor(
    private readonly fd: number,
    readonly ranges: readonly RamRange[],
  ) {}

  /** `length` bytes of guest-physical memory at `pa`, or undefined unless all of them are in one RAM range. */
  read(pa: bigint, length: number): Buffer | undefined {
    const r = this.ranges.find((x) => pa >= x.start && pa + BigInt(length) <= x.end);
    if (!r || length <= 0) return undefined;
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    try {
      while (done < length) {
        const n = fs.readSync(this.fd, out, done, length - done, Number(r.offset + pa - r.start) + done);
        if (n <= 0) return undefined;
        done += n;
      }
    } catch {
      return undefined;
    }
    this.reads++;
    return out;
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // Already closed.
    }
  }
}
