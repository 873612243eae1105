/**
 * V8's code cache for the bundles that start once per use (src/util/codecache.ts): a run
 * makes it, the next uses it without writing it again, a damaged one is rejected and
 * replaced, and the folder and file are the user's own (0700, 0600). Real node processes.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from '../support/env';

describe('code cache for short-lived bundles', () => {
  let dir = '';
  let target = '';
  let runner = '';
  const run = (): string => execFileSync(process.execPath, [runner], { encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache') } });
  const cacheDir = (): string => path.join(dir, 'cache', 'qemu-kernel-debug', 'v8');
  const cacheFiles = (): string[] => (fs.existsSync(cacheDir()) ? fs.readdirSync(cacheDir()) : []);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-codecache-'));
    target = path.join(dir, 'bundle.js');
    fs.writeFileSync(target, 'const p = require("node:path");\nfunction twice(x) { return x * 2; }\nconsole.log("ran", p.basename(__filename), twice(21), module.id === __filename);\n');
    runner = path.join(dir, 'run.js');
    fs.writeFileSync(runner, `require(${JSON.stringify(path.join(REPO, 'out', 'src', 'util', 'codecache.js'))}).requireCached(${JSON.stringify(target)}, 'exit');\n`);
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs the bundle as require would, and leaves its cache in a private folder', () => {
    assert.equal(run().trim(), 'ran bundle.js 42 true');
    const files = cacheFiles();
    assert.equal(files.length, 1);
    assert.match(files[0], new RegExp(`^bundle\\.js-${fs.statSync(target).size}-\\d+\\.bin$`));
    assert.equal(fs.statSync(cacheDir()).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(cacheDir(), files[0])).mode & 0o777, 0o600);
    assert.ok(fs.statSync(path.join(cacheDir(), files[0])).size > 0);
  });

  it('uses the cache on the next run without writing it again', () => {
    const file = path.join(cacheDir(), cacheFiles()[0]);
    const before = fs.readFileSync(file);
    const mtime = fs.statSync(file).mtimeMs;
    assert.equal(run().trim(), 'ran bundle.js 42 true');
    assert.equal(fs.statSync(file).mtimeMs, mtime, 'an accepted cache is left as it was');
    assert.deepEqual(fs.readFileSync(file), before);
  });

  it('rejects a damaged cache, runs the bundle anyway and writes a good one', () => {
    const file = path.join(cacheDir(), cacheFiles()[0]);
    const good = fs.readFileSync(file);
    fs.writeFileSync(file, Buffer.alloc(good.length, 0x5a));
    assert.equal(run().trim(), 'ran bundle.js 42 true');
    assert.notDeepEqual(fs.readFileSync(file), Buffer.alloc(good.length, 0x5a));
    assert.ok(fs.readFileSync(file).length > 0);
  });

  it('a changed bundle gets a cache of its own, and the old one goes', () => {
    fs.appendFileSync(target, '// changed\n');
    assert.equal(run().trim(), 'ran bundle.js 42 true');
    const files = cacheFiles();
    assert.equal(files.length, 1);
    assert.match(files[0], new RegExp(`^bundle\\.js-${fs.statSync(target).size}-`));
  });
});
