/** The initramfs writer, checked by GNU cpio listing what we wrote. */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeCpio } from '../../src/guest/cpio';
import { buildInitramfs, READY_LINE } from '../../src/guest/initramfs';

describe('guest/cpio', () => {
  it('writes a newc archive GNU cpio lists with types, modes and device numbers', () => {
    const archive = writeCpio([
      { kind: 'dir', path: 'dev' },
      { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'file', path: 'init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
      { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    ]);
    const listing = execFileSync('cpio', ['-itv', '--quiet'], { input: archive, encoding: 'utf8' });
    const lines = listing.trim().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[0], /^drwxr-xr-x .* dev$/);
    assert.match(lines[1], /^crw------- .* 5,\s+1 .* dev\/console$/);
    assert.match(lines[2], /^-rwxr-xr-x .* 10 .* init$/);
    assert.match(lines[3], /^lrwxrwxrwx .* bin\/sh -> busybox$/);
  });

  it('extracts file contents byte for byte', () => {
    const data = Buffer.from([0, 1, 2, 255, 10, 13]);
    const archive = writeCpio([{ kind: 'file', path: 'blob', data }]);
    const out = execFileSync('cpio', ['-i', '--to-stdout', '--quiet', 'blob'], { input: archive });
    assert.deepEqual(out, data);
  });

  it('builds an initramfs whose init prints the ready line', () => {
    const img = buildInitramfs(Buffer.from('fake busybox'));
    const init = execFileSync('cpio', ['-i', '--to-stdout', '--quiet', 'init'], { input: img, encoding: 'utf8' });
    assert.ok(init.startsWith('#!/bin/busybox sh'));
    assert.ok(init.includes(READY_LINE));
    assert.ok(init.includes('mount -t proc') && init.includes('mount -t sysfs') && init.includes('mount -t devtmpfs'));
  });
});
