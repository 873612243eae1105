/**
 * The `initramfs` launch field: a gen_init_cpio list made into the initrd. The archive is the
 * one the kernel's own usr/gen_init_cpio (built in the sample guest's tree) writes for the same
 * list, byte for byte and as GNU cpio lists it; an unchanged list (or a file touched without a
 * change) is not made again; a list with an error names its line and column; and the sample
 * kernel boots it to a shell script that answers.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GuestPaths } from '../../src/guest/build';
import { initramfsFromList } from '../../src/guest/initramfslist';
import { UserError } from '../../src/util/errors';
import { artifact, CLI, requireBuilt, sampleGuest } from '../support/env';

const BUSYBOX = '/bin/busybox';

describe('initramfs from a gen_init_cpio list', function () {
  this.timeout(300_000);
  let g: GuestPaths;
  let dir = '';
  let cache = '';
  let saved: string | undefined;

  before(function () {
    requireBuilt(this);
    g = sampleGuest(this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-list-'));
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-list-cache-'));
    saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = cache;
    fs.writeFileSync(path.join(dir, 'init'), '#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n/bin/busybox echo "qkd-list-boot: $(/bin/busybox cat /hello.txt) $(/bin/busybox ls /dev/console)"\n/bin/busybox reboot -f\n', { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello from the list\n');
    fs.writeFileSync(
      path.join(dir, 'initramfs.list'),
      [
        '# the sample guest kernel, booted to a script',
        'dir /dev 0755 0 0',
        'nod /dev/console 0600 0 0 c 5 1',
        'dir /bin 0755 0 0',
        'dir /proc 0755 0 0',
        `file /bin/busybox \${QKD_TEST_BUSYBOX} 0755 0 0`,
        'slink /bin/sh busybox 0777 0 0',
        'file /init init 0755 0 0',
        'file /hello.txt hello.txt 0644 1000 1000 /hello-again.txt',
        'pipe /fifo 0644 0 0',
        'sock /sock 0644 0 0',
        'nod /dev/vda 0660 0 6 b 254 0',
      ].join('\n') + '\n',
    );
    process.env.QKD_TEST_BUSYBOX = BUSYBOX;
  });

  after(() => {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
    delete process.env.QKD_TEST_BUSYBOX;
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it('writes what the kernel\'s usr/gen_init_cpio writes for the same list, byte for byte and as cpio -t lists it', function () {
    const made = initramfsFromList(path.join(dir, 'initramfs.list'));
    assert.equal(made.rebuilt, true);
    assert.deepEqual(made.problems, []);
    assert.ok(made.file.startsWith(path.join(cache, 'qemu-kernel-debug', 'initramfs')));
    const tool = path.join(g.source, 'usr', 'gen_init_cpio');
    assert.ok(fs.existsSync(tool), `${tool} (built with the sample kernel)`);
    const theirs = execFileSync(tool, ['-t', '0', 'initramfs.list'], { cwd: dir, env: { ...process.env, QKD_TEST_BUSYBOX: BUSYBOX }, maxBuffer: 1 << 26 });
    const ours = fs.readFileSync(made.file);
    fs.writeFileSync(artifact(this, 'theirs.cpio'), theirs);
    const list = (b: Buffer): string => execFileSync('cpio', ['-t', '-v', '--numeric-uid-gid', '--quiet'], { input: b, encoding: 'utf8' });
    assert.equal(list(ours), list(theirs));
    assert.ok(ours.equals(theirs), `${ours.length} bytes against gen_init_cpio's ${theirs.length}`);
    assert.match(list(ours), /crw------- +1 0 +0 +5, +1 .* dev\/console/);
    assert.match(list(ours), /-rw-r--r-- +2 1000 +1000 +20 .* hello-again\.txt/);
  });

  it('is not made again for an unchanged list, nor for a file touched without a change; a changed file makes a new one', function () {
    const list = path.join(dir, 'initramfs.list');
    const first = initramfsFromList(list);
    const again = initramfsFromList(list);
    assert.equal(again.rebuilt, false);
    assert.equal(again.file, first.file);
    const hello = path.join(dir, 'hello.txt');
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(hello, later, later);
    assert.equal(initramfsFromList(list).rebuilt, false, 'same content, new mtime');
    fs.writeFileSync(hello, 'changed\n');
    const changed = initramfsFromList(list);
    assert.equal(changed.rebuilt, true);
    assert.notEqual(changed.file, first.file);
    fs.writeFileSync(hello, 'hello from the list\n');
  });

  it('refuses a list with an error, naming the field, the file, the line and the column', () => {
    const bad = path.join(dir, 'bad.list');
    fs.writeFileSync(bad, 'dir /bin 0755 0 0\nfile /init init 0758 0 0\n');
    assert.throws(
      () => initramfsFromList(bad),
      (e: unknown) => e instanceof UserError && e.field === 'initramfs' && e.message.includes(`${bad}:2:17: error: mode '0758' is not an octal permission mode`),
    );
  });

  it('boots the sample kernel with `qkd boot --initramfs LIST` to the list\'s init', async function () {
    const out = await new Promise<string>((resolve, reject) => {
      // The sample kernel named outright: this test's own cache folder holds no sample guest.
      const child = spawn('node', [CLI, 'boot', '--accel', 'tcg', '--kernel', g.kernel, '--initramfs', path.join(dir, 'initramfs.list'), '--console-log', artifact(this, 'console.log')], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, QKD_TEST_BUSYBOX: BUSYBOX },
      });
      let text = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`no answer from the list's init: ${text.slice(-400)}`));
      }, 240_000);
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.on('exit', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    assert.match(out, /qkd-list-boot: hello from the list \/dev\/console/);
    assert.match(out, /initramfs (made from|from) .*initramfs\.list/);
  });
});
