/**
 * The kernel's initramfs list format (usr/gen_init_cpio.c), read as gen_init_cpio reads it,
 * with what it leaves unsaid made into problems with a line and column: a wrong field count,
 * a mode that is no octal number, a source file that is not there, a type it does not know
 * (gen_init_cpio only prints those and goes on), a name given twice, a parent folder never
 * made. Used by the `initramfs` launch field and by the editor's diagnostics for such lists.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type ListEntry =
  | { type: 'file'; line: number; name: string; location: string; source: string; mode: number; uid: number; gid: number; links: string[] }
  | { type: 'dir' | 'pipe' | 'sock'; line: number; name: string; mode: number; uid: number; gid: number }
  | { type: 'nod'; line: number; name: string; mode: number; uid: number; gid: number; dev: 'b' | 'c'; major: number; minor: number }
  | { type: 'slink'; line: number; name: string; target: string; mode: number; uid: number; gid: number };

export interface ListProblem {
  /** 1-based, as editors and compilers print them. */
  line: number;
  column: number;
  endColumn: number;
  severity: 'error' | 'warning';
  message: string;
}

export const LIST_TYPES = ['file', 'dir', 'nod', 'slink', 'pipe', 'sock'] as const;

/** Each type's fields after the type word, as gen_init_cpio's usage text names them. */
export const LIST_FIELDS: Record<(typeof LIST_TYPES)[number], string[]> = {
  file: ['name', 'location', 'mode', 'uid', 'gid'],
  dir: ['name', 'mode', 'uid', 'gid'],
  nod: ['name', 'mode', 'uid', 'gid', 'dev_type', 'maj', 'min'],
  slink: ['name', 'target', 'mode', 'uid', 'gid'],
  pipe: ['name', 'mode', 'uid', 'gid'],
  sock: ['name', 'mode', 'uid', 'gid'],
};

interface Word {
  text: string;
  /** 1-based column of its first character. */
  column: number;
}

export interface ParseOptions {
  /** Where a relative `location` is found: the list file's folder. */
  baseDir: string;
  /** `${VAR}` in a location comes from here (gen_init_cpio's getenv). */
  env?: Record<string, string | undefined>;
  /** Whether a source file is there (tests pass their own); default: a readable regular file. */
  isFile?: (p: string) => boolean;
}

export interface ParsedList {
  entries: ListEntry[];
  problems: ListProblem[];
  /** The variables the locations used, with their values (part of what a build depends on). */
  variables: Map<string, string | undefined>;
}

