/** Messages between the adapter and the index worker (structured-clone safe). */
export type IndexRequest =
  | { id: number; op: 'unitsNaming'; base: string }
  | { id: number; op: 'copies'; name: string }
  | { id: number; op: 'buildFunctions' };

export type IndexResponse = { id: number; ok: true; value: number[] | IndexStatsMessage } | { id: number; ok: false; error: string };

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
