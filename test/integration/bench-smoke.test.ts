/**
 * The benchmark stays runnable: `node bench/run.mjs --smoke` imports every module under
 * bench/ (a syntax error or broken import anywhere fails it), then runs one round of the
 * cheapest rows (no guest boot) and prints the table.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REPO, requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { haveGdb } from '../support/gdb';

const run = promisify(execFile);
const BENCH = path.join(REPO, 'bench');
const ROWS = ['P1e', 'P1s', 'P2s', 'P7a'];

function benchFiles(dir = BENCH): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const f = path.join(dir, e.name);
    if (e.isDirectory()) return benchFiles(f);
    return /\.(mjs|cjs|js|sh)$/.test(e.name) ? [path.relative(BENCH, f)] : [];
  });
}

describe('bench: node bench/run.mjs --smoke', function () {
  this.timeout(120_000);

  it('loads every bench module, exits 0 and prints the table with the cheapest rows', async function () {
    requireBuilt(this);
    sampleGuest(this);
    requireOrSkip(this, haveGdb(), 'gdb is not installed (bash scripts/setup.sh)');
    requireOrSkip(this, fs.existsSync('/usr/bin/time'), 'GNU time is not installed (apt-get install time)');
    const { stdout, stderr } = await run(process.execPath, [path.join(BENCH, 'run.mjs'), '--smoke'], { cwd: REPO, timeout: 110_000, maxBuffer: 16 << 20 }).catch((e: { code?: number; stdout?: string; stderr?: string }) => {
      throw new Error(`bench --smoke exited ${e.code}\nstdout:\n${e.stdout}\nstderr:\n${(e.stderr ?? '').slice(-3000)}`);
    });
    const loaded = /^bench: smoke: every bench module loads \((\d+): (.*)\)$/m.exec(stderr);
    assert.ok(loaded, `no "every bench module loads" line on stderr:\n${stderr}`);
    const files = benchFiles();
    assert.ok(files.includes('run.mjs') && files.includes(path.join('lib', 'host.mjs')), files.join(', '));
    assert.deepEqual(loaded[2].split(', ').sort(), files.sort());

    const lines = stdout.trim().split('\n');
    assert.match(lines[0], /^\| id \| what \| ours median \(min–max\) \| ours peak RSS \| gdb median \(min–max\) \| gdb peak RSS \| ratio \| target \| met \|$/);
    assert.match(lines[1], /^\|---(\|---)+\|$/);
    const rows = lines.slice(2).filter((l) => l.startsWith('| '));
    assert.deepEqual(
      rows.map((l) => l.split(' | ')[0].slice(2)),
      ROWS,
      stdout,
    );
    for (const row of rows) {
      const cells = row.split(' | ');
      // ours' median is a time, e.g. "44 ms (9.3–66 ms)" or "124 ms (...) net; 210 ms whole".
      assert.match(cells[2], /^-?\d+(\.\d+)? (ms|s) \(/, row);
    }
    assert.doesNotMatch(stdout, /ERROR/);
  });
});
