/**
 * Real inputs for the fuzz suites: small programs compiled here by gcc (and the cross gccs)
 * with each DWARF flavour a kernel build may use, read back as sections, and rebuilt as
 * in-memory ELF images after a section has been mutated. Rebuilding (rather than mutating the
 * file in place) keeps section sizes and offsets consistent, so mutations reach the DWARF
 * parsers instead of stopping at the ELF reader.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ElfFile, SHT_NOBITS } from '../../src/symbols/elf';

const SOURCE = `
#include <stddef.h>
struct node { struct node *next, *prev; int key; unsigned flag:3; unsigned mode:5; char name[16]; };
typedef struct node node_t;
enum color { RED, GREEN = 5, BLUE = -1 };
union u { int i; float f; char c[4]; };
static volatile int counter;
const char *const names[] = { "a", "bb", "ccc" };
int matrix[3][4];
typedef int (*cmp_fn)(const void *, const void *);
static inline int sq(int x) { return x * x; }
__attribute__((noinline)) int sum_list(node_t *n, cmp_fn cmp) {
  int s = 0;
  for (; n; n = n->next) { s += sq(n->key) + n->flag; if (cmp && cmp(n, n->prev) > 0) s -= n->mode; }
  return s;
}
__attribute__((noinline)) static int fold(int *a, int n, enum color c) {
  int acc = c;
  for (int i = 0; i < n; i++) { int t = a[i] * 3; if (t & 1) acc ^= sq(t); else acc += t; }
  return acc;
}
int walk(union u *v, int depth) {
  if (depth <= 0) return v->i;
  { int local = depth * 2; v->c[0] ^= local; return walk(v, depth - 1) + local; }
}
int main(int argc, char **argv) {
  node_t a = { 0 }, b = { &a, 0, 7, 1, 2, "x" };
  union u v = { argc };
  (void)argv;
  counter += sum_list(&b, 0) + fold(matrix[1], argc, GREEN) + walk(&v, argc);
  return counter + names[argc & 1][0];
}
`;

export interface Flavour {
  name: string;
  cc: string;
  args: string[];
  /**
   * -gsplit-dwarf: the .dwo's split unit (strx names, str_offsets, loclists by index) is read
   * with the executable's .debug_addr, its sections renamed without the .dwo suffix.
   */
  split?: boolean;
}

/** Each DWARF shape the parsers meet: versions 2-5, 64-bit DWARF, .debug_frame and .eh_frame, three arches. */
export const FLAVOURS: Flavour[] = [
  { name: 'x86_64 DWARF 5 -O2', cc: 'gcc', args: ['-O2', '-g', '-gdwarf-5'] },
  { name: 'x86_64 DWARF 4 -O2', cc: 'gcc', args: ['-O2', '-g', '-gdwarf-4'] },
  { name: 'x86_64 DWARF 4 -O0 .debug_frame', cc: 'gcc', args: ['-O0', '-g', '-gdwarf-4', '-fno-asynchronous-unwind-tables'] },
  { name: 'x86_64 DWARF 5 64-bit -O2', cc: 'gcc', args: ['-O2', '-g', '-gdwarf-5', '-gdwarf64', '-fno-asynchronous-unwind-tables'] },
  { name: 'x86_64 DWARF 3 -O1', cc: 'gcc', args: ['-O1', '-g', '-gdwarf-3'] },
  { name: 'x86_64 DWARF 2 -O0', cc: 'gcc', args: ['-O0', '-g', '-gdwarf-2', '-gstrict-dwarf'] },
  { name: 'x86_64 DWARF 5 split unit -O2', cc: 'gcc', args: ['-O2', '-g', '-gdwarf-5', '-gsplit-dwarf'], split: true },
  // The program calls nothing, so the cross builds link with no libc (none may be installed for them).
  { name: 'aarch64 DWARF 5 -O2', cc: 'aarch64-linux-gnu-gcc', args: ['-O2', '-g', '-nostdlib', '-static', '-Wl,-e,main', '-mbranch-protection=standard'] },
  { name: 'riscv64 DWARF 5 -O2 .debug_frame', cc: 'riscv64-linux-gnu-gcc', args: ['-O2', '-g', '-nostdlib', '-static', '-Wl,-e,main', '-fno-asynchronous-unwind-tables'] },
];

