/**
 * dist/adapter.js, the debug adapter as VS Code starts it: it has V8 compile the adapter up
 * front, then loads it (dist/adapter-main.js).
 *
 * V8 compiles a function the first time it runs. A step runs code that a session runs only a
 * handful of times, and compiling it on the way cost ~1 ms of each of the first steps, half
 * of a step over a short line (bench/README.md, P4). Compiling the whole bundle at start
 * costs ~20 ms once, before the launch request. Bytecode is kept for the session too, so a
 * step after a long look at a stop isn't compiled again.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-lazy');
setFlagsFromString('--no-flush-bytecode');
require(`${__dirname}/adapter-main.js`);

export {};
