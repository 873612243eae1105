/** Hit conditions, log message templates and the stop decision; the stop-scoped memory cache. */
import * as assert from 'node:assert/strict';
import { BreakpointBehaviour, decide, parseHitCondition, parseLogMessage, type HitHost } from '../../src/engine/bpconditions';
import { MemoryCache, MemoryError } from '../../src/engine/memcache';

describe('breakpoint conditions, hit counts and logpoints', () => {
  it('parses hit conditions the way the README documents them', () => {
    const hits = (text: string): number[] => [1, 2, 3, 4, 5, 6].filter(parseHitCondition(text));
    assert.deepEqual(hits('3'), [3, 4, 5, 6]);
    assert.deepEqual(hits('>= 3'), [3, 4, 5, 6]);
    assert.deepEqual(hits('== 2'), [2]);
    assert.deepEqual(hits('=2'), [2]);
    assert.deepEqual(hits('> 4'), [5, 6]);
    assert.deepEqual(hits('< 3'), [1, 2]);
    assert.deepEqual(hits('<= 1'), [1]);
    assert.deepEqual(hits('% 2'), [2, 4, 6]);
    assert.throws(() => parseHitCondition('often'), /hitCondition: 'often' is not a hit count/);
    assert.throws(() => parseHitCondition('% 0'), /would never stop/);
  });

  it('splits log messages into text and {expressions}, with {{ }} as literal braces', () => {
    assert.deepEqual(parseLogMessage('fn={args->fn} flags={args->flags,x} {{x}}'), [{ text: 'fn=' }, { expr: 'args->fn' }, { text: ' flags=' }, { expr: 'args->flags,x' }, { text: ' {x}' }]);
    assert.throws(() => parseLogMessage('open {args'), /'\{' at column 6 has no closing '\}'/);
    assert.throws(() => parseLogMessage('empty {}'), /empty '\{\}' at column 7/);
  });

  function host(values: Record<string, number>): HitHost & { asked: string[] } {
    const asked: string[] = [];
    return {
      asked,
      test: async (e) => {
        asked.push(e);
        if (!(e in values)) throw new Error(`No symbol "${e}" in current context.`);
        return values[e] !== 0;
      },
      show: async (e) => {
        asked.push(e);
        return String(values[e]);
      },
    };
  }

  it('stops when the condition holds, counting hits only then (as gdb does)', async () => {
    const b = new BreakpointBehaviour({ condition: 'c', hitCondition: '2' });
    const h = { c: 0 };
    assert.equal((await decide([b], host(h))).stop, false);
    assert.equal(b.hits, 0);
    Object.assign(h, { c: 1 });
    assert.equal((await decide([b], host(h))).stop, false, 'first true hit: below the hit count');
    assert.equal((await decide([b], host(h))).stop, true);
    assert.equal(b.hits, 2);
  });

  it('a logpoint logs and goes on; a broken condition stops with the error', async () => {
    const log = new BreakpointBehaviour({ logMessage: 'n={n}' });
    const d = await decide([log], host({ n: 42 }));
    assert.deepEqual(d, { stop: false, logs: ['n=42'], problems: [] });
    const broken = new BreakpointBehaviour({ condition: 'nope' });
    const d2 = await decide([broken], host({}));
    assert.equal(d2.stop, true);
    assert.match(d2.problems[0], /Error in breakpoint condition 'nope': No symbol "nope"/);
    assert.equal(new BreakpointBehaviour({}).plain, true);
    assert.equal(new BreakpointBehaviour({ condition: ' ' }).plain, true);
  });
});