export interface Compiled {
  flavour: Flavour;
  file: string;
  bytes: Buffer;
  dwo?: string;
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Build (or take from the cache in the temp dir) every flavour whose compiler is installed. */
export function compileCorpus(): Compiled[] {
  const dir = path.join(os.tmpdir(), 'qkd-fuzz-corpus');
  fs.mkdirSync(dir, { recursive: true });
  const src = path.join(dir, 'prog.c');
  if (!fs.existsSync(src) || fs.readFileSync(src, 'utf8') !== SOURCE) fs.writeFileSync(src, SOURCE);
  const out: Compiled[] = [];
  for (const f of FLAVOURS) {
    if (!hasCommand(f.cc)) continue;
    const key = crypto.createHash('sha256').update(SOURCE + f.cc + f.args.join(' ')).digest('hex').slice(0, 12);
    // Each flavour builds in a directory of its own: -gsplit-dwarf names its .dwo after the source.
    const fdir = path.join(dir, key);
    const file = path.join(fdir, 'prog');
    if (!fs.existsSync(file)) {
      fs.rmSync(fdir, { recursive: true, force: true });
      const tmp = `${fdir}.${process.pid}.tmp`;
      fs.mkdirSync(tmp, { recursive: true });
      execFileSync(f.cc, [...f.args, '-o', 'prog', src], { stdio: 'pipe', cwd: tmp });
      fs.renameSync(tmp, fdir);
    }
    const dwo = fs.readdirSync(fdir).find((n) => n.endsWith('.dwo'));
    out.push({ flavour: f, file, bytes: fs.readFileSync(file), dwo: f.split && dwo ? path.join(fdir, dwo) : undefined });
  }
  return out;
}

/** One section as rebuilt into an image: data for the bytes it has, size for SHT_NOBITS. */
export interface Section {
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  link: string | undefined;
  data: Buffer;
  size: number;
}

export function readSections(file: string): { machine: number; sections: Section[] } {
  const elf = ElfFile.open(file);
  try {
    const sections = elf.sections.slice(1).map((s) => ({
      name: s.name,
      type: s.type,
      flags: s.flags,
      addr: s.addr,
      link: s.link ? elf.sections[s.link]?.name : undefined,
      data: s.type === SHT_NOBITS ? Buffer.alloc(0) : elf.sectionData(s),
      size: s.size,
    }));
    return { machine: elf.machine, sections };
  } finally {
    elf.close();
  }
}

/** A flavour's sections as the parsers will see them (a split unit merged with its executable's .debug_addr). */
export function corpusSections(c: Compiled): { machine: number; sections: Section[] } {
  const main = readSections(c.file);
  if (!c.dwo) return main;
  const dwo = readSections(c.dwo).sections.filter((s) => s.name.endsWith('.dwo')).map((s) => ({ ...s, name: s.name.slice(0, -4) }));
  const names = new Set(dwo.map((s) => s.name));
  return { machine: main.machine, sections: [...main.sections.filter((s) => !s.name.startsWith('.debug') || (s.name === '.debug_addr' && !names.has(s.name))), ...dwo] };
}

/** A little-endian ELF64 image holding the sections in order (plus .shstrtab), links resolved by name. */
export function buildElf(machine: number, sections: readonly Section[]): Buffer {
  const all = sections.filter((s) => s.name !== '.shstrtab');
  const names = ['', '.shstrtab', ...all.map((s) => s.name)];
  const nameOff: number[] = [];
  let strLen = 0;
  for (const n of names) {
    nameOff.push(strLen);
    strLen += Buffer.byteLength(n, 'latin1') + 1;
  }
  const shstr = Buffer.from(names.join('\0') + '\0', 'latin1');
  const datas = [Buffer.alloc(0), shstr, ...all.map((s) => (s.type === SHT_NOBITS ? Buffer.alloc(0) : s.data))];
  const offs: number[] = [];
  let at = 64;
  for (const d of datas) {
    at = (at + 7) & ~7;
    offs.push(at);
    at += d.length;
  }
  const shoff = (at + 7) & ~7;
  const out = Buffer.alloc(shoff + 64 * datas.length);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  for (const [o, v] of [[16, 2], [18, machine], [20, 1], [52, 64], [58, 64], [60, datas.length], [62, 1]]) out.writeUInt16LE(v, o);
  out.writeUInt32LE(1, 20);
  out.writeBigUInt64LE(BigInt(shoff), 40);
  const index = new Map(names.map((n, i) => [n, i]));
  datas.forEach((d, i) => {
    d.copy(out, offs[i]);
    if (i === 0) return;
    const s = i === 1 ? undefined : all[i - 2];
    const sh = shoff + 64 * i;
    out.writeUInt32LE(nameOff[i], sh);
    out.writeUInt32LE(s ? s.type : 3, sh + 4);
    out.writeBigUInt64LE(s ? s.flags : 0n, sh + 8);
    out.writeBigUInt64LE(s ? s.addr : 0n, sh + 16);
    out.writeBigUInt64LE(BigInt(offs[i]), sh + 24);
    out.writeBigUInt64LE(BigInt(s && s.type === SHT_NOBITS ? s.size : d.length), sh + 32);
    out.writeUInt32LE(s?.link !== undefined ? (index.get(s.link) ?? 0) : 0, sh + 40);
    out.writeBigUInt64LE(s?.name === '.symtab' ? 24n : 0n, sh + 56);
    out.writeBigUInt64LE(1n, sh + 48);
  });
  return out;
}

/** The sections with one replaced (by name); the others are shared, not copied. */
export function withSection(sections: readonly Section[], name: string, data: Buffer): Section[] {
  return sections.map((s) => (s.name === name ? { ...s, data, size: data.length } : s));
}
