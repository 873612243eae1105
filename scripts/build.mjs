// Bundles the extension, the standalone debug adapter and the CLI with esbuild.
import * as esbuild from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
  minify: process.argv.includes('--minify'),
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] }),
  // Launch-configuration checks, loaded by the extension at the first configuration (src/extension/config.ts).
  esbuild.build({ ...common, entryPoints: ['src/extension/configcheck.ts'], outfile: 'dist/configcheck.js', external: ['vscode'] }),
  // The adapter: a launcher that turns on eager compilation (see src/adapter/entry.ts), then the adapter itself.
  esbuild.build({ ...common, entryPoints: ['src/adapter/entry.ts'], outfile: 'dist/adapter.js' }),
  esbuild.build({ ...common, entryPoints: ['src/adapter/main.ts'], outfile: 'dist/adapter-main.js' }),
  // The adapter inside the extension host (the default): a loader that compiles it eagerly, then the adapter as a library.
  esbuild.build({ ...common, entryPoints: ['src/adapter/inline.ts'], outfile: 'dist/adapter-inline.js' }),
  esbuild.build({ ...common, entryPoints: ['src/adapter/lib.ts'], outfile: 'dist/adapter-lib.js' }),
  // `qkd` makes no TLS connection, and node reads NODE_EXTRA_CA_CERTS's whole bundle as it
  // starts (80 ms on a machine that sets it to the system store): the shebang drops it.
  // `qkd` is a small launcher that loads one of three bundles: `where` and `decode` need only
  // the symbol readers, and a cold start should not compile the engine, adapter and QEMU code for them.
  esbuild.build({ ...common, entryPoints: ['src/cli/qkd.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node --max-semi-space-size=2' } }),
  esbuild.build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli-main.js' }),
  esbuild.build({ ...common, entryPoints: ['src/cli/wheremain.ts'], outfile: 'dist/cli-where.js' }),
  // Both from V8's code cache (src/util/codecache.ts): they start once per use.
  esbuild.build({ ...common, entryPoints: ['src/cli/decodeentry.ts'], outfile: 'dist/cli-decode.js' }),
  esbuild.build({ ...common, entryPoints: ['src/cli/decodemain.ts'], outfile: 'dist/cli-decode-main.js' }),
  // What a decode loads only at need: the DWARF readers (no code map for a file) and the sample guest's paths (no --vmlinux).
  esbuild.build({ ...common, entryPoints: ['src/engine/decode/dwarfside.ts'], outfile: 'dist/decode-dwarf.js' }),
  esbuild.build({ ...common, entryPoints: ['src/guest/build.ts'], outfile: 'dist/cli-guest.js' }),
  // The kernel-log language server, a process of its own (src/lsp/main.ts), and its client,
  // which the extension loads only when a kernel log opens (src/extension/kernellog.ts).
  esbuild.build({ ...common, entryPoints: ['src/lsp/entry.ts'], outfile: 'dist/lsp.js' }),
  esbuild.build({ ...common, entryPoints: ['src/lsp/main.ts'], outfile: 'dist/lsp-main.js', alias: { crypto: './src/util/lazycrypto.ts', child_process: './src/util/lazychild.ts' } }),
  // Its decoder and disassembler, loaded at the first link or hover (src/lsp/decoding.ts).
  esbuild.build({ ...common, entryPoints: ['src/lsp/decoding.ts'], outfile: 'dist/lsp-decode.js' }),
  esbuild.build({ ...common, entryPoints: ['src/extension/lspclient.ts'], outfile: 'dist/lspclient.js', external: ['vscode'] }),
  // The symbol index worker: loaded by path from next to whichever bundle starts it.
  esbuild.build({ ...common, entryPoints: ['src/symbols/index/indexworker.ts'], outfile: 'dist/indexworker.js' }),
]);

await import('node:fs').then((fs) => fs.chmodSync('dist/cli.js', 0o755));

// The disassembler (Capstone as wasm) loads capstone.wasm from next to the bundle, on first use.
await import('node:fs').then((fs) => fs.copyFileSync('node_modules/@alexaltea/capstone-js/dist/capstone.wasm', 'dist/capstone.wasm'));

// The language client ends its server with this script, which it looks for beside itself.
await import('node:fs').then((fs) => {
  fs.copyFileSync('node_modules/vscode-languageclient/lib/node/terminateProcess.sh', 'dist/terminateProcess.sh');
  fs.chmodSync('dist/terminateProcess.sh', 0o755);
});
