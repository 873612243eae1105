/**
 * Shared machinery of the fuzz suites (fuzz-*.test.ts): seeded, bounded fast-check runs over
 * mutated copies of real bytes, a check that every failure is a typed error naming where it
 * happened, and a per-property count of the cases run.
 *
 * QKD_FUZZ_RUNS scales every property's case count (default 100: the whole suite in well under
 * a minute on two cores); QKD_FUZZ_SEED fixes the seed (printed with every failure, so a
 * failing run can be replayed); QKD_FUZZ_CASE_MS bounds one case's time; QKD_FUZZ_REPORT names
 * a file that gets one JSON line per property (scripts/fuzz.mjs adds them up).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as fc from 'fast-check';

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}=${v} is not a whole number`);
  return n;
}

export const SEED = envInt('QKD_FUZZ_SEED', 0x51ed);
export const BASE_RUNS = envInt('QKD_FUZZ_RUNS', 100);
/** One case's time bound: a parser that takes longer is as good as hung (all are meant to be linear). */
export const CASE_MS = envInt('QKD_FUZZ_CASE_MS', 2000);

/** Cases for a property of relative cost `weight` (1 = a cheap parser on small input). */
export function runsFor(weight: number): number {
  return Math.max(1, Math.round(BASE_RUNS * weight));
}

/** How a case ended: parsed, or failed with an accepted typed error. Anything else fails the property. */
export class Tally {
  ok = 0;
  typed = 0;
  readonly errors = new Map<string, number>();

  /** A case's error: accepted (counted) when `check` finds nothing wrong with it, else rethrown with the reason. */
  error(e: unknown, check: (e: unknown) => string | undefined): void {
    const problem = check(e);
    if (problem !== undefined) {
      const err = e instanceof Error ? e : new Error(String(e));
      err.message = `${problem}: ${err.message}`;
      throw err;
    }
    this.typed++;
    const name = e instanceof Error ? e.name : typeof e;
    this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
  }

  private caseFailed = false;

  /**
   * One stage of a case that runs several parsers over one input: its accepted error is noted
   * and the next stage still runs, so one early failure does not hide the parsers after it.
   */
  stage(run: () => void, check: (e: unknown) => string | undefined): void {
    try {
      run();
    } catch (e) {
      const problem = check(e);
      if (problem !== undefined) {
        const err = e instanceof Error ? e : new Error(String(e));
        err.message = `${problem}: ${err.message}`;
        throw err;
      }
      this.caseFailed = true;
      const name = e instanceof Error ? e.name : typeof e;
      this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
    }
  }

  /** stage() for a parser that answers with a promise. */
  async stageAsync(run: () => Promise<unknown>, check: (e: unknown) => string | undefined): Promise<void> {
    let failure: { e: unknown } | undefined;
    await run().catch((e: unknown) => (failure = { e }));
    if (failure) this.stage(() => {
      throw failure?.e;
    }, check);
  }

  /** Ends a case made of stages: parsed when no stage failed. */
  endCase(): void {
    if (this.caseFailed) this.typed++;
    else this.ok++;
    this.caseFailed = false;
  }

  summary(): string {
    const kinds = [...this.errors].map(([k, n]) => `${k} ${n}`).join(', ');
    return `${this.ok} parsed, ${this.typed} typed errors${kinds ? ` (${kinds})` : ''}`;
  }
}

/** Writes one property's count where the runner and a reader of the log can find it. */
export function record(parser: string, property: string, cases: number, tally: Tally, ms: number): void {
  process.stderr.write(`      fuzz ${parser} / ${property}: ${cases} cases, ${tally.summary()}, ${ms} ms (seed ${SEED})\n`);
  const file = process.env.QKD_FUZZ_REPORT;
  if (file) fs.appendFileSync(file, JSON.stringify({ parser, property, cases, ok: tally.ok, typed: tally.typed, errors: Object.fromEntries(tally.errors), ms, seed: SEED }) + '\n');
}

/** Runs one case, failing it when it takes longer than `bound` ms (CASE_MS unless the case is big by design). */
export function timed<T>(what: string, run: () => T, bound = CASE_MS): T {
  const t0 = performance.now();
  const out = run();
  const ms = performance.now() - t0;
  assert.ok(ms < bound, `${what}: one case took ${ms.toFixed(0)} ms (bound ${bound} ms): an unbounded loop or allocation`);
  return out;
}

/** The bound for hand-made cases that are megabytes or 50,000 levels deep on purpose: still far below a hang. */
export const BIG_CASE_MS = 5 * CASE_MS;

export interface FuzzOptions {
  parser: string;
  property: string;
  runs: number;
  /** One case's bound when a case does more than one parse by design (default CASE_MS). */
  caseMs?: number;
}

/**
 * Run `body` on `runs` inputs from `arb`. The body returns normally or throws; a throw goes
 * through `check`, so only the typed errors it accepts pass. A failure names the seed and the
 * shrunk input (fast-check replays it with the same seed and path).
 */
