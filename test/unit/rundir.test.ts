/**
 * Socket directories record their owner, and the next start sweeps those whose owner is gone
 * (a SIGKILLed adapter cannot clean up); a QEMU whose spawner died before the death signal was
 * armed exits instead of running on.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeRunDir } from '../../src/qemu/instance';
import { currentOwner, guardedArgv, ORPHANED_EXIT, OWNER_FILE, processStart, readOwner, sweepStaleRunDirs, UNFINISHED_STALE_MS, UNOWNED_STALE_MS, writeOwner, type Owner } from '../../src/qemu/ownership';

/** A process that really ran and is really gone, with the start time it had. */
async function deadProcess(): Promise<Owner> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = child.pid as number;
  // /proc/PID/stat exists from fork on; the start time does not change at exec.
  const start = processStart(pid);
  assert.ok(start, 'no start time for a live child');
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  assert.equal(processStart(pid), undefined);
  return { pid, start, boot: (currentOwner() as Owner).boot };
}

describe('socket directories: owner records and the sweep', () => {
  let base: string;

  beforeEach(() => (base = fs.mkdtempSync(path.join(os.tmpdir(), 'sweep-test-'))));
  afterEach(() => fs.rmSync(base, { recursive: true, force: true }));

  function dir(name: string, owner?: Owner): string {
    const d = path.join(base, name);
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'gdb.sock'), '');
    if (owner) writeOwner(d, owner);
    return d;
  }

  it('records this process (pid, start time, boot id) and reads it back', () => {
    const d = dir('qkd-aaaaaa', currentOwner());
    const o = readOwner(d);
    assert.equal(o?.pid, process.pid);
    assert.equal(o?.start, processStart(process.pid));
    assert.equal(o?.boot, fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    assert.deepEqual(fs.readdirSync(d).sort(), ['gdb.sock', OWNER_FILE]);
  });

  it('removes the directories of a dead owner, a reused pid and an earlier boot; keeps live and foreign ones', async () => {
    const me = currentOwner() as Owner;
    const dead = await deadProcess();
    const deadDir = dir('qkd-dead01', dead);
    const reusedDir = dir('qkd-reused', { ...me, start: String(Number(me.start) + 1) });
    const rebootDir = dir('qkd-reboot', { ...me, boot: 'another-boot' });
    const liveDir = dir('qkd-live01', me);
    const parentDir = dir('qkd-parent', { pid: process.ppid, start: processStart(process.ppid) as string, boot: me.boot });
    const freshUnowned = dir('qkd-fresh1');
    const notOurs = dir('other-dir', dead);
    const removed = sweepStaleRunDirs(base).sort();
    assert.deepEqual(removed, [deadDir, rebootDir, reusedDir].sort());
    for (const d of [liveDir, parentDir, freshUnowned, notOurs]) assert.equal(fs.existsSync(d), true, `${d} was removed`);
  });

  it('removes an unowned directory of makeRunDir\'s shapes only once it is old, and never other tools\' qkd-* dirs', () => {
    const old = (Date.now() - UNOWNED_STALE_MS - 60_000) / 1000;
    const legacy = dir('qkd-Ab12Cd');
    const tool = dir('qkd-unit-Ab12Cd');
    for (const d of [legacy, tool]) fs.utimesSync(d, old, old);
    const fresh = dir('qkd-Zz99Yy');
    // A maker killed between mkdtemp and its owner record: a minute is plenty.
    const unfinished = dir('qkd-new-Qq11Ww');
    const minuteAgo = (Date.now() - UNFINISHED_STALE_MS - 5000) / 1000;
    fs.utimesSync(unfinished, minuteAgo, minuteAgo);
    const making = dir('qkd-new-Ee22Rr');
    assert.deepEqual(sweepStaleRunDirs(base).sort(), [legacy, unfinished].sort());
    for (const d of [tool, fresh, making]) assert.equal(fs.existsSync(d), true, `${d} was removed`);
  });

  it('makeRunDir sweeps before it makes a 0700 directory owned by this process', async () => {
    const saved = process.env.XDG_RUNTIME_DIR;
    process.env.XDG_RUNTIME_DIR = base;
    try {
      const stale = dir('qkd-stale1', await deadProcess());
      const made = makeRunDir();
      assert.equal(fs.existsSync(stale), false, 'the dead owner\'s directory was not swept');
      assert.equal(path.dirname(made), base);
      assert.equal(fs.statSync(made).mode & 0o777, 0o700);
      assert.equal(readOwner(made)?.pid, process.pid);
      assert.match(path.basename(made), /^qkd-[A-Za-z0-9]{6}$/);
      assert.deepEqual(fs.readdirSync(base).sort(), [path.basename(made)]);
      // Its own directory survives the next sweep: the owner lives.
      assert.deepEqual(sweepStaleRunDirs(base), []);
    } finally {
      if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = saved;
    }
  });
});

describe('spawning QEMU: the guard against a parent that died before the death signal', () => {
  it('runs the command when its parent is the spawner, with the command\'s own pid', () => {
    const r = spawnSync('setpriv', guardedArgv(['/bin/sh', '-c', 'echo ran $$']), { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ran \d+\n$/);
  });

  it('exits without running it when the parent is not the spawner (it was reparented)', () => {
    const marker = path.join(os.tmpdir(), `qkd-guard-${process.pid}`);
    const r = spawnSync('setpriv', guardedArgv(['/bin/sh', '-c', `touch ${marker}`], 1), { encoding: 'utf8' });
    assert.equal(r.status, ORPHANED_EXIT);
    assert.equal(fs.existsSync(marker), false);
  });
});
