/**
 * The index worker: opens the vmlinux on its own (file descriptors and DWARF caches are not
 * shared between threads) and answers IndexRequests. It is bundled as dist/indexworker.js
 * next to the adapter.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Dwarf } from '../dwarf/dwarf';
import { ElfFile } from '../elf';
import { IndexBuilder } from './builder';
import type { IndexRequest, IndexResponse, IndexWorkerData } from './protocol';

const port = parentPort;
if (!port) throw new Error('indexworker must run as a worker thread');
const data = workerData as IndexWorkerData;
let builder: IndexBuilder | undefined;
let openError: string | undefined;
try {
  const dwarf = Dwarf.open(ElfFile.open(data.vmlinux));
  if (dwarf) builder = new IndexBuilder(dwarf);
  else openError = `${data.vmlinux} has no DWARF (.debug_info)`;
} catch (e) {
  openError = e instanceof Error ? e.message : String(e);
}

async function answer(req: IndexRequest): Promise<IndexResponse> {
  if (!builder) return { id: req.id, ok: false, error: openError ?? 'no index' };
  try {
    switch (req.op) {
      case 'unitsNaming':
        return { id: req.id, ok: true, value: builder.unitsNaming(req.base) };
      case 'copies':
        return { id: req.id, ok: true, value: await builder.codeEntries(req.name) };
      case 'variables':
        return { id: req.id, ok: true, value: await builder.variableDies(req.name) };
      case 'type':
        return { id: req.id, ok: true, value: (await builder.typeDie(req.key)) ?? null };
      case 'buildFunctions':
        return { id: req.id, ok: true, value: { ...(await builder.buildFunctions()), errors: [...builder.errors] } };
      case 'close':
        return { id: req.id, ok: true, value: null };
    }
  } catch (e) {
    return { id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

port.on('message', (req: IndexRequest) => {
  if (req.op === 'close') {
    // Ending on our own, with nothing left to run, rather than being terminated: Node 20 can
    // abort the whole process when a worker is terminated while V8 compiles its code on a
    // background thread.
    builder?.stop();
    port.close();
    return;
  }
  void answer(req).then((res) => port.postMessage(res));
});
