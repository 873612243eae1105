/**
 * The host file of a module the guest loaded: the search (modsearch.ts), reading and identifying
 * files (modident.ts), and the choice among several files of the same module.
 */
import { ModuleFileError, ModuleIdentity, moduleIdentity, readModuleFile } from './modident';
import { ModuleCandidate, ModuleFileIndex, normalizeModuleName } from './modsearch';

export { decompressModule, ModuleFileError, moduleIdentity, readModuleFile } from './modident';
export type { ModuleIdentity } from './modident';
export { defaultModuleDirs, ModuleFileIndex, normalizeModuleName, parseModuleFileName } from './modsearch';
export type { ModuleCandidate, ModuleCompression, ModuleDirsInput, ModuleIndexOptions, ModuleIndexStats } from './modsearch';

/** What the guest says about a loaded module. */
export interface ModuleWanted {
  name: string;
  /** Lower- or upper-case hex, from the live module's .note.gnu.build-id. */
  buildId?: string;
  srcversion?: string;
}

export interface ModuleFile {
  candidate: ModuleCandidate;
  /** Decompressed. */
  bytes: Buffer;
  identity: ModuleIdentity;
  /** The strongest evidence that this file is the loaded build: 'name' alone means nothing could be compared. */
  matchedBy: 'build-id' | 'srcversion' | 'name';
}

export interface ModuleLookup {
  file?: ModuleFile;
  /** Files of that name that are not it, each with why: for the "no symbols for X" message. */
  rejected: { path: string; reason: string }[];
  /** The folders searched (ModuleFileIndex.searched). */
  searched: string[];
}

/**
 * The file for a loaded module. Every file of that name is read; one that contradicts the guest
 * (another build ID or srcversion, another .modinfo name) is rejected. Among the rest, a proven
 * match beats a name-only one, then a file with DWARF beats one without (Debian's /lib/modules
 * copy is stripped and its /usr/lib/debug twin is not), then search order decides.
 */
export async function findModuleFile(index: ModuleFileIndex, want: ModuleWanted): Promise<ModuleLookup> {
  const rejected: ModuleLookup['rejected'] = [];
  let best: ModuleFile | undefined;
  for (const candidate of await index.find(want.name)) {
    let bytes: Buffer;
    let identity: ModuleIdentity;
    try {
      bytes = await readModuleFile(candidate);
      identity = moduleIdentity(bytes, candidate.path);
    } catch (e) {
      if (!(e instanceof ModuleFileError)) throw e;
      rejected.push({ path: candidate.path, reason: e.message.startsWith(`${candidate.path}: `) ? e.message.slice(candidate.path.length + 2) : e.message });
      continue;
    }
    const verdict = judge(want, identity);
    if (typeof verdict === 'object') {
      rejected.push({ path: candidate.path, reason: verdict.reason });
      continue;
    }
    const file: ModuleFile = { candidate, bytes, identity, matchedBy: verdict };
    if (!best || rank(file) > rank(best)) best = file;
  }
  return { ...(best ? { file: best } : {}), rejected, searched: index.searched() };
}

function judge(want: ModuleWanted, id: ModuleIdentity): ModuleFile['matchedBy'] | { reason: string } {
  if (id.name !== undefined && normalizeModuleName(id.name) !== normalizeModuleName(want.name)) return { reason: `it is module ${id.name}, not ${want.name}` };
  if (want.buildId && id.buildId) {
    return want.buildId.toLowerCase() === id.buildId ? 'build-id' : { reason: `build ID ${id.buildId} is not the loaded module's ${want.buildId.toLowerCase()} (another build)` };
  }
  if (want.srcversion && id.srcversion) {
    return want.srcversion === id.srcversion ? 'srcversion' : { reason: `srcversion ${id.srcversion} is not the loaded module's ${want.srcversion} (built from other sources)` };
  }
  return 'name';
}

/** Higher is better; equal ranks keep the earlier file. */
function rank(f: ModuleFile): number {
  return (f.matchedBy === 'name' ? 0 : 2) + (f.identity.hasDebugInfo ? 1 : 0);
}
