/**
 * dist/cli.js, the `qkd` binary: picks the bundle a command needs, so `qkd where` (a cold
 * start that the benchmarks time against gdb) loads a fraction of the code the commands that
 * boot a guest do. It imports nothing itself, so it stays a few hundred bytes.
 */
const bundle = process.argv[2] === 'where' ? 'cli-where.js' : 'cli-main.js';
require(`${__dirname}/${bundle}`);

export {};
