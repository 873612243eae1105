/**
 * Snapshots of a running guest through QMP (src/qemu/snapshots.ts), on the x86_64 sample
 * guest, which has no disk: the state node is made on first use. A marker file written in the
 * guest's tmpfs, a save, the marker removed, a load: the marker is back. Then a second save of
 * the same tag replaces it, delete removes it, and unknown or malformed tags are refused.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveLaunchConfig } from '../../src/config';
import { READY_LINE } from '../../src/guest/initramfs';
import { waitForConsole } from '../../src/qemu/console';
import { QemuInstance } from '../../src/qemu/instance';
import { SnapshotError, Snapshots, VMSTATE_NODE } from '../../src/qemu/snapshots';
import { artifact, requireBuilt, sampleGuest } from '../support/env';

describe('snapshots of a running guest (QMP snapshot-save/load, a state node made for a diskless guest)', function () {
  this.timeout(300_000);
  let qemu: QemuInstance | undefined;
  let socket: net.Socket | undefined;
  let dir = '';
  let out = '';

  after(async () => {
    socket?.destroy();
    await qemu?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Type a command and wait for its own answer (a sum the shell works out, so the echo of the typed line does not count). */
  async function shell(command: string, n: number): Promise<string> {
    const from = out.length;
    const want = `done-${n}-${n * 3}`;
    socket?.write(`${command}; echo done-${n}-$((${n}*3))\n`);
    const end = Date.now() + 60_000;
    while (!out.slice(from).includes(want)) {
      if (Date.now() > end) throw new Error(`no answer to '${command}': ${out.slice(from).slice(-300)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return out.slice(from);
  }

  it('brings back a file the guest removed after the save, replaces a tag, deletes it, and refuses unknown tags', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    const consoleLog = artifact(this, 'console.log');
    fs.rmSync(consoleLog, { force: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-snap-'));
    const cfg = resolveLaunchConfig({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, accel: 'tcg', consoleLog });
    qemu = await QemuInstance.start(cfg, 'tcg');
    await qemu.qmp.execute('cont');
    await waitForConsole(consoleLog, READY_LINE, 240_000);
    const s = socket = net.createConnection(qemu.paths.consoleSocket);
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    await new Promise((r) => s.once('connect', r));
    await shell('echo qkd-marker > /tmp/marker', 1);

    const snapshots = new Snapshots(qemu.qmp, dir);
    assert.deepEqual(await snapshots.list(), []);
    await snapshots.save('before-rm');
    assert.ok(fs.existsSync(path.join(dir, 'vmstate.qcow2')), 'the state node\'s file is in the folder given');
    const [saved] = await snapshots.list();
    assert.equal(saved.tag, 'before-rm');
    assert.ok(saved.vmStateBytes > 1 << 20, `${saved.vmStateBytes} bytes of state`);

    assert.match(await shell('rm /tmp/marker; cat /tmp/marker', 2), /No such file or directory/);
    await snapshots.load('before-rm');
    assert.match(await shell('cat /tmp/marker', 3), /qkd-marker/);
    const status = await qemu.qmp.execute<{ status: string }>('query-status');
    assert.equal(status.status, 'running', 'a running guest runs on after the load');

    await snapshots.save('before-rm');
    assert.deepEqual((await snapshots.list()).map((x) => x.tag), ['before-rm'], 'saving a tag again replaces it');
    await snapshots.save('second');
    assert.deepEqual((await snapshots.list()).map((x) => x.tag), ['before-rm', 'second']);
    await snapshots.delete('before-rm');
    assert.deepEqual((await snapshots.list()).map((x) => x.tag), ['second']);
    await assert.rejects(snapshots.load('before-rm'), (e: unknown) => e instanceof SnapshotError && e.message === "there is no snapshot 'before-rm' (there are: second)");
    await assert.rejects(snapshots.save('a b'), (e: unknown) => e instanceof SnapshotError && /'a b' is not a snapshot name/.test(e.message));
    const nodes = await qemu.qmp.execute<Array<{ 'node-name': string }>>('query-named-block-nodes', { flat: true });
    assert.ok(nodes.some((n) => n['node-name'] === VMSTATE_NODE));
  });
});
