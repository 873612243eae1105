// Runs in a fresh node process per sample (bench/measures/activation.mjs): loads
// dist/extension.js against a stand-in 'vscode' module, calls activate(), and prints the
// require and activate() times as JSON. The stand-in does no UI work, so this is the
// extension's own cost; the real host adds its own (the E2E tier records that).
// Anything the extension touches on the stand-in answers with another stand-in: callable,
// constructible, iterable as empty, never a thenable.
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
const hwmKb = Number(/^VmHWM:\s+(\d+)/m.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))?.[1]);
process.stdout.write(JSON.stringify({ require: t1 - t0, activate: t2 - t1, own, hwmKb, commands: commands.size, subscriptions: context.subscriptions.length }));
