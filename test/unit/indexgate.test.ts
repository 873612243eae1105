/** IndexGate: when the function index may be built, around the guest's first run and stop. */
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { IndexGate } from '../../src/adapter/indexgate';
import type { SymbolIndex } from '../../src/symbols/index/client';
import type { IndexStatsMessage } from '../../src/symbols/index/protocol';

const QUIET = 30;
const RUN_HOLD = 200;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class FakeGuest extends EventEmitter {
  isRunning = false;
  run(): void {
    this.isRunning = true;
    this.emit('running');
  }
  stop(): void {
    this.isRunning = false;
    this.emit('stopped');
  }
}

/** An index that records which calls reached it. */
function recorder(): { index: SymbolIndex; calls: string[]; closed: () => boolean } {
  const calls: string[] = [];
  let closed = false;
  const stats: IndexStatsMessage = { units: 1, codeCopies: 1, names: 1, ms: 1, errors: [] };
  const index: SymbolIndex = {
    unitsNaming: async (b) => (calls.push(`unitsNaming ${b}`), []),
    codeEntries: async (n) => (calls.push(`codeEntries ${n}`), [1n]),
    variableDies: async (n) => (calls.push(`variableDies ${n}`), []),
    typeDie: async (k) => (calls.push(`typeDie ${k}`), undefined),
    buildFunctions: async () => (calls.push('buildFunctions'), stats),
    functionsReady: false,
    close: async () => {
      closed = true;
    },
  };
  return { index, calls, closed: () => closed };
}

function setup(): { gate: IndexGate; guest: FakeGuest; idx: SymbolIndex; calls: string[]; closed: () => boolean } {
  const gate = new IndexGate(QUIET, RUN_HOLD);
  const guest = new FakeGuest();
  gate.follow(guest);
  const r = recorder();
  return { gate, guest, idx: gate.wrap(r.index), calls: r.calls, closed: r.closed };
}

describe('IndexGate', () => {
  it('answers file lookups at once, whatever the phase', async () => {
    const { guest, idx, calls } = setup();
    guest.run();
    await idx.unitsNaming('fork.c');
    assert.deepEqual(calls, ['unitsNaming fork.c']);
  });

  it('holds a request made while configuring when the guest then runs, until the first stop has settled', async () => {
    const { gate, guest, idx, calls } = setup();
    const built: string[] = [];
    gate.onOpen(() => built.push('build'));
    const entries = idx.codeEntries('kernel_clone');
    guest.run();
    await sleep(QUIET * 3);
    assert.deepEqual(calls, [], 'nothing reaches the index while the guest boots');
    guest.stop();
    gate.activity();
    await sleep(QUIET / 2);
    assert.deepEqual(calls, [], 'the client is still asking about the stop');
    assert.deepEqual(await entries, [1n]);
    assert.deepEqual(calls, ['codeEntries kernel_clone']);
    assert.deepEqual(built, ['build']);
    assert.ok(gate.isOpen);
  });

  it('lets a request through before the first run once the client has gone quiet (a breakpoint waits for it)', async () => {
    const { gate, idx, calls } = setup();
    const t0 = Date.now();
    const entries = idx.codeEntries('mm_init');
    await sleep(QUIET / 2);
    gate.activity();
    assert.deepEqual(calls, []);
    assert.deepEqual(await entries, [1n]);
    assert.ok(Date.now() - t0 >= QUIET, 'after the quiet time');
    assert.ok(gate.isOpen);
  });

  it('opens at stopOnEntry without a run', async () => {
    const { gate, guest, idx } = setup();
    guest.stop();
    await idx.typeDie('struct task_struct');
    assert.ok(gate.isOpen);
  });

  it('lets a request through when the running guest is halted to update breakpoints', async () => {
    const { gate, guest, idx, calls } = setup();
    guest.run();
    guest.isRunning = false; // interrupted quietly, no 'stopped' event
    await idx.variableDies('jiffies');
    assert.deepEqual(calls, ['variableDies jiffies']);
    assert.ok(gate.isOpen);
  });

  it('opens after the guest has run for a while without stopping', async () => {
    const { guest, idx, calls } = setup();
    const p = idx.buildFunctions();
    guest.run();
    await sleep(RUN_HOLD / 2);
    assert.deepEqual(calls, []);
    await p;
    assert.deepEqual(calls, ['buildFunctions']);
  });

  it('answers held requests with nothing when the session ends, and closes the index', async () => {
    const { gate, guest, idx, calls, closed } = setup();
    let ran = false;
    gate.onOpen(() => (ran = true));
    guest.run();
    const p = idx.codeEntries('kernel_clone');
    await idx.close();
    assert.deepEqual(await p, []);
    assert.deepEqual(await idx.typeDie('struct file'), undefined);
    await assert.rejects(idx.buildFunctions(), /ended/);
    assert.deepEqual(calls, []);
    assert.ok(closed());
    guest.stop();
    await sleep(QUIET * 2);
    assert.equal(ran, false, 'nothing starts after the end');
  });
});
