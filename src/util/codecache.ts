/**
 * Load a bundle with V8's code cache, for the processes that start once per use and where
 * start-up is the cost the user waits for (the kernel-log language server, `qkd decode`):
 * compiling a megabyte of bundle is a third of their start. The bytecode V8 made on the first
 * run is kept in the user's cache folder (0700), keyed by the bundle's size and mtime, and
 * V8 checks it against the source before it uses it (a stale or foreign cache is rejected,
 * and the bundle compiles as usual). Node 22 has module.enableCompileCache(); Node 18 and 20
 * do not, so this is the same thing by hand.
 */
import * as fs from 'node:fs';
import Module = require('node:module');
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

interface ModuleInternals {
  wrap(source: string): string;
  _nodeModulePaths(dir: string): string[];
}

/**
 * What a program run through requireCached emits on `process` once it has done its first
 * real work (the language server: its first diagnostics), so the cache is written then, with
 * the functions that work compiled: an editor may end the server before any timer fires.
 */
export const CODE_CACHE_WARM = 'qkd-code-cache-warm';

/** Where the bytecode of `file` is kept. */
function cacheFile(file: string, st: fs.Stats): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'qemu-kernel-debug', 'v8', `${path.basename(file)}-${st.size}-${Math.round(st.mtimeMs)}.bin`);
}

/**
 * Run `file` (a CommonJS bundle) as `require` would, using and then refreshing its code
 * cache. The cache is written `saveAt` ms after start (a server), or as the process exits (a
 * command, or a server that ends sooner), so it holds the functions the run compiled, not
 * only the top level.
 */
export function requireCached(file: string, saveAt: number | 'exit'): unknown {
  const st = fs.statSync(file);
  const cache = cacheFile(file, st);
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cache);
  } catch {
    // First run of this bundle: V8 compiles it, and the cache is made below.
  }
  const M = Module as unknown as ModuleInternals & typeof Module;
  const script = new vm.Script(M.wrap(fs.readFileSync(file, 'utf8')), { filename: file, cachedData });
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = M._nodeModulePaths(path.dirname(file));
  const fn = script.runInThisContext() as (exports: unknown, require: NodeRequire, module: Module, filename: string, dirname: string) => void;
  if (!cachedData || script.cachedDataRejected) {
    let saved = false;
    const once = (): void => {
      if (!saved) save(cache, script);
      saved = true;
    };
    process.once('exit', once);
    process.once(CODE_CACHE_WARM, once);
    if (saveAt !== 'exit') setTimeout(once, saveAt).unref();
  }
  fn.call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
  mod.loaded = true;
  return mod.exports;
}

function save(cache: string, script: vm.Script): void {
  try {
    fs.mkdirSync(path.dirname(cache), { recursive: true, mode: 0o700 });
    // Older bundles' caches go: one per bundle is all that is ever read.
    const prefix = path.basename(cache).replace(/-\d+-\d+\.bin$/, '-');
    for (const f of fs.readdirSync(path.dirname(cache))) if (f.startsWith(prefix) && f !== path.basename(cache)) fs.rmSync(path.join(path.dirname(cache), f), { force: true });
    const tmp = `${cache}.${process.pid}`;
    fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
    fs.renameSync(tmp, cache);
  } catch {
    // A cache that cannot be written only costs the next start its compile.
  }
}
