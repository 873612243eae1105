/**
 * Finding, reading and identifying module files, on the sample module's real .ko: compressed
 * copies made by the real gzip, xz and zstd, and readelf and modinfo as the oracles.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cachedGuest } from '../../src/guest/build';
import {
  defaultModuleDirs,
  findModuleFile,
  ModuleCandidate,
  ModuleFileError,
  ModuleFileIndex,
  moduleIdentity,
  parseModuleFileName,
  readModuleFile,
} from '../../src/symbols/modfiles';

/** The sample module's .ko from the guest cache (QKD_TEST_MODULE names any other real .ko instead). */
function sampleModule(): string {
  if (process.env.QKD_TEST_MODULE) return process.env.QKD_TEST_MODULE;
  const g = cachedGuest('x86_64');
  const ko = g?.modules?.sample;
  if (!ko || !fs.existsSync(ko)) {
    assert.fail(`the x86_64 sample guest has no built sample module (${g ? `guest.json has modules.sample = ${String(ko)}` : 'the guest is not built'}); run: node dist/cli.js guest build --arch x86_64`);
  }
  return ko;
}

function tool(cmd: string, args: string[], pkg: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) assert.fail(`${cmd} is needed as this test's oracle or to make its inputs; install it: apt-get install ${pkg} (${r.error.message})`);
  if (r.status !== 0) assert.fail(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** The programs that make this test's inputs and check its answers, with their Debian packages. */
const TOOLS: [string, string][] = [['gzip', 'gzip'], ['xz', 'xz-utils'], ['zstd', 'zstd'], ['readelf', 'binutils'], ['objcopy', 'binutils'], ['modinfo', 'kmod']];

/** A file of `ko`'s bytes compressed by the real CLI. */
function compress(ko: string, out: string, cmd: 'gzip' | 'xz' | 'zstd', args: string[] = []): string {
  fs.writeFileSync(out, execFileSync(cmd, [...args, '-c', ko], { maxBuffer: 256 << 20 }));
  return out;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.fail('expected an error');
}

describe('symbols/modfiles: module files on the host', function () {
  this.timeout(60_000);
  let ko: string;
  let original: Buffer;
  let tmp: string;
  let oracle: { buildId: string; srcversion?: string; vermagic?: string; name: string };
  const fresh = (name: string): string => {
    const d = path.join(tmp, name);
    fs.mkdirSync(d, { recursive: true });
    return d;
  };

  before(() => {
    for (const [cmd, pkg] of TOOLS) tool(cmd, ['--version'], pkg);
    ko = sampleModule();
    original = fs.readFileSync(ko);
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-modfiles-')));
    const notes = tool('readelf', ['-n', ko], 'binutils');
    const buildId = /Build ID: ([0-9a-f]+)/.exec(notes)?.[1];
    assert.ok(buildId, `readelf -n shows no build ID for ${ko}:\n${notes}`);
    const field = (f: string): string | undefined => tool('modinfo', ['-F', f, ko], 'kmod').replace(/\n$/, '') || undefined;
    oracle = { buildId, srcversion: field('srcversion'), vermagic: field('vermagic'), name: field('name') ?? '' };
    assert.ok(oracle.name, 'modinfo -F name printed nothing');
  });
  after(() => tmp && fs.rmSync(tmp, { recursive: true, force: true }));

  it('names module files: .ko, .ko.debug and the compressed forms, and nothing else', () => {
    assert.deepEqual(parseModuleFileName('/x/qkd_sample.ko'), { name: 'qkd_sample', debugOnly: false });
    assert.deepEqual(parseModuleFileName('nf-nat.ko.zst'), { name: 'nf-nat', debugOnly: false, compression: 'zst' });
    assert.deepEqual(parseModuleFileName('a.ko.debug'), { name: 'a', debugOnly: true });
    assert.deepEqual(parseModuleFileName('a.ko.xz'), { name: 'a', debugOnly: false, compression: 'xz' });
    for (const not of ['a.o', 'a.ko.cmd', '.a.ko.cmd', 'a.mod.c', 'a.ko.bz2', 'ko', '.ko']) assert.equal(parseModuleFileName(not), undefined, not);
  });

  it('identifies the real .ko as readelf and modinfo do', () => {
    const id = moduleIdentity(original, ko);
    assert.equal(id.buildId, oracle.buildId);
    assert.equal(id.srcversion, oracle.srcversion);
    assert.equal(id.vermagic, oracle.vermagic);
    assert.equal(id.name, oracle.name);
    // Without .modinfo's name=, the name comes from struct module in .gnu.linkonce.this_module.
    const noName = Buffer.from(original);
    const at = noName.indexOf(Buffer.from(`\0name=${oracle.name}\0`));
    assert.ok(at > 0, 'the .ko has name= in .modinfo');
    noName.fill(0, at + 1, at + 6 + oracle.name.length);
    assert.equal(moduleIdentity(noName, ko).name, oracle.name);
  });

  it('reads gzip, xz (default and kbuild options) and zstd copies to the very bytes of the .ko', async () => {
    const dir = fresh('compressed');
    const base = path.join(dir, oracle.name);
    compress(ko, `${base}.ko.gz`, 'gzip', ['-n', '-9']);
    compress(ko, `${base}.ko.xz`, 'xz');
    compress(ko, `${base}.ko.zst`, 'zstd', ['-q', '-19']);
    const kbuildXz = fresh('kbuild-xz');
    compress(ko, path.join(kbuildXz, `${oracle.name}.ko.xz`), 'xz', ['--check=crc32', '--lzma2=dict=1MiB']);
    const index = new ModuleFileIndex([dir, kbuildXz]);
    const found = index.find(oracle.name);
    assert.deepEqual(
      found.map((c) => [path.relative(tmp, c.path), c.compression]),
      [
        [`compressed/${oracle.name}.ko.gz`, 'gz'],
        [`compressed/${oracle.name}.ko.xz`, 'xz'],
        [`compressed/${oracle.name}.ko.zst`, 'zst'],
        [`kbuild-xz/${oracle.name}.ko.xz`, 'xz'],
      ],
    );
    for (const c of found) {
      const bytes = await readModuleFile(c);
      assert.ok(bytes.equals(original), `${c.path} decompresses to the original bytes`);
      assert.equal(moduleIdentity(bytes, c.path).buildId, oracle.buildId);
    }
  });

  it('decompresses several files at once (the xz decoder is shared)', async () => {
    const dir = fresh('parallel');
    const files = [0, 1, 2, 3].map((i) => compress(ko, path.join(dir, `m${i}.ko.xz`), 'xz'));
    const all = await Promise.all(files.map((f) => readModuleFile({ path: f, compression: 'xz', debugOnly: false })));
    for (const b of all) assert.ok(b.equals(original));
  });

  it("treats '-' and '_' in module names as the same", () => {
    const dir = fresh('dash');
    const dashed = oracle.name.replace(/_/g, '-');
    fs.copyFileSync(ko, path.join(dir, `${dashed}.ko`));
    const index = new ModuleFileIndex([dir]);
    assert.deepEqual(index.find(oracle.name).map((c) => path.basename(c.path)), [`${dashed}.ko`]);
    assert.deepEqual(index.find(dashed).map((c) => path.basename(c.path)), [`${dashed}.ko`]);
  });

  it('lists files in search order: the user folder first, then the next, each folder walked recursively', () => {
    const user = fresh('order/user');
    const tree = fresh('order/tree');
    fs.mkdirSync(path.join(tree, 'drivers/misc'), { recursive: true });
    fs.copyFileSync(ko, path.join(tree, 'drivers/misc', `${oracle.name}.ko`));
    fs.mkdirSync(path.join(user, 'deep/er'), { recursive: true });
    fs.copyFileSync(ko, path.join(user, 'deep/er', `${oracle.name}.ko`));
    assert.deepEqual(
      new ModuleFileIndex([user, tree]).find(oracle.name).map((c) => path.relative(tmp, c.path)),
      [`order/user/deep/er/${oracle.name}.ko`, `order/tree/drivers/misc/${oracle.name}.ko`],
    );
    assert.deepEqual(
      new ModuleFileIndex([tree, user]).find(oracle.name).map((c) => path.relative(tmp, c.path)),
      [`order/tree/drivers/misc/${oracle.name}.ko`, `order/user/deep/er/${oracle.name}.ko`],
    );
    // A folder inside another, or named twice, gives each file once, at its first place.
    assert.equal(new ModuleFileIndex([user, path.join(user, 'deep'), user]).find(oracle.name).length, 1);
  });

  it('reads a .ko.debug (objcopy --only-keep-debug): debug-only, same build ID, with DWARF', async () => {
    const dir = fresh('debug');
    const dbg = path.join(dir, `${oracle.name}.ko.debug`);
    tool('objcopy', ['--only-keep-debug', ko, dbg], 'binutils');
    const [c] = new ModuleFileIndex([dir]).find(oracle.name);
    assert.deepEqual(c, { path: dbg, debugOnly: true });
    const id = moduleIdentity(await readModuleFile(c), c.path);
    assert.equal(id.buildId, oracle.buildId);
    assert.equal(id.hasDebugInfo, moduleIdentity(original, ko).hasDebugInfo);
    // Its .modinfo is kept only as an empty (NOBITS) section: no made-up fields from zeros.
    assert.equal(id.srcversion, undefined);
    assert.equal(id.vermagic, undefined);
  });

  it('does not enter symlinked folders (/lib/modules/<r>/build and source), nor loop on symlinks', () => {
    const rel = fresh('libmodules/6.1.0-test');
    fs.mkdirSync(path.join(rel, 'kernel/drivers'), { recursive: true });
    fs.copyFileSync(ko, path.join(rel, 'kernel/drivers', `${oracle.name}.ko`));
    const elsewhere = fresh('elsewhere');
    fs.copyFileSync(ko, path.join(elsewhere, `${oracle.name}.ko`));
    fs.symlinkSync(elsewhere, path.join(rel, 'build'));
    fs.symlinkSync(elsewhere, path.join(rel, 'source'));
    fs.symlinkSync('.', path.join(rel, 'kernel/loop'));
    fs.symlinkSync(path.join(elsewhere, `${oracle.name}.ko`), path.join(rel, `linked.ko`));
    const index = new ModuleFileIndex([rel]);
    assert.deepEqual(index.find(oracle.name).map((c) => path.relative(rel, c.path)), [`kernel/drivers/${oracle.name}.ko`]);
    // A symlinked file is still a module file.
    assert.deepEqual(index.find('linked').map((c) => path.relative(rel, c.path)), ['linked.ko']);
  });

  it('walks in the background with prepare(), with the same result as the synchronous walk', async () => {
    const dirs = [path.join(tmp, 'order/user'), path.join(tmp, 'order/tree'), path.join(tmp, 'compressed'), path.join(tmp, 'missing')];
    const bg = new ModuleFileIndex(dirs);
    await bg.prepare();
    const fg = new ModuleFileIndex(dirs);
    assert.deepEqual(bg.find(oracle.name), fg.find(oracle.name));
    assert.deepEqual(bg.searched(), fg.searched());
    assert.match(fg.searched()[3], /missing \(cannot open: ENOENT\)$/);
    assert.equal(bg.stats().moduleFiles, fg.stats().moduleFiles);
  });

  it('stops a walk at its entry limit and says so in searched()', () => {
    const index = new ModuleFileIndex([path.join(tmp, 'order')], { maxEntries: 3 });
    index.find(oracle.name);
    assert.match(index.searched()[0], /stopped after 3 entries/);
  });

  it('gives a typed error naming the file for a truncated or corrupt .xz, .gz or .zst', async () => {
    const dir = fresh('corrupt');
    const cases: [string, 'gz' | 'xz' | 'zst', (b: Buffer) => Buffer, RegExp][] = [
      ['truncated.ko.xz', 'xz', (b) => b.subarray(0, b.length >> 1), /xz.*truncated/],
      ['flipped.ko.xz', 'xz', flip, /xz.*corrupt/],
      ['truncated.ko.gz', 'gz', (b) => b.subarray(0, b.length >> 1), /gz.*end of file/],
      ['flipped.ko.gz', 'gz', flip, /gz/],
      ['truncated.ko.zst', 'zst', (b) => b.subarray(0, b.length >> 1), /zst.*truncated/],
      ['flipped.ko.zst', 'zst', flip, /zst/],
      ['empty.ko.xz', 'xz', () => Buffer.alloc(0), /empty/],
      ['plain.ko.zst', 'zst', () => original, /not zst data/],
    ];
    for (const [name, kind, damage, why] of cases) {
      const whole = path.join(dir, `whole-${name}`);
      compress(ko, whole, kind === 'gz' ? 'gzip' : kind === 'xz' ? 'xz' : 'zstd');
      const file = path.join(dir, name);
      fs.writeFileSync(file, damage(fs.readFileSync(whole)));
      const c: ModuleCandidate = { path: file, compression: kind, debugOnly: false };
      const e = await rejection(readModuleFile(c));
      assert.ok(e instanceof ModuleFileError, `${name}: ${e.stack}`);
      assert.equal(e.file, file);
      assert.ok(e.message.startsWith(`${file}: `), e.message);
      assert.match(e.message, why, name);
    }
    // The decoder is not left locked by a failed file.
    assert.ok((await readModuleFile({ path: compress(ko, path.join(dir, 'after.ko.xz'), 'xz'), compression: 'xz', debugOnly: false })).equals(original));
  });

  it('gives a typed error for a file that is not ELF, and for a truncated ELF, never a crash', () => {
    const notElf = Buffer.from('#!/bin/sh\necho this is not a module\n');
    assert.throws(() => moduleIdentity(notElf, '/x/fake.ko'), (e: unknown) => e instanceof ModuleFileError && e.file === '/x/fake.ko' && /not an ELF file/.test(e.message));
    for (const n of [0, 3, 63, 64, 200, original.length >> 1]) {
      assert.throws(() => moduleIdentity(original.subarray(0, n), '/x/cut.ko'), (e: unknown) => e instanceof ModuleFileError && e.file === '/x/cut.ko', `cut at ${n}`);
    }
    // Bytes flipped all over the header and section table: an identity or a ModuleFileError, nothing else.
    for (let seed = 1; seed <= 300; seed++) {
      const b = Buffer.from(original);
      for (let k = 0; k < 8; k++) {
        const at = (seed * 7919 + k * 104729) % b.length;
        b[k < 4 ? at % 64 : at] ^= (seed * 31 + k) & 0xff;
      }
      try {
        moduleIdentity(b, '/x/fuzz.ko');
      } catch (e) {
        assert.ok(e instanceof ModuleFileError, `seed ${seed}: ${(e as Error).stack}`);
      }
    }
  });

  it('chooses the loaded build: rejects other build IDs and names, prefers a file with DWARF', async () => {
    const stripped = fresh('choose/lib-modules');
    const full = fresh('choose/usr-lib-debug');
    const other = fresh('choose/other');
    tool('objcopy', ['--strip-debug', ko, path.join(stripped, `${oracle.name}.ko`)], 'binutils');
    fs.copyFileSync(ko, path.join(full, `${oracle.name}.ko`));
    // A file with this module's name whose .modinfo names another module.
    const impostor = Buffer.from(original);
    const at = impostor.indexOf(Buffer.from(`name=${oracle.name}\0`));
    assert.ok(at > 0);
    impostor.write('x', at + 5, 'latin1');
    fs.writeFileSync(path.join(other, `${oracle.name}.ko`), impostor);

    const index = new ModuleFileIndex([other, stripped, full]);
    const hit = await findModuleFile(index, { name: oracle.name, buildId: oracle.buildId.toUpperCase() });
    assert.equal(hit.file?.matchedBy, 'build-id');
    assert.equal(hit.file?.candidate.path, path.join(moduleIdentity(original, ko).hasDebugInfo ? full : stripped, `${oracle.name}.ko`));
    assert.ok(hit.file?.bytes.length);
    assert.deepEqual(hit.rejected.map((r) => r.path), [path.join(other, `${oracle.name}.ko`)]);
    assert.match(hit.rejected[0].reason, /^it is module x/);

    const miss = await findModuleFile(index, { name: oracle.name, buildId: '00'.repeat(20) });
    assert.equal(miss.file, undefined);
    assert.equal(miss.rejected.length, 3);
    assert.match(miss.rejected[1].reason, new RegExp(`build ID ${oracle.buildId} is not the loaded module's 0000`));
    assert.deepEqual(miss.searched, [other, stripped, full]);

    // Nothing to compare with: the name decides, and the file with DWARF still wins.
    const byName = await findModuleFile(new ModuleFileIndex([stripped, full]), { name: oracle.name });
    assert.equal(byName.file?.matchedBy, 'name');
  });

  it('builds the default folder list: existing folders only, each once, a build tree only beside vmlinux', () => {
    const tree = fresh('defaults/linux');
    fs.writeFileSync(path.join(tree, 'Makefile'), '');
    fs.writeFileSync(path.join(tree, '.config'), '');
    fs.writeFileSync(path.join(tree, 'vmlinux'), '');
    const home = fresh('defaults/home');
    fs.writeFileSync(path.join(home, 'vmlinux'), '');
    const user = fresh('defaults/user');
    fs.symlinkSync(user, path.join(tmp, 'defaults/user-link'));
    assert.deepEqual(
      defaultModuleDirs({ modulePaths: [user, path.join(tmp, 'defaults/nope')], vmlinux: path.join(tree, 'vmlinux'), extra: [path.join(tmp, 'defaults/user-link'), tree], release: 'no-such-release' }),
      [user, tree],
    );
    // A vmlinux outside a build tree (a copy in $HOME) must not make the whole folder searched.
    assert.deepEqual(defaultModuleDirs({ vmlinux: path.join(home, 'vmlinux') }), []);
    // The release comes from guest memory; '..' would make /lib a search folder.
    assert.deepEqual(defaultModuleDirs({ release: '..' }), []);
  });

  it('walks a large folder quickly', function () {
    const g = cachedGuest('x86_64');
    if (!g) this.skip();
    // Documentation/ of the sample tree: ~9,500 entries, and no modules.order to read instead.
    const index = new ModuleFileIndex([path.join(g.source, 'Documentation')]);
    index.find(oracle.name);
    const s = index.stats();
    assert.ok(s.entries > 5_000, `walked only ${s.entries} entries`);
    // About 0.03 s warm on 2 cores; the bound only catches a walk gone quadratic or following links.
    assert.ok(s.ms < 15_000, `the walk took ${s.ms} ms`);
  });

  it("reads a kernel build tree's modules.order instead of walking it", function () {
    const g = cachedGuest('x86_64');
    if (!g) this.skip();
    const index = new ModuleFileIndex([g.source]);
    index.find(oracle.name);
    assert.ok(index.stats().entries < 1000, `entries: ${index.stats().entries}: the tree was walked`);
    // A tree of our own: what modules.order lists is found (.ko up to 6.1, .o from 6.2); a stray .ko is not.
    const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-tree-'));
    try {
      fs.writeFileSync(path.join(tree, 'Makefile'), '');
      fs.writeFileSync(path.join(tree, '.config'), '');
      fs.mkdirSync(path.join(tree, 'drivers/misc'), { recursive: true });
      fs.copyFileSync(ko, path.join(tree, 'drivers/misc/qkd_sample.ko'));
      fs.copyFileSync(ko, path.join(tree, 'drivers/misc/qkd-other.ko'));
      fs.copyFileSync(ko, path.join(tree, 'stray.ko'));
      // An external module's build (M=) writes absolute paths.
      fs.writeFileSync(path.join(tree, 'modules.order'), `drivers/misc/qkd_sample.ko\n${path.join(tree, 'drivers/misc/qkd-other.o')}\n`);
      const t = new ModuleFileIndex([tree]);
      assert.deepEqual(t.find('qkd_sample').map((c) => c.path), [path.join(tree, 'drivers/misc/qkd_sample.ko')]);
      assert.deepEqual(t.find('qkd_other').map((c) => c.path), [path.join(tree, 'drivers/misc/qkd-other.ko')]);
      assert.deepEqual(t.find('stray'), []);
    } finally {
      fs.rmSync(tree, { recursive: true, force: true });
    }
  });
});

/** The bytes with one in the middle of the compressed data changed. */
function flip(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out[out.length >> 1] ^= 0x55;
  return out;
}
