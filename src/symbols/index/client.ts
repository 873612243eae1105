/**
 * The adapter's side of the symbol index. Whole-file indexes are built in a worker thread so
 * the DAP connection stays responsive while a distribution vmlinux is scanned; when a worker
 * cannot start (no bundled worker file), the same builder runs in this thread instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { Dwarf } from '../dwarf/dwarf';
import { infoOffset, type DebugInfoOffset } from '../dwarf/offsets';
import { IndexBuilder, unpackAddress } from './builder';
import type { IndexRequest, IndexResponse, IndexStatsMessage, IndexWorkerData } from './protocol';

export interface SymbolIndex {
  /** Units whose line tables name a file with this base name. */
  unitsNaming(baseName: string): Promise<DebugInfoOffset[]>;
  /** Entry addresses of every copy of a function DWARF knows, inlined ones included. Waits for the function index. */
  codeEntries(name: string): Promise<bigint[]>;
  /** DIEs defining a global or file-static variable of this name, else one declaring it extern. Waits for the index. */
  variableDies(name: string): Promise<DebugInfoOffset[]>;
  /** A DIE defining `struct X` / `union X` / `enum X` / a typedef or base type name. Waits for the index. */
  typeDie(key: string): Promise<DebugInfoOffset | undefined>;
  /** Start building the function index now (it is otherwise built on first use). */
  buildFunctions(): Promise<IndexStatsMessage>;
  readonly functionsReady: boolean;
  close(): Promise<void>;
}

type Pending = { resolve: (v: IndexResponse) => void };
type Body<R> = R extends IndexRequest ? Omit<R, 'id'> : never;

/** The worker file sits next to this module: out/src/symbols/index/ for tests, dist/ when bundled. */
export function workerFile(): string {
  return path.join(__dirname, 'indexworker.js');
}

/** Index worker threads started and not exited yet, in this process (tests check none outlive a session). */
let liveWorkers = 0;

export function liveIndexWorkers(): number {
  return liveWorkers;
}

/** How long a closing worker may take to finish its current batch of units and end. */
const CLOSE_GRACE_MS = 2000;

export class WorkerIndex implements SymbolIndex {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: string | undefined;
  private ready = false;
  private exited = false;

  constructor(vmlinux: string) {
    const data: IndexWorkerData = { vmlinux };
    // Required here, not at the top: loading worker_threads (and the stream modules it pulls
    // in) costs a cold `qkd where` several ms, and a function lookup never starts the worker.
    const { Worker: WorkerThread } = require('node:worker_threads') as typeof import('node:worker_threads');
    // A smaller young generation keeps the scan's short-lived garbage from inflating RSS.
    this.worker = new WorkerThread(workerFile(), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
    liveWorkers++;
    this.worker.once('exit', () => {
      liveWorkers--;
      this.exited = true;
    });
    // Never keep a CLI run alive just because the index is still being built.
    this.worker.unref();
    this.worker.on('message', (res: IndexResponse) => {
      const p = this.pending.get(res.id);
      this.pending.delete(res.id);
      p?.resolve(res);
    });
    const fail = (why: string): void => {
      this.failure = why;
      for (const [id, p] of this.pending) p.resolve({ id, ok: false, error: why });
      this.pending.clear();
    };
    this.worker.on('error', (e) => fail(`the symbol index worker failed: ${e.message}`));
    this.worker.on('exit', (code) => fail(`the symbol index worker exited (code ${code})`));
  }

  private async ask(req: Body<IndexRequest>): Promise<unknown> {
    if (this.failure) throw new Error(this.failure);
    const id = this.nextId++;
    // Hold the worker's event loop reference only while an answer is awaited.
    this.worker.ref();
    try {
      const res = await new Promise<IndexResponse>((resolve) => {
        this.pending.set(id, { resolve });
        this.worker.postMessage({ ...req, id } as IndexRequest);
      });
      if (!res.ok) throw new Error(res.error);
      return res.value;
    } finally {
      if (this.pending.size === 0) this.worker.unref();
    }
  }

  async unitsNaming(baseName: string): Promise<DebugInfoOffset[]> {
    return ((await this.ask({ op: 'unitsNaming', base: baseName })) as number[]).map(infoOffset);
  }

  async codeEntries(name: string): Promise<bigint[]> {
    return ((await this.ask({ op: 'copies', name })) as number[]).map(unpackAddress);
  }

  async variableDies(name: string): Promise<DebugInfoOffset[]> {
    return ((await this.ask({ op: 'variables', name })) as number[]).map(infoOffset);
  }

  async typeDie(key: string): Promise<DebugInfoOffset | undefined> {
    const v = (await this.ask({ op: 'type', key })) as number | null;
    return v === null ? undefined : infoOffset(v);
  }

  async buildFunctions(): Promise<IndexStatsMessage> {
    const stats = (await this.ask({ op: 'buildFunctions' })) as IndexStatsMessage;
    this.ready = true;
    return stats;
  }

  get functionsReady(): boolean {
    return this.ready;
  }

  /**
   * Ask the worker to stop and end by itself; terminate it only if it hasn't within a bound.
   * Node 20 can abort the process (NodePlatform::ForIsolate) when a worker is terminated
   * while V8 compiles its code on a background thread, which a long scan makes likely.
   */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ id: 0, op: 'close' } satisfies IndexRequest);
    // Not unref'd: a process whose last work is this close must live until the worker ends.
    const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), CLOSE_GRACE_MS));
    if ((await Promise.race([gone, timer])) === 'late') await this.worker.terminate();
  }
}

