/** Messages between the adapter and the index worker (structured-clone safe). */
export type IndexRequest =
  | { id: number; op: 'unitsNaming'; base: string }
  | { id: number; op: 'copies'; name: string }
  | { id: number; op: 'buildFunctions' }
  | { id: number; op: 'variables'; name: string }
  | { id: number; op: 'type'; key: string }
  /** Stop scanning and let the thread end by itself (see WorkerIndex.close). */
  | { id: number; op: 'close' };

export type IndexResponse = { id: number; ok: true; value: number[] | number | null | IndexStatsMessage } | { id: number; ok: false; error: string };

export interface IndexStatsMessage {
  units: number;
  codeCopies: number;
  names: number;
  ms: number;
  errors: string[];
}

export interface IndexWorkerData {
  vmlinux: string;
}
