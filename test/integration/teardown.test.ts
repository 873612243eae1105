/**
 * One teardown, whichever way a session ends: disconnect, terminate, the adapter disposed
 * without a disconnect, QEMU quitting on its own, QEMU killed. After each, QEMU is gone, and
 * so are the symbol index worker, the vmlinux's file descriptor and the socket directory.
 * The adapter runs in this process (as in VS Code's extension host) so all four can be seen.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OWNER_FILE } from '../../src/qemu/ownership';
import type { GuestPaths } from '../../src/guest/build';
import { artifact, requireBuilt, sampleGuest, waitForExit } from '../support/env';
import { adapterModules, baseline, fdsOn, InlineClient, launchInline, leftovers, monitorCommand, processesWith, reap, until, type Launched } from '../support/inproc';

type Ending = { name: string; end: (l: Launched) => Promise<void>; says?: RegExp };

const endings: Ending[] = [
  {
    name: 'disconnect',
    end: async (l) => {
      await l.dc.request('disconnect', { terminateDebuggee: true });
    },
  },
  {
    // terminate used to end QEMU and leave the index worker and the vmlinux open until disconnect.
    name: 'terminate (before any disconnect)',
    end: async (l) => {
      const terminated = l.dc.event('terminated');
      await l.dc.request('terminate');
      await terminated;
    },
  },
  {
    name: 'dispose without disconnect (in-process adapter dropped)',
    end: async (l) => {
      l.dc.adapter.dispose();
      // Killed before dispose() returned: no async step of ours stood between.
      assert.equal(await waitForExit(l.pid, 2000), true, 'QEMU was not killed at dispose');
    },
  },
  {
    name: "QEMU quits on its own (the monitor's quit)",
    end: async (l) => {
      const terminated = l.dc.event('terminated');
      await monitorCommand(l.monitor, 'quit');
      await terminated;
    },
    says: /QEMU exited \(exit code 0\): QEMU was told to quit/,
  },
  {
    name: 'QEMU is killed (SIGKILL)',
    end: async (l) => {
      const terminated = l.dc.event('terminated');
      process.kill(l.pid, 'SIGKILL');
      await terminated;
    },
    says: /QEMU exited \(killed by SIGKILL\)/,
  },
];

describe('one teardown for every way a session ends', function () {
  this.timeout(120_000);
  let g: GuestPaths;
  const mods = (): ReturnType<typeof adapterModules> => adapterModules();

  before(function () {
    requireBuilt(this);
    g = sampleGuest(this);
  });

  for (const ending of endings) {
    it(`${ending.name}: QEMU, the index worker, the vmlinux fd and the socket dir are all released`, async function () {
      const m = mods();
      const before = baseline(m, g.vmlinux);
      let l: Launched | undefined;
      try {
        l = await launchInline(this, m, g, 'entry');
        const { runDir } = l;
        assert.equal(fs.readFileSync(path.join(runDir, OWNER_FILE), 'utf8').split(' ')[0], String(process.pid), 'the socket dir does not name its owner');
        // The index is built once the stop has settled: its worker is what must not leak.
        await until(() => m.liveIndexWorkers() > before.workers, 20_000, 'the index worker to start');
        await ending.end(l);
        assert.deepEqual(await leftovers(l, m, g.vmlinux, before), []);
        if (ending.says) assert.match(l.dc.output, ending.says);
        // Whatever comes after the end is answered, and releases nothing twice.
        const late = await l.dc.send('disconnect', { terminateDebuggee: true });
        assert.equal(late.res.success, true, late.res.message);
        l.dc.adapter.dispose();
      } finally {
        l?.dc.adapter.dispose();
        reap(l?.pid);
      }
    });
  }

  it('dispose while QEMU is being spawned: the QEMU that comes up after is killed, and the rest released', async function () {
    const m = mods();
    const before = baseline(m, g.vmlinux);
    const marker = `qkd-teardown-${process.pid}-${Date.now()}`;
    // A private runtime dir: what is left in it is this test's.
    const saved = process.env.XDG_RUNTIME_DIR;
    const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'teardown-rt-'));
    process.env.XDG_RUNTIME_DIR = runtime;
    const dc = new InlineClient(m.createSession());
    try {
      await dc.request('initialize', { adapterID: 'qemu-kernel', linesStartAt1: true, columnsStartAt1: true, pathFormat: 'path' });
      const initialized = dc.event('initialized');
      const launch = dc.send('launch', { kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, accel: 'tcg', consoleLog: artifact(this, 'console.log'), qemuArgs: ['-name', marker] });
      // 'initialized' goes out as QEMU's start begins: the spawn is under way.
      await initialized;
      dc.adapter.dispose();
      const answered = await launch;
      assert.equal(answered.res.success, false, 'the launch succeeded after the adapter was disposed');
      // The socket dir goes when the QEMU that was starting has come up, been killed and exited.
      await until(() => fs.readdirSync(runtime).length === 0, 5000, 'the socket dir to be removed');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(processesWith(marker), [], 'a QEMU outlived the disposed adapter');
      await until(() => m.liveIndexWorkers() <= before.workers && fdsOn(g.vmlinux) <= before.fds, 5000, 'the index worker and the vmlinux to be released');
    } finally {
      if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = saved;
      for (const pid of processesWith(marker)) reap(pid);
      fs.rmSync(runtime, { recursive: true, force: true });
    }
  });
});
