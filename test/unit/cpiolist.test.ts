/** The gen_init_cpio list reader: what it accepts, and each problem at its line and column. */
import * as assert from 'node:assert/strict';
import { parseCpioList } from '../../src/guest/cpiolist';

const exists = new Set(['/src/init', '/src/bin/busybox', '/opt/tools/x']);
const parse = (text: string, env: Record<string, string | undefined> = {}) => parseCpioList(text, { baseDir: '/src', env, isFile: (p) => exists.has(p) });

describe('guest/cpiolist: initramfs lists in the kernel\'s gen_init_cpio format', () => {
  it('reads every type, strips a leading /, resolves locations against the list\'s folder and expands ${VAR}', () => {
    const r = parse(
      [
        '# a comment',
        '',
        'dir /dev 0755 0 0',
        'nod /dev/console 0600 0 0 c 5 1',
        'dir /bin 755 0 0',
        'file /init init 0755 0 0',
        'file /bin/busybox ${BB} 0755 0 0 /bin/sh /bin/ls',
        'slink /bin/cat busybox 0777 0 0',
        'pipe /fifo 0644 1000 1000',
        '\tsock /sock 644 0 0',
        'file /x /opt/tools/x 0700 0 0',
      ].join('\n'),
      { BB: 'bin/busybox' },
    );
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.entries.map((e) => `${e.type}:${e.name}`), ['dir:dev', 'nod:dev/console', 'dir:bin', 'file:init', 'file:bin/busybox', 'slink:bin/cat', 'pipe:fifo', 'sock:sock', 'file:x']);
    const bb = r.entries[4];
    assert.ok(bb.type === 'file');
    assert.equal(bb.source, '/src/bin/busybox');
    assert.deepEqual(bb.links, ['bin/sh', 'bin/ls']);
    assert.equal(bb.mode, 0o755);
    const nod = r.entries[1];
    assert.ok(nod.type === 'nod' && nod.dev === 'c' && nod.major === 5 && nod.minor === 1);
    assert.equal(r.entries[6].uid, 1000);
    assert.deepEqual([...r.variables], [['BB', 'bin/busybox']]);
  });

  it('puts each problem at its line and column, with the fix in words', () => {
    const r = parse(
      [
        'dir /bin 0755 0 0',
        'fiel /init init 0755 0 0',
        'dir /etc 0755 0',
        'file /init init 0x755 0 0',
        'nod /dev/null 0666 0 0 x 1 3',
        'file /missing nothere 0644 0 0',
        'dir /bin 0755 0 0 extra',
        'slink /bin/sh busybox 0777 root 0',
        'file /bin/busybox ${UNSET}/busybox 0755 0 0',
      ].join('\n'),
    );
    const at = (line: number) => r.problems.filter((p) => p.line === line).map((p) => `${p.column}-${p.endColumn} ${p.severity}: ${p.message}`);
    assert.deepEqual(at(2), ['1-5 error: unknown type \'fiel\': a line starts with file, dir, nod, slink, pipe, sock (or # for a comment)']);
    assert.deepEqual(at(3), ['16-17 error: dir needs 4 fields after it, this line has 3: dir <name> <mode> <uid> <gid>']);
    assert.deepEqual(at(4), ['17-22 error: mode \'0x755\' is not an octal permission mode (such as 0755, 0644)']);
    assert.deepEqual(at(5), ['24-25 error: device type \'x\' is neither b (block) nor c (character)']);
    assert.deepEqual(at(6), ['15-22 error: no such file (relative to /src)']);
    assert.deepEqual(at(7), ['19-24 error: dir takes 4 fields, this line has 5: dir <name> <mode> <uid> <gid>']);
    assert.deepEqual(at(8), ['28-32 error: uid \'root\' is not a decimal number']);
    assert.deepEqual(at(9), ['19-35 error: ${UNSET}/busybox is /busybox (UNSET is not set): no such file']);
    assert.equal(r.entries.length, 1, 'only the good line is an entry');
  });

  it('warns of a name given twice and of a parent folder no earlier line makes', () => {
    const r = parse(['file /init init 0755 0 0', 'file /init init 0755 0 0', 'file /etc/passwd init 0644 0 0'].join('\n'));
    assert.deepEqual(
      r.problems.map((p) => `${p.line}:${p.column} ${p.severity}: ${p.message}`),
      ["2:6 warning: 'init' is already in the archive (line 1); the kernel keeps the later one", "3:6 warning: 'etc' is not made by an earlier dir line: the kernel cannot create 'etc/passwd' inside it"],
    );
    assert.equal(r.entries.length, 3);
  });
});
