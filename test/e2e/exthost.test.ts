/**
 * Runs test/vscode/ inside the real extension host of a code-server workbench, through
 * @vscode/test-electron's runTests with our launcher standing in for the Code executable.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';
import { REPO, requireBuilt, requireOrSkip } from '../support/env';
import type { InnerResults } from '../vscode/index';
import { E2E_RESULTS, SAMPLE_WORKSPACE, chromiumMissing, codeServerInstall, freshProfile } from './workbench';

describe('e2e: extension host', function () {
  this.timeout(15 * 60 * 1000);

  it('runs the test/vscode suite inside the real extension host', async function () {
    requireBuilt(this);
    const install = codeServerInstall();
    requireOrSkip(this, typeof install !== 'string', String(install));
    const noChromium = chromiumMissing();
    requireOrSkip(this, noChromium === undefined, String(noChromium));

    const launcher = path.join(__dirname, 'launcher.js');
    // tsc does not keep the executable bit, and test-electron spawns the "executable" directly.
    fs.chmodSync(launcher, 0o755);
    const resultsFile = path.join(E2E_RESULTS, 'exthost', 'results.json');
    const profile = freshProfile(path.join(E2E_RESULTS, 'exthost', 'profile'));
    fs.rmSync(resultsFile, { force: true });

    let runError: unknown;
    try {
      await runTests({
        vscodeExecutablePath: launcher,
        extensionDevelopmentPath: REPO,
        extensionTestsPath: path.join(REPO, 'out', 'test', 'vscode', 'index.js'),
        // A fresh profile under test-results/, not test-electron's default .vscode-test/ in the repo.
        launchArgs: [SAMPLE_WORKSPACE, `--user-data-dir=${profile.userDataDir}`, `--extensions-dir=${profile.extensionsDir}`],
        extensionTestsEnv: {
          QKD_VSCODE_RESULTS: resultsFile,
          // Shorter than this test's own timeout, so the launcher cleans up before mocha gives up.
          QKD_LAUNCHER_TIMEOUT_MS: String(12 * 60 * 1000),
        },
      });
    } catch (e) {
      runError = e;
    }
    const results: InnerResults | undefined = fs.existsSync(resultsFile) ? (JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as InnerResults) : undefined;
    const counts = results ? `${results.passed} passed, ${results.failed} failed${results.skipped ? `, ${results.skipped} skipped` : ''} in the extension host` : 'no results from the extension host';
    if (this.test) this.test.title += ` (${counts})`;
    // eslint-disable-next-line no-console
    for (const line of results?.output ?? []) console.log(`      │ ${line}`);
    assert.ok(results, `${counts}; runTests: ${runError instanceof Error ? runError.message : String(runError)}; see ${path.join(E2E_RESULTS, 'exthost')}`);
    assert.deepEqual(
      results.failures.map((f) => `${f.title}: ${f.error}`),
      [],
      counts,
    );
    assert.ok(results.passed > 0, `${counts}: none ran`);
    assert.equal(runError, undefined, `${counts}, but the run failed: ${runError instanceof Error ? runError.message : String(runError)}`);
  });
});
