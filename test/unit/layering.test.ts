/** Only extension/ and ui/ may import vscode: the engine, adapter and CLI run in plain Node. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from '../support/env';

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

describe('layering', () => {
  const src = path.join(REPO, 'src');
  const files = tsFiles(src);

  it('finds the sources', () => assert.ok(files.length > 20));

  it('keeps vscode imports inside src/extension and src/ui', () => {
    const offenders = files.filter((f) => {
      const rel = path.relative(src, f);
      if (/^(extension|ui)\//.test(rel)) return false;
      return /^import(?! type)[^;]*from ['"]vscode['"]|require\(['"]vscode['"]\)/m.test(fs.readFileSync(f, 'utf8'));
    });
    assert.deepEqual(offenders, []);
  });

  it('keeps raw packet strings inside src/rsp', () => {
    const offenders = files.filter((f) => !f.includes(`${path.sep}rsp${path.sep}`) && /\b(request|command|resume)\(\s*['"`](qSupported|qXfer|[gmMpPzZcs]\b|vCont|Hg|qfThreadInfo)/.test(fs.readFileSync(f, 'utf8')));
    assert.deepEqual(offenders.map((f) => path.relative(src, f)), []);
  });

  it('keeps source files under about 600 lines', () => {
    const big = files.filter((f) => fs.readFileSync(f, 'utf8').split('\n').length > 600).map((f) => path.relative(src, f));
    assert.deepEqual(big, []);
  });
});
