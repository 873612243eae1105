/**
 * A newc archive from a parsed list (cpiolist.ts), byte for byte what the kernel's
 * usr/gen_init_cpio writes for the same list given `-t <defaultMtime>`: inodes from 721,
 * upper-case hex, device 3:1, a symlink's target with its NUL, a file's data on its last
 * hard link, the trailer padded to 512 bytes. No root is needed for device nodes: they are
 * only headers.
 */
import * as fs from 'node:fs';
import type { ListEntry } from './cpiolist';

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const S_IFSOCK = 0o140000;

export interface SourceFile {
  data: Buffer;
  /** Seconds since the epoch, as the archive records it (gen_init_cpio takes the file's own). */
  mtime: number;
}

export function readSource(file: string): SourceFile {
  const data = fs.readFileSync(file);
  const mtime = Math.min(Math.floor(fs.statSync(file).mtimeMs / 1000), 0xffff_ffff);
  return { data, mtime };
}

interface Header {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  /** The "filesystem" the entry is on: gen_init_cpio says 3:1 for all but the trailer. */
  dev?: [number, number];
  rdevmajor?: number;
  rdevminor?: number;
  name: string;
}

class Writer {
  readonly parts: Buffer[] = [];
  offset = 0;

  push(b: Buffer): void {
    this.parts.push(b);
    this.offset += b.length;
  }

  pad(to = 4): void {
    const n = (to - (this.offset % to)) % to;
    if (n) this.push(Buffer.alloc(n));
  }

  header(h: Header): void {
    const hex = (n: number): string => (n >>> 0).toString(16).toUpperCase().padStart(8, '0');
    const name = Buffer.from(h.name + '\0', 'utf8');
    const [major, minor] = h.dev ?? [3, 1];
    const fields = [h.ino, h.mode, h.uid, h.gid, h.nlink, h.mtime, h.size, major, minor, h.rdevmajor ?? 0, h.rdevminor ?? 0, name.length, 0];
    this.push(Buffer.from('070701' + fields.map(hex).join(''), 'latin1'));
    this.push(name);
    this.pad();
  }
}

export function writeListArchive(entries: readonly ListEntry[], defaultMtime: number, read: (source: string) => SourceFile = readSource): Buffer {
  const w = new Writer();
  let ino = 721;
  for (const e of entries) {
    const base = { uid: e.uid, gid: e.gid, mtime: defaultMtime };
    switch (e.type) {
      case 'file': {
        const src = read(e.source);
        const names = [e.name, ...e.links];
        names.forEach((name, i) => {
          const last = i === names.length - 1;
          w.header({ ...base, ino, mode: S_IFREG | e.mode, nlink: names.length, mtime: src.mtime, size: last ? src.data.length : 0, name });
          if (last) w.push(src.data);
          w.pad();
        });
        ino++;
        break;
      }
      case 'slink': {
        const target = Buffer.from(e.target + '\0', 'utf8');
        w.header({ ...base, ino: ino++, mode: S_IFLNK | e.mode, nlink: 1, size: target.length, name: e.name });
        w.push(target);
        w.pad();
        break;
      }
      case 'nod':
        w.header({ ...base, ino: ino++, mode: (e.dev === 'b' ? S_IFBLK : S_IFCHR) | e.mode, nlink: 1, size: 0, rdevmajor: e.major, rdevminor: e.minor, name: e.name });
        break;
      default: {
        const kind = e.type === 'dir' ? S_IFDIR : e.type === 'pipe' ? S_IFIFO : S_IFSOCK;
        w.header({ ...base, ino: ino++, mode: kind | e.mode, nlink: 2, size: 0, name: e.name });
      }
    }
  }
  w.header({ ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, size: 0, dev: [0, 0], name: 'TRAILER!!!' });
  w.pad(512);
  return Buffer.concat(w.parts);
}
