/**
 * Paths in DWARF are where the kernel was compiled (`/build/linux-6.1/kernel/fork.c`, or a
 * relative name under the unit's comp_dir); the editor has the tree somewhere else. Map both
 * ways: prefixes from the `sourceMap` launch field first, then the kernel tree found on disk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface SourceMapOptions {
  /** compile-time prefix → local prefix, from the launch config. */
  sourceMap?: Record<string, string>;
  /** Local kernel trees to try (the workspace, the vmlinux's directory, the sample's source). */
  localRoots?: string[];
}

/** A directory is a kernel tree when it has the files every Linux tree has. */
export function isKernelTree(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'Kbuild')) && fs.existsSync(path.join(dir, 'kernel', 'fork.c')) && fs.existsSync(path.join(dir, 'Makefile'));
}

export class SourceMapper {
  private readonly pairs: Array<[string, string]>;
  private readonly roots: string[];
  /** compile-time tree root → local root, learned when a DWARF path is first found under a local root. */
  private readonly learned = new Map<string, string>();
  private readonly existsCache = new Map<string, boolean>();

  constructor(opts: SourceMapOptions = {}) {
    this.pairs = Object.entries(opts.sourceMap ?? {})
      .map(([from, to]): [string, string] => [trimSlash(path.posix.normalize(from)), trimSlash(path.resolve(to))])
      .sort((a, b) => b[0].length - a[0].length);
    this.roots = [...new Set((opts.localRoots ?? []).filter((r) => r && isKernelTree(r)).map((r) => path.resolve(r)))];
  }

  get localRoots(): readonly string[] {
    return this.roots;
  }

  private exists(p: string): boolean {
    let v = this.existsCache.get(p);
    if (v === undefined) {
      v = fs.existsSync(p);
      this.existsCache.set(p, v);
    }
    return v;
  }

  /** DWARF path → a path on this machine (the DWARF path itself when nothing better exists). */
  toLocal(dwarfPath: string): string {
    const p = path.posix.normalize(dwarfPath);
    for (const [from, to] of this.pairs) if (p === from || p.startsWith(from + '/')) return to + p.slice(from.length);
    if (this.exists(p)) return p;
    for (const [from, to] of this.learned) if (p.startsWith(from + '/')) return to + p.slice(from.length);
    // Find the longest suffix of the compile-time path that exists under a local kernel tree.
    const parts = p.split('/').filter(Boolean);
    for (const root of this.roots) {
      for (let i = 0; i < parts.length - 1; i++) {
        const rel = parts.slice(i).join('/');
        const cand = path.join(root, rel);
        if (this.exists(cand)) {
          const prefix = '/' + parts.slice(0, i).join('/');
          if (i > 0 && p.startsWith('/')) this.learned.set(prefix, root);
          return cand;
        }
      }
    }
    return p;
  }

  /**
   * Whether a DWARF path names the same file as a client path. Exact after mapping, or the
   * client path relative to a local tree equals the DWARF path's tail (a vmlinux built
   * elsewhere, with no sourceMap entry).
   */
  matcher(clientPath: string): (dwarfPath: string) => boolean {
    const local = path.resolve(clientPath);
    const rels = this.roots.filter((r) => local.startsWith(r + '/')).map((r) => local.slice(r.length + 1));
    const base = path.basename(local);
    return (dwarfPath: string): boolean => {
      if (!dwarfPath.endsWith(base)) return false;
      const p = path.posix.normalize(dwarfPath);
      if (p === local) return true;
      if (rels.some((rel) => p === rel || p.endsWith('/' + rel))) return true;
      return this.toLocal(p) === local;
    };
  }
}

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}
