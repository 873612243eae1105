/**
 * dist/cli.js, the `qkd` binary: picks the bundle a command needs, so `qkd where` and `qkd
 * decode` (cold starts the benchmarks time against gdb and decode_stacktrace.sh) load a
 * fraction of the code the commands that boot a guest do. It imports nothing itself, so it stays a few hundred bytes.
 */
const LIGHT: Record<string, string> = { where: 'cli-where.js', decode: 'cli-decode.js' };
const bundle = LIGHT[process.argv[2] ?? ''] ?? 'cli-main.js';
require(`${__dirname}/${bundle}`);

export {};
