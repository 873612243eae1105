/** How a qkd command ends: its exit code, or an error on stderr with the code that says whose fault it was. */
import * as fs from 'node:fs';
import { messageOf, UserError } from '../util/errors';

/**
 * `userFacing` names the errors, besides UserError, that are the user's to fix. Each bundle
 * passes its own classes: an `instanceof` across two bundles would compare two copies.
 */
export function runCli(main: () => Promise<number>, userFacing: (err: unknown) => boolean = () => false): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`qkd: ${messageOf(err)}\n`);
      process.exit(err instanceof UserError || userFacing(err) ? 1 : 70);
    },
  );
}

/**
 * Write to stdout straight through the file descriptor. The first touch of process.stdout
 * builds a stream (for a pipe, a net.Socket with the stream modules behind it), which costs a
 * short command like `qkd where` about as much as its whole symbol lookup.
 */
export function writeStdout(text: string): void {
  const buf = Buffer.from(text, 'utf8');
  for (let done = 0; done < buf.length; ) {
    try {
      done += fs.writeSync(1, buf, done, buf.length - done);
    } catch (e) {
      // A descriptor someone left non-blocking: wait for the reader rather than drop output.
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}
