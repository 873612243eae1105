/**
 * Entry point the extension host loads through --extensionTestsPath: runs every compiled
 * test/vscode/*.test.js with mocha inside the real extension host, where `vscode` is the real
 * API. Counts go to $QKD_VSCODE_RESULTS as JSON, so the outer run can report them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as util from 'node:util';
import Mocha from 'mocha';

export interface InnerResults {
  passed: number;
  failed: number;
  skipped: number;
  failures: Array<{ title: string; error: string }>;
  /** The spec reporter's lines, for the outer run to print. */
  output: string[];
}

/** Activation is once per extension host, so the file that checks it runs before any other. */
const FIRST = 'activation.test.js';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 180000, reporter: 'spec' });
  const files = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.js'))
    .sort((a, b) => (a === FIRST ? -1 : b === FIRST ? 1 : a.localeCompare(b)));
  for (const f of files) mocha.addFile(path.join(__dirname, f));
  const results: InnerResults = { passed: 0, failed: 0, skipped: 0, failures: [], output: [] };
  // The workbench forwards the extension host's console unformatted and mixed with its own
  // logs, so the reporter's lines are also kept, formatted, for the outer run to print.
  const base = Mocha.reporters.Base as unknown as { consoleLog: (...a: unknown[]) => void };
  const consoleLog = base.consoleLog;
  base.consoleLog = (...a: unknown[]) => {
    const line = util.format(...a);
    results.output.push(line);
    consoleLog(line);
  };
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      base.consoleLog = consoleLog;
      const out = process.env.QKD_VSCODE_RESULTS;
      if (out) {
        fs.mkdirSync(path.dirname(out), { recursive: true });
        fs.writeFileSync(out, JSON.stringify(results, null, 2));
      }
      if (failures > 0) reject(new Error(`${failures} extension-host test(s) failed`));
      else if (results.passed === 0) reject(new Error('no extension-host test ran'));
      else resolve();
    });
    runner.on('pass', () => results.passed++);
    runner.on('pending', () => results.skipped++);
    runner.on('fail', (test, err: unknown) => {
      results.failed++;
      results.failures.push({ title: test.fullTitle(), error: err instanceof Error ? err.stack ?? err.message : String(err) });
    });
  });
}