export function fuzz<T>(o: FuzzOptions, arb: fc.Arbitrary<T>, body: (input: T, tally: Tally) => void): Tally {
  const tally = new Tally();
  let cases = 0;
  const t0 = Date.now();
  fc.assert(
    fc.property(arb, (input) => {
      cases++;
      timed(o.property, () => body(input, tally), o.caseMs);
    }),
    { seed: SEED, numRuns: o.runs, endOnFailure: true },
  );
  record(o.parser, o.property, cases, tally, Date.now() - t0);
  return tally;
}

/** fuzz() for async parsers (the expression evaluator reads memory through promises). */
export async function fuzzAsync<T>(o: FuzzOptions, arb: fc.Arbitrary<T>, body: (input: T, tally: Tally) => Promise<void>): Promise<Tally> {
  const tally = new Tally();
  let cases = 0;
  const t0 = Date.now();
  await fc.assert(
    fc.asyncProperty(arb, async (input) => {
      cases++;
      const c0 = performance.now();
      await body(input, tally);
      const ms = performance.now() - c0;
      const bound = o.caseMs ?? CASE_MS;
      assert.ok(ms < bound, `${o.property}: one case took ${ms.toFixed(0)} ms (bound ${bound} ms): an unbounded loop or allocation`);
    }),
    { seed: SEED, numRuns: o.runs, endOnFailure: true },
  );
  record(o.parser, o.property, cases, tally, Date.now() - t0);
  return tally;
}

/** Run one hand-made hostile case through the check and BIG_CASE_MS, counting it like a fuzz case. */
export function hostile(tally: Tally, what: string, run: () => void, check: (e: unknown) => string | undefined): void {
  timed(what, () => {
    try {
      run();
      tally.ok++;
    } catch (e) {
      tally.error(e, check);
    }
  }, BIG_CASE_MS);
}

// ---- Mutations of real bytes --------------------------------------------------------------

export type Mutation =
  | { op: 'truncate'; at: number }
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  /** A hostile length or offset written over a field: all ones, just past the end, 2^31, ... */
  | { op: 'length'; at: number; value: bigint; size: 1 | 2 | 4 | 8 }
  | { op: 'insert'; at: number; bytes: number[] }
  | { op: 'delete'; at: number; n: number }
  /** A run of bytes copied from elsewhere in the input: keeps them looking like real structure. */
  | { op: 'copy'; from: number; to: number; n: number };

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x40, 0x3f];

/** Lengths and offsets a careless parser trusts: zero, past the end, sign bits, reserved initial lengths. */
function hostileValues(len: number): bigint[] {
  return [0n, 1n, BigInt(len), BigInt(len + 1), 0x7fn, 0x80n, 0xffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xfffffff0n, 0xfffffffen, 0xffffffffn, 0xffffffffffffffffn, 1n << 53n, 0x8000000000000000n];
}

/**
 * One to `max` mutations of a `len`-byte input; positions fall in [lo, hi) when given (the
 * part of a file a parser reads), else anywhere.
 */
export function mutations(len: number, region: [number, number] = [0, len], max = 4): fc.Arbitrary<Mutation[]> {
  const [lo, hi] = region;
  const at = fc.integer({ min: lo, max: Math.max(lo, hi - 1) });
  const m: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.integer({ min: lo, max: hi }) }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('set' as const), at, byte: fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.integer({ min: 0, max: 255 })) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('length' as const), at, value: fc.oneof(fc.constantFrom(...hostileValues(len)), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })), size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('insert' as const), at, bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 24 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), at, n: fc.integer({ min: 1, max: 32 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('copy' as const), from: fc.integer({ min: 0, max: Math.max(0, len - 1) }), to: at, n: fc.integer({ min: 1, max: 64 }) }) },
  );
  return fc.array(m, { minLength: 1, maxLength: max });
}

/** A mutated copy; the input is left alone. Positions past a shortened buffer are clamped. */
export function mutate(base: Buffer, ms: readonly Mutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of ms) {
    const at = Math.min('at' in m ? m.at : m.to, b.length);
    switch (m.op) {
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'flip':
        if (at < b.length) b[at] ^= 1 << m.bit;
        break;
      case 'set':
        if (at < b.length) b[at] = m.byte;
        break;
      case 'length':
        for (let i = 0; i < m.size && at + i < b.length; i++) b[at + i] = Number((m.value >> BigInt(8 * i)) & 0xffn);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
        break;
      case 'copy': {
        const src = Buffer.from(b.subarray(Math.min(m.from, b.length), Math.min(m.from + m.n, b.length)));
        src.copy(b, at, 0, Math.max(0, Math.min(src.length, b.length - at)));
        break;
      }
    }
  }
  return b;
}

// ---- Small encoders for hand-made hostile inputs ------------------------------------------

export const uleb = (n: number | bigint): number[] => {
  const out: number[] = [];
  let v = BigInt(n);
  if (v < 0n) throw new RangeError(`uleb(${n}): negative`);
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v ? b | 0x80 : b);
  } while (v);
  return out;
};
export const le = (n: number | bigint, size: number): number[] => [...Array(size)].map((_, i) => Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
export const cstr = (s: string): number[] => [...Buffer.from(s, 'latin1'), 0];
/** A LEB128 of `n` bytes, every one with the continuation bit but the last: 20 is twice the longest valid one. */
export const longLeb = (n: number): number[] => [...Array(n - 1).fill(0x80), 0x01];
