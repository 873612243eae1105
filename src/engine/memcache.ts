/**
 * Guest memory read during one stop, in aligned blocks. Showing a frame reads many small
 * neighbouring objects (stack slots, struct members, string bytes); each becomes a slice of a
 * block already fetched, and the blocks a read still lacks are fetched in as few `m` packets
 * as the stub allows. Unreadable blocks are remembered too, so a bad pointer costs one probe.
 */

export class MemoryError extends Error {
  constructor(readonly address: bigint) {
    // gdb's wording: kernel developers search for it.
    super(`Cannot access memory at address 0x${address.toString(16)}`);
    this.name = 'MemoryError';
  }
}

const BLOCK = 256;
/** The most blocks one raw read fetches (32 KiB). */
const RUN_BLOCKS = 128;
const BLOCK_N = BigInt(BLOCK);
const MASK64 = (1n << 64n) - 1n;

export type RawRead = (addr: bigint, length: number) => Promise<Buffer>;
/** Several reads pipelined; a failed one is undefined. */
export type RawReadMany = (ranges: ReadonlyArray<readonly [bigint, number]>) => Promise<Array<Buffer | undefined>>;
/** A read that costs no packet (guest RAM read directly); undefined leaves it to the cache and the stub. */
export type DirectRead = (addr: bigint, length: number) => Promise<Buffer | undefined>;

export class MemoryCache {
  private readonly blocks = new Map<bigint, Buffer | null>();
  /** How many `m` reads the cache made since it was created (for tests and benchmarks). */
  fetches = 0;

  constructor(
    private readonly raw: RawRead,
    /** The largest single read the stub accepts. */
    private readonly maxRead: number,
    private readonly rawMany?: RawReadMany,
    /** Tried first: where it answers, blocks and packets are not worth their bookkeeping. */
    private readonly direct?: DirectRead,
  ) {}

  /**
   * Many ranges at once: the blocks none of them has yet are fetched in one pipelined batch
   * (a run with a hole is then probed block by block), and each range is read from the blocks.
   * A range that is not all readable is undefined.
   */
  async readMany(ranges: ReadonlyArray<readonly [bigint, number]>): Promise<Array<Buffer | undefined>> {
    if (this.direct) {
      const out: Array<Buffer | undefined> = [];
      const rest: number[] = [];
      for (const [addr, length] of ranges) {
        const b = length > 0 ? await this.direct(addr & MASK64, length) : Buffer.alloc(0);
        if (!b) rest.push(out.length);
        out.push(b);
      }
      if (rest.length) {
        const more = await this.cachedMany(rest.map((i) => ranges[i]));
        rest.forEach((i, k) => (out[i] = more[k]));
      }
      return out;
    }
    return this.cachedMany(ranges);
  }

  private async cachedMany(ranges: ReadonlyArray<readonly [bigint, number]>): Promise<Array<Buffer | undefined>> {
    const want = new Set<bigint>();
    for (const [addr, length] of ranges) {
      if (length <= 0) continue;
      const start = addr & MASK64;
      for (let b = start / BLOCK_N; b <= (start + BigInt(length) - 1n) / BLOCK_N; b++) if (!this.blocks.has(b)) want.add(b);
    }
    if (want.size && this.rawMany) {
      const sorted = [...want].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const perRead = BigInt(Math.max(1, Math.floor(this.maxRead / BLOCK)));
      const runs: Array<[bigint, bigint]> = [];
      for (const b of sorted) {
        const last = runs[runs.length - 1];
        if (last && b === last[1] + 1n && b - last[0] < perRead) last[1] = b;
        else runs.push([b, b]);
      }
      this.fetches += runs.length;
      const got = await this.rawMany(runs.map(([a, z]) => [a * BLOCK_N, Number(z - a + 1n) * BLOCK] as const));
      for (let i = 0; i < runs.length; i++) {
        const data = got[i];
        if (!data) continue;
        for (let b = runs[i][0]; b <= runs[i][1]; b++) this.blocks.set(b, data.subarray(Number(b - runs[i][0]) * BLOCK, Number(b - runs[i][0] + 1n) * BLOCK));
      }
    }
    // One at a time: a range the batch could not fill then reuses the blocks the one before fetched.
    const out: Array<Buffer | undefined> = [];
    for (const [addr, length] of ranges) out.push(await this.fromBlocks(addr, length).catch(() => undefined));
    return out;
  }

  clear(): void {
    this.blocks.clear();
  }

  async read(addr: bigint, length: number): Promise<Buffer> {
    if (length <= 0) return Buffer.alloc(0);
    const start = addr & MASK64;
    const fast = this.direct ? await this.direct(start, length) : undefined;
    if (fast) return fast;
    return this.fromBlocks(start, length);
  }

  private async fromBlocks(addr: bigint, length: number): Promise<Buffer> {
    if (length <= 0) return Buffer.alloc(0);
    const start = addr & MASK64;
    const first = start / BLOCK_N;
    const last = (start + BigInt(length) - 1n) / BLOCK_N;
    await this.fill(first, last);
    const out = Buffer.alloc(length);
    let done = 0;
    for (let b = first; b <= last; b++) {
      const data = this.blocks.get(b);
      const blockStart = b * BLOCK_N;
      const from = Number((start + BigInt(done)) - blockStart);
      if (!data) throw new MemoryError(from === 0 && done === 0 ? start : blockStart + BigInt(from));
      const n = Math.min(BLOCK - from, length - done);
      data.copy(out, done, from, from + n);
      done += n;
    }
    return out;
  }

  /** Fetch the missing blocks of [first, last], coalescing runs into reads of up to maxRead. */
  private async fill(first: bigint, last: bigint): Promise<void> {
    // A run longer than one packet goes out as several `m` packets without waiting for each
    // reply (the raw read pipelines them), so the printk ring's 128 KiB costs the stub's work,
    // not a round trip per 2 KiB. Capped so that a run with a hole costs few probes.
    const perRead = BigInt(Math.max(1, Math.floor(this.maxRead / BLOCK), RUN_BLOCKS));
    let b = first;
    while (b <= last) {
      if (this.blocks.has(b)) {
        b++;
        continue;
      }
      let end = b;
      while (end + 1n <= last && end + 1n - b < perRead && !this.blocks.has(end + 1n)) end++;
      const count = Number(end - b + 1n);
      try {
        this.fetches++;
        const data = await this.raw(b * BLOCK_N, count * BLOCK);
        for (let i = 0; i < count; i++) this.blocks.set(b + BigInt(i), data.subarray(i * BLOCK, (i + 1) * BLOCK));
      } catch {
        // Part of the run is unmapped: find out which blocks, one by one.
        for (let i = 0n; i < BigInt(count); i++) {
          try {
            this.fetches++;
            this.blocks.set(b + i, await this.raw((b + i) * BLOCK_N, BLOCK));
          } catch {
            this.blocks.set(b + i, null);
          }
        }
      }
      b = end + 1n;
    }
  }

  /** Forget the blocks a write touched, so the next read sees the new bytes. */
  invalidate(addr: bigint, length: number): void {
    const first = (addr & MASK64) / BLOCK_N;
    const last = ((addr & MASK64) + BigInt(Math.max(1, length)) - 1n) / BLOCK_N;
    for (let b = first; b <= last; b++) this.blocks.delete(b);
  }
}