/** The same index built in this thread: for tools without the worker file next to them. */
export class LocalIndex implements SymbolIndex {
  private readonly builder: IndexBuilder;
  private ready = false;

  constructor(dwarf: Dwarf) {
    this.builder = new IndexBuilder(dwarf);
  }

  async unitsNaming(baseName: string): Promise<DebugInfoOffset[]> {
    return this.builder.unitsNaming(baseName).map(infoOffset);
  }

  async codeEntries(name: string): Promise<bigint[]> {
    return (await this.builder.codeEntries(name)).map(unpackAddress);
  }

  async variableDies(name: string): Promise<DebugInfoOffset[]> {
    return (await this.builder.variableDies(name)).map(infoOffset);
  }

  async typeDie(key: string): Promise<DebugInfoOffset | undefined> {
    const v = await this.builder.typeDie(key);
    return v === undefined ? undefined : infoOffset(v);
  }

  async buildFunctions(): Promise<IndexStatsMessage> {
    const stats = await this.builder.buildFunctions();
    this.ready = true;
    return { ...stats, errors: [...this.builder.errors] };
  }

  get functionsReady(): boolean {
    return this.ready;
  }

  async close(): Promise<void> {
    // nothing to release: the Dwarf belongs to the caller
  }
}

/**
 * A worker-backed index when the worker file is present, else an in-thread one. Started on
 * first use: starting a worker costs the main thread ~6 ms, which a lookup that needs no
 * index (a function with an ELF symbol) should not pay.
 */
export function openIndex(vmlinux: string, dwarf: Dwarf): SymbolIndex {
  let index: SymbolIndex | undefined;
  let closed = false;
  // Once closed, a late lookup (a request that raced the session's end) must not start a
  // worker nobody would stop.
  const use = <T>(f: (i: SymbolIndex) => Promise<T>): Promise<T> =>
    closed ? Promise.reject(new Error('the symbol index is closed: the debug session has ended')) : f((index ??= fs.existsSync(workerFile()) ? new WorkerIndex(vmlinux) : new LocalIndex(dwarf)));
  return {
    unitsNaming: (base) => use((i) => i.unitsNaming(base)),
    codeEntries: (name) => use((i) => i.codeEntries(name)),
    variableDies: (name) => use((i) => i.variableDies(name)),
    typeDie: (key) => use((i) => i.typeDie(key)),
    buildFunctions: () => use((i) => i.buildFunctions()),
    get functionsReady() {
      return index?.functionsReady ?? false;
    },
    close: async () => {
      closed = true;
      await index?.close();
    },
  };
}
