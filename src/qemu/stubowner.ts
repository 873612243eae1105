/**
 * The QEMU process behind a gdbstub someone else started, found from the socket it listens on
 * (/proc/net/unix or /proc/net/tcp{,6} give the listening socket's inode; the process holding
 * that inode in /proc/<pid>/fd is the owner). Only processes of this user can be looked into,
 * which is also who may read their memory. With it, an attach reads guest RAM directly when
 * that QEMU keeps it in a shared memfd (`-object memory-backend-memfd,share=on`).
 */
import * as fs from 'node:fs';
import { openBackendMemfd, parseMtreeRam, RamFile, type RamRange } from './guestram';

/** Where a gdbstub listens (the shape of rsp's target, which this layer does not import). */
export type StubAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

function listeningInode(target: StubAddress): string | undefined {
  if (target.kind === 'unix') {
    const want = new Set([target.path, fs.realpathSync.native(target.path)]);
    for (const line of readLines('/proc/net/unix').slice(1)) {
      const f = line.trim().split(/\s+/);
      // Num RefCount Protocol Flags Type St Inode Path; a listener has __SO_ACCEPTCON (0x10000) in Flags.
      if (f.length >= 8 && want.has(f[7]) && (parseInt(f[3], 16) & 0x10000) !== 0) return f[6];
    }
    return undefined;
  }
  const port = target.port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readLines(file).slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode (field 9); st 0A is LISTEN.
      if (f.length >= 10 && f[3] === '0A' && f[1].endsWith(`:${port}`)) return f[9];
    }
  }
  return undefined;
}

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** The pid of the QEMU listening at `target`, or undefined when it is not a process of ours we can see. */
export function stubOwner(target: StubAddress): number | undefined {
  let inode: string | undefined;
  try {
    inode = listeningInode(target);
  } catch {
    return undefined;
  }
  if (!inode || inode === '0') return undefined;
  const link = `socket:[${inode}]`;
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let l: string;
      try {
        l = fs.readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        continue;
      }
      if (l !== link) continue;
      const comm = readLines(`/proc/${p}/comm`)[0] ?? '';
      return comm.startsWith('qemu-system') ? Number(p) : undefined;
    }
  }
  return undefined;
}

/**
 * Guest RAM of someone else's QEMU, when it is unambiguous: one RAM region in the system
 * address space (`info mtree -f`) and one backend memfd large enough for it.
 */
export function openAttachedRam(pid: number, mtree: string): RamFile | undefined {
  // Several views list the same regions; a second name means a second RAM block (NUMA, a second backend).
  const first = mtree.split(/^FlatView #\d+/m).find((v) => /, ram\): /.test(v)) ?? '';
  const inFirst = new Set([...first.matchAll(/^\s*[0-9a-f]+-[0-9a-f]+ \(prio -?\d+, ram\): (\S+)/gm)].map((m) => m[1]));
  if (inFirst.size !== 1) return undefined;
  const ranges: RamRange[] = parseMtreeRam(mtree, [...inFirst][0]);
  const fd = ranges.length ? openBackendMemfd(pid, ranges, true) : undefined;
  return fd !== undefined ? new RamFile(fd, ranges) : undefined;
}