export function parseCpioList(text: string, opts: ParseOptions): ParsedList {
  const entries: ListEntry[] = [];
  const problems: ListProblem[] = [];
  const variables = new Map<string, string | undefined>();
  const env = opts.env ?? process.env;
  const isFile = opts.isFile ?? regularFile;
  const names = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i].replace(/\r$/, '');
    if (raw.startsWith('#')) continue;
    const words = split(raw);
    if (!words.length) continue;
    const problem = (w: Word | undefined, message: string, severity: ListProblem['severity'] = 'error'): void => {
      const column = w?.column ?? raw.length + 1;
      problems.push({ line: lineNo, column, endColumn: w ? column + w.text.length : column + 1, severity, message });
    };
    const [typeWord, ...args] = words;
    const type = typeWord.text as (typeof LIST_TYPES)[number];
    const fields = LIST_FIELDS[type];
    if (!fields) {
      problem(typeWord, `unknown type '${typeWord.text}': a line starts with ${LIST_TYPES.join(', ')} (or # for a comment)`);
      continue;
    }
    if (args.length < fields.length || (type !== 'file' && args.length > fields.length)) {
      const at = args.length < fields.length ? undefined : args[fields.length];
      const want = `${type} ${fields.map((f) => `<${f}>`).join(' ')}${type === 'file' ? ' [<hard link>...]' : ''}`;
      problem(at, args.length < fields.length ? `${type} needs ${fields.length} fields after it, this line has ${args.length}: ${want}` : `${type} takes ${fields.length} fields, this line has ${args.length}: ${want}`);
      continue;
    }
    const field = (name: string): Word => args[fields.indexOf(name)];
    let bad = false;
    const octal = (w: Word): number => {
      if (!/^[0-7]+$/.test(w.text) || parseInt(w.text, 8) > 0o7777) {
        problem(w, `mode '${w.text}' is not an octal permission mode (such as 0755, 0644)`);
        bad = true;
        return 0;
      }
      return parseInt(w.text, 8);
    };
    const decimal = (w: Word, what: string): number => {
      if (!/^\d+$/.test(w.text) || Number(w.text) > 0xffff_ffff) {
        problem(w, `${what} '${w.text}' is not a decimal number`);
        bad = true;
        return 0;
      }
      return Number(w.text);
    };
    const nameWord = field('name');
    const name = nameWord.text.replace(/^\//, '');
    const common = { line: lineNo, name, mode: octal(field('mode')), uid: decimal(field('uid'), 'uid'), gid: decimal(field('gid'), 'gid') };
    let entry: ListEntry | undefined;
    switch (type) {
      case 'file': {
        const loc = field('location');
        const location = expand(loc.text, env, variables);
        const source = path.resolve(opts.baseDir, location);
        if (!isFile(source)) {
          const unset = [...loc.text.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]).filter((v) => env[v] === undefined);
          const how = location === loc.text ? '' : `${loc.text} is ${location}${unset.length ? ` (${unset.join(', ')} ${unset.length > 1 ? 'are' : 'is'} not set)` : ''}: `;
          problem(loc, `${how}no such file${path.isAbsolute(location) ? '' : ` (relative to ${opts.baseDir})`}`);
          bad = true;
        }
        entry = { ...common, type, location, source, links: args.slice(fields.length).map((w) => w.text.replace(/^\//, '')) };
        break;
      }
      case 'nod': {
        const devWord = field('dev_type');
        if (devWord.text !== 'b' && devWord.text !== 'c') {
          problem(devWord, `device type '${devWord.text}' is neither b (block) nor c (character)`);
          bad = true;
        }
        entry = { ...common, type, dev: devWord.text === 'b' ? 'b' : 'c', major: decimal(field('maj'), 'major number'), minor: decimal(field('min'), 'minor number') };
        break;
      }
      case 'slink':
        entry = { ...common, type, target: field('target').text };
        break;
      default:
        entry = { ...common, type };
    }
    if (bad) continue;
    for (const [n, w] of [[name, nameWord], ...(entry.type === 'file' ? entry.links.map((l, k) => [l, args[fields.length + k]] as const) : [])] as Array<[string, Word]>) {
      const before = names.get(n);
      if (before !== undefined) problem(w, `'${n}' is already in the archive (line ${before}); the kernel keeps the later one`, 'warning');
      const parent = path.posix.dirname(n);
      if (parent !== '.' && parent !== '/' && !names.has(parent)) problem(w, `'${parent}' is not made by an earlier dir line: the kernel cannot create '${n}' inside it`, 'warning');
      names.set(n, lineNo);
    }
    entries.push(entry);
  }
  return { entries, problems, variables };
}

/** Words split on spaces and tabs, with their columns. */
function split(line: string): Word[] {
  const out: Word[] = [];
  const re = /[^ \t]+/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push({ text: m[0], column: m.index + 1 });
  return out;
}

/** gen_init_cpio's cpio_replace_env: `${VAR}` becomes its value, or nothing when unset. */
function expand(location: string, env: Record<string, string | undefined>, used: Map<string, string | undefined>): string {
  return location.replace(/\$\{([^}]*)\}/g, (_m, name: string) => {
    used.set(name, env[name]);
    return env[name] ?? '';
  });
}

function regularFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
