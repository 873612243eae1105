#!/usr/bin/env node
// Extension activation cost, outside VS Code: each run is a fresh node process that loads
// dist/extension.js against a stand-in 'vscode' module and calls activate(). Reports the
// median over the runs of: require (loading and evaluating the bundle), activate() as timed
// from outside, and activate() as the extension times itself (qemuKernel.activationTime).
// The stand-in does no UI work, so this is the extension's own cost; the real host adds
// its own (E2E tier).
//
//   node bench/activation.mjs [runs=20] [--json]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(repo, 'dist', 'extension.js');

// Runs in each child. Anything the extension touches on the stand-in answers with another
// stand-in: callable, constructible, iterable as empty, never a thenable.
const child = String.raw`
const Module = require('node:module');
const { performance } = require('node:perf_hooks');
const commands = new Map();
function stub(name) {
  const fn = function () {};
  const props = new Map();
  return new Proxy(fn, {
    set(_t, prop, value) { props.set(prop, value); return true; },
    get(_t, prop) {
      if (props.has(prop)) return props.get(prop);
      if (prop === 'then') return undefined;
      if (prop === Symbol.toPrimitive) return () => name;
      if (prop === Symbol.iterator) return function* () {};
      if (prop === 'dispose') return () => undefined;
      return stub(name + '.' + String(prop));
    },
    apply() { return stub(name + '()'); },
    construct() { return stub('new ' + name); },
  });
}
const disposable = { dispose() {} };
const within = (name, own) => new Proxy(own, { get: (t, p) => (p in t ? t[p] : stub(name + '.' + String(p))) });
// A bundle copies the module's own properties at require time, so every name the API has
// must be an own property here.
const vscode = {
  commands: within('commands', {
    registerCommand(id, cb) { commands.set(id, cb); return disposable; },
    executeCommand: async () => undefined,
  }),
  workspace: within('workspace', { getConfiguration: () => ({ get: (_k, d) => d }) }),
  EventEmitter: class { constructor() { this.event = () => disposable; } fire() {} dispose() {} },
  Disposable: class { constructor(f) { this.f = f; } dispose() { this.f?.(); } static from() { return disposable; } },
  StatusBarAlignment: { Left: 1, Right: 2 },
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  DebugConfigurationProviderTriggerKind: { Initial: 1, Dynamic: 2 },
};
for (const name of ['window', 'debug', 'env', 'extensions', 'languages', 'tasks', 'l10n', 'Uri', 'ThemeIcon', 'ThemeColor', 'TreeItem',
  'MarkdownString', 'DebugAdapterExecutable', 'DebugAdapterInlineImplementation', 'DebugStackFrame', 'DebugThread', 'FunctionBreakpoint',
  'SourceBreakpoint', 'Location', 'Position', 'Range', 'Selection', 'RelativePattern', 'CancellationTokenSource']) {
  vscode[name] ??= stub(name);
}
const load = Module._load;
Module._load = function (request, ...rest) {
  return request === 'vscode' ? vscode : load.call(this, request, ...rest);
};
const memento = { get: (_k, d) => d, update: async () => undefined, keys: () => [] };
const context = {
  subscriptions: [],
  asAbsolutePath: (p) => require('node:path').join(process.env.QKD_REPO, p),
  extensionPath: process.env.QKD_REPO,
  logUri: { fsPath: require('node:os').tmpdir() },
  globalStorageUri: { fsPath: require('node:os').tmpdir() },
  workspaceState: memento,
  globalState: { ...memento, setKeysForSync() {} },
  extension: { id: 'qemu-kernel-debug.qemu-kernel-debug', extensionPath: process.env.QKD_REPO, packageJSON: require(require('node:path').join(process.env.QKD_REPO, 'package.json')) },
  extensionUri: { fsPath: process.env.QKD_REPO },
  storageUri: undefined,
  secrets: stub('secrets'),
  environmentVariableCollection: stub('environmentVariableCollection'),
};
const t0 = performance.now();
const ext = require(process.env.QKD_BUNDLE);
const t1 = performance.now();
ext.activate(context);
const t2 = performance.now();
const own = commands.get('qemuKernel.activationTime')?.();
process.stdout.write(JSON.stringify({ require: t1 - t0, activate: t2 - t1, own, commands: commands.size, subscriptions: context.subscriptions.length }));
`;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const runs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 20);
const json = process.argv.includes('--json');
if (!fs.existsSync(bundle)) {
  console.error(`${bundle} is missing; run: node scripts/build.mjs`);
  process.exit(1);
}
const results = [];
for (let i = 0; i < runs; i++) {
  const r = spawnSync(process.execPath, ['-e', child], { env: { ...process.env, QKD_REPO: repo, QKD_BUNDLE: bundle }, encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(r.stderr || r.stdout);
    process.exit(1);
  }
  results.push(JSON.parse(r.stdout));
}
const summary = {
  runs,
  bundleBytes: fs.statSync(bundle).size,
  requireMs: median(results.map((r) => r.require)),
  activateMs: median(results.map((r) => r.activate)),
  activateOwnMs: median(results.map((r) => r.own)),
  totalMs: median(results.map((r) => r.require + r.activate)),
  commands: results[0].commands,
  subscriptions: results[0].subscriptions,
};
if (json) console.log(JSON.stringify(summary));
else {
  const f = (x) => `${x.toFixed(2)} ms`;
  console.log(`dist/extension.js: ${(summary.bundleBytes / 1024).toFixed(1)} KB, ${summary.commands} commands, ${summary.subscriptions} subscriptions`);
  console.log(`median of ${runs} fresh processes: require ${f(summary.requireMs)}, activate() ${f(summary.activateMs)} (its own clock: ${f(summary.activateOwnMs)}), require + activate ${f(summary.totalMs)}`);
}
