/** Only extension/ and ui/ may import vscode: the engine, adapter and CLI run in plain Node. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from '../support/env';

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** Relative imports of a file (type-only ones too: they tie modules together just the same), resolved to files. */
function importsOf(file: string, known: Set<string>): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]/g)) {
    const base = path.resolve(path.dirname(file), m[1]);
    const hit = [`${base}.ts`, path.join(base, 'index.ts')].find((c) => known.has(c));
    if (hit) out.push(hit);
  }
  return out;
}

/** Every import cycle among the files (Tarjan's strongly connected components of two or more). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) found.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/**
 * Which layer may import which (DESIGN's shape): lower layers never reach up, so the engine
 * runs without the adapter, and the adapter without any editor.
 */
const ALLOWED: Record<string, string[]> = {
  util: [],
  rsp: ['util'],
  symbols: ['util'],
  arch: ['rsp', 'symbols', 'util'],
  guest: ['util'],
  config: ['arch', 'rsp', 'util'],
  qemu: ['arch', 'config', 'util'],
  kernel: ['arch', 'rsp', 'symbols', 'util'],
  engine: ['arch', 'config', 'kernel', 'rsp', 'symbols', 'util'],
  adapter: ['arch', 'config', 'engine', 'guest', 'kernel', 'qemu', 'rsp', 'symbols', 'util'],
  // The language server decodes with the engine's decoder, the one `qkd decode` uses.
  lsp: ['config', 'engine', 'kernel', 'symbols', 'util'],
  cli: ['adapter', 'arch', 'config', 'engine', 'guest', 'qemu', 'rsp', 'symbols', 'util'],
  ui: ['adapter', 'config', 'util'],
  // kernel: the log's text formats (logrefs.ts) for the Guest Console's links; lsp: the protocol's names (protocol.ts).
  extension: ['adapter', 'arch', 'config', 'guest', 'kernel', 'lsp', 'qemu', 'ui', 'util'],
};

describe('layering', () => {
  const src = path.join(REPO, 'src');
  const files = tsFiles(src);

  it('finds the sources', () => assert.ok(files.length > 20));

  it('keeps vscode imports inside src/extension and src/ui', () => {
    const offenders = files.filter((f) => {
      const rel = path.relative(src, f);
      if (/^(extension|ui)\//.test(rel)) return false;
      return /^import(?! type)[^;]*from ['"]vscode['"]|require\(['"]vscode['"]\)/m.test(fs.readFileSync(f, 'utf8'));
    });
    assert.deepEqual(offenders, []);
  });

  it('keeps raw packet strings inside src/rsp', () => {
    const offenders = files.filter((f) => !f.includes(`${path.sep}rsp${path.sep}`) && /\b(request|command|resume)\(\s*['"`](qSupported|qXfer|[gmMpPzZcs]\b|vCont|Hg|qfThreadInfo)/.test(fs.readFileSync(f, 'utf8')));
    assert.deepEqual(offenders.map((f) => path.relative(src, f)), []);
  });

  const known = new Set(files);
  const graph = new Map(files.map((f) => [f, importsOf(f, known)]));
  const layer = (f: string): string => path.relative(src, f).split(path.sep)[0].replace(/\.ts$/, '');

  it('has no import cycle among the source files', () => {
    assert.deepEqual(cycles(graph).map((c) => c.map((f) => path.relative(src, f))), []);
  });

  it('imports only in the allowed directions between layers', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const from = layer(f);
      for (const d of deps) {
        const to = layer(d);
        if (to === from) continue;
        const allowed = ALLOWED[from];
        if (!allowed) bad.push(`${path.relative(src, f)}: layer '${from}' has no rule in ALLOWED`);
        else if (!allowed.includes(to)) bad.push(`${path.relative(src, f)} imports ${path.relative(src, d)} (${from} → ${to})`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('the cycle check finds a cycle when there is one', () => {
    const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
    assert.deepEqual(cycles(g), [['a', 'b', 'c']]);
  });

  it('keeps Debugger, the engine\'s front, small', () => {
    assert.ok(fs.readFileSync(path.join(src, 'engine', 'debugger.ts'), 'utf8').split('\n').length < 300);
  });

  it('keeps source files under about 600 lines', () => {
    const big = files.filter((f) => fs.readFileSync(f, 'utf8').split('\n').length > 600).map((f) => path.relative(src, f));
    assert.deepEqual(big, []);
  });
});
