/** Running build tools with their output logged and summarized as progress. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { errors } from '../util/errors';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  say: (m: string) => void;
  label: string;
  /** Full output goes here; the tail is shown when the command fails. */
  logFile?: string;
  /** Called for each output line; return a progress message to show, or undefined. */
  onLine?: (line: string) => string | undefined;
}

export function runStreaming(argv: string[], opts: RunOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const log = opts.logFile ? fs.openSync(opts.logFile, 'a') : undefined;
    const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    let partial = '';
    const onData = (d: Buffer): void => {
      if (log !== undefined) fs.writeSync(log, d);
      partial += d.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        const msg = opts.onLine?.(line);
        if (msg) opts.say(msg);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => {
      if (log !== undefined) fs.closeSync(log);
      reject(errors.guestBuild(`${opts.label}: cannot run ${argv[0]}: ${e.message}`));
    });
    child.on('close', (code) => {
      if (log !== undefined) fs.closeSync(log);
      if (code === 0) resolve();
      else reject(errors.guestBuild(`${opts.label} failed (exit ${code})${opts.logFile ? `; full log: ${opts.logFile}` : ''}\n${tail.join('\n')}`));
    });
  });
}