describe('stop-scoped memory cache', () => {
  const mapped = (addr: bigint): boolean => addr >= 0x10000n && addr < 0x11000n;
  function fake(direct?: (addr: bigint, len: number) => Promise<Buffer | undefined>): { cache: MemoryCache; reads: Array<[bigint, number]>; batches: Array<Array<readonly [bigint, number]>> } {
    const reads: Array<[bigint, number]> = [];
    const batches: Array<Array<readonly [bigint, number]>> = [];
    const bytes = (addr: bigint, len: number): Buffer => {
      for (let a = addr; a < addr + BigInt(len); a += 256n) if (!mapped(a)) throw new Error('E14');
      return Buffer.from(Array.from({ length: len }, (_, i) => Number((addr + BigInt(i)) & 0xffn)));
    };
    const cache = new MemoryCache(
      async (addr, len) => {
        reads.push([addr, len]);
        return bytes(addr, len);
      },
      2048,
      async (ranges) => {
        batches.push([...ranges]);
        return ranges.map(([a, n]) => {
          try {
            return bytes(a, n);
          } catch {
            return undefined;
          }
        });
      },
      direct,
    );
    return { cache, reads, batches };
  }

  it('serves neighbouring reads from one fetch of aligned blocks', async () => {
    const { cache, reads } = fake();
    const a = await cache.read(0x10010n, 8);
    assert.deepEqual([...a], [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17]);
    await cache.read(0x10020n, 64);
    await cache.read(0x100f8n, 16); // crosses into the next block: one more fetch
    assert.deepEqual(reads, [
      [0x10000n, 256],
      [0x10100n, 256],
    ]);
    await cache.read(0x10200n, 4096 - 0x200);
    // A long run is one raw read (which sends its packets pipelined): 14 blocks.
    assert.deepEqual(reads.slice(2), [[0x10200n, 3584]]);
  });

  it('reads many ranges with one pipelined batch, in runs of at most one packet, and gives undefined for what is unreadable', async () => {
    const { cache, reads, batches } = fake();
    await cache.read(0x10100n, 8);
    const got = await cache.readMany([
      [0x10010n, 8],
      [0x10108n, 8],
      [0x10400n, 3000],
      [0x10ff0n, 32],
    ]);
    assert.deepEqual(
      got.map((b) => b?.[0]),
      [0x10, 0x08, 0x00, undefined],
    );
    assert.equal(got[2]?.length, 3000);
    // Block 0x10100 was cached; the 3000 bytes span 12 blocks, 8 to a packet; 0x11000 is a hole.
    assert.deepEqual(batches, [
      [
        [0x10000n, 256],
        [0x10400n, 2048],
        [0x10c00n, 1280],
      ],
    ]);
    // The run that ran into the hole is read again without the batch: its readable blocks, then the hole, probed once.
    assert.deepEqual(reads.slice(1), [
      [0x10c00n, 1024],
      [0x11000n, 256],
      [0x11000n, 256],
    ]);
  });

  it('takes what a direct read (guest RAM) answers without a packet, and leaves the rest to the stub', async () => {
    // RAM answers the first page only; past it (MMIO, say) the stub is asked.
    const direct = async (addr: bigint, len: number): Promise<Buffer | undefined> => (addr >= 0x10000n && addr + BigInt(len) <= 0x10100n ? Buffer.alloc(len, 0xab) : undefined);
    const { cache, reads, batches } = fake(direct);
    assert.deepEqual([...(await cache.read(0x10010n, 4))], [0xab, 0xab, 0xab, 0xab]);
    const got = await cache.readMany([
      [0x10020n, 8],
      [0x10200n, 4],
    ]);
    assert.deepEqual(got.map((b) => b?.[0]), [0xab, 0x00]);
    assert.deepEqual(reads, []);
    assert.deepEqual(batches, [[[0x10200n, 256]]]);
    assert.equal((await cache.read(0x10300n, 2))[0], 0x00);
    assert.deepEqual(reads, [[0x10300n, 256]]);
  });

  it('reports the first unreadable address and remembers holes', async () => {
    const { cache, reads } = fake();
    await assert.rejects(cache.read(0x10ff0n, 32), (e: Error) => e instanceof MemoryError && /Cannot access memory at address 0x11000/.test(e.message));
    const n = reads.length;
    await assert.rejects(cache.read(0x11000n, 1), MemoryError);
    assert.equal(reads.length, n, 'the hole is not probed again');
    cache.invalidate(0x10ff0n, 4);
    await cache.read(0x10ff0n, 4);
    assert.equal(reads.length, n + 1);
  });
});
