/**
 * `npm run package` builds a .vsix holding only what runs, small, with a README whose images
 * resolve outside the repository, and an extension bundle that leaves the engine to the
 * adapter. Slow for a unit (esbuild + vsce), so it lives here.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO, requireOrSkip } from '../support/env';

const MAX_BYTES = 5 * 1024 * 1024;

/** Every entry is one of these: vsce's own two files, then the extension's. */
const ALLOWED = [
  /^\[Content_Types\]\.xml$/,
  /^extension\.vsixmanifest$/,
  /^extension\/package\.json$/,
  /^extension\/(readme|README)\.md$/,
  /^extension\/(changelog|CHANGELOG)\.md$/,
  /^extension\/LICENSE(\.txt|\.md)?$/,
  /^extension\/dist\/[^/]+\.(js|wasm)$/,
  // vscode-languageclient ends the language server with this script, found beside its bundle.
  /^extension\/dist\/terminateProcess\.sh$/,
  /^extension\/syntaxes\/[^/]+$/,
  /^extension\/media\/.+[^/]$/,
  // The sample module's sources, which the guest builder compiles against the sample kernel.
  /^extension\/examples\/sample-module\/.+[^/]$/,
];

function unzip(args: string[]): string {
  const r = spawnSync('unzip', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`unzip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('packaging: npm run package', function () {
  this.timeout(180_000);
  let dir: string;
  let vsix: string;
  let entries: string[];

  before(function () {
    requireOrSkip(this, spawnSync('unzip', ['-v']).status === 0, 'unzip is not installed (apt-get install unzip)');
    requireOrSkip(this, fs.existsSync(path.join(REPO, 'node_modules', '.bin', 'vsce')), '@vscode/vsce is not installed (npm ci)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-vsix-'));
    vsix = path.join(dir, 'qemu-kernel-debug.vsix');
    // The script itself, as a user runs it: the esbuild build, then vsce; --out redirects it.
    const r = spawnSync('npm', ['run', '--silent', 'package', '--', '--out', vsix], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(r.status, 0, `npm run package failed:\n${r.stdout}\n${r.stderr}`);
    entries = unzip(['-Z1', vsix]).split('\n').filter(Boolean);
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names the default output qemu-kernel-debug-<version>.vsix', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { name: string; version: string; scripts: Record<string, string> };
    assert.equal(pkg.name, 'qemu-kernel-debug');
    // No --out in the script: vsce's default name is <name>-<version>.vsix.
    assert.doesNotMatch(pkg.scripts.package, /(^|\s)(-o|--out)\s/);
    assert.match(pkg.scripts.package, /^node scripts\/build\.mjs && vsce package .*--no-dependencies/);
  });

  it('holds only what runs: the bundles, syntaxes, media, manifest and docs', () => {
    const stray = entries.filter((e) => !ALLOWED.some((re) => re.test(e)));
    assert.deepEqual(stray, []);
    for (const need of ['extension/dist/extension.js', 'extension/dist/configcheck.js', 'extension/dist/adapter.js', 'extension/dist/adapter-main.js', 'extension/dist/adapter-inline.js', 'extension/dist/adapter-lib.js', 'extension/dist/indexworker.js', 'extension/dist/lsp.js', 'extension/dist/lsp-main.js', 'extension/dist/lsp-decode.js', 'extension/dist/decode-dwarf.js', 'extension/dist/lspclient.js', 'extension/dist/terminateProcess.sh', 'extension/package.json', 'extension.vsixmanifest']) {
      assert.ok(entries.includes(need), `${need} is packaged`);
    }
    assert.ok(!entries.some((e) => e.endsWith('.map') || e.includes('/src/') || e.includes('node_modules/') || e.includes('/test')), 'no sources, maps, tests or node_modules');
    assert.ok(entries.some((e) => e.startsWith('extension/media/walkthrough/')), 'the walkthrough media');
  });

  it('stays under 5 MB', () => {
    const size = fs.statSync(vsix).size;
    assert.ok(size <= MAX_BYTES, `${(size / 1024 / 1024).toFixed(2)} MB`);
  });

  it("rewrites the README's images to absolute URLs, so they show outside the repository", () => {
    const readme = unzip(['-p', vsix, entries.find((e) => /^extension\/readme\.md$/i.test(e)) as string]);
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)/g)].map((m) => m[1]);
    assert.ok(images.length > 0);
    for (const img of images) assert.match(img, /^https:\/\//, img);
  });

  it('ships an extension bundle that leaves the engine to the adapter', () => {
    const ext = unzip(['-p', vsix, 'extension/dist/extension.js']);
    assert.ok(ext.length < 200 * 1024, `dist/extension.js is ${(ext.length / 1024).toFixed(0)} KB`);
    // esbuild marks each bundled module with a `// path` comment.
    const modules = [...ext.matchAll(/^\/\/ ((?:src|node_modules)\/\S+)$/gm)].map((m) => m[1]);
    assert.ok(modules.includes('src/extension/extension.ts'));
    // The one guest module the editor needs: the initramfs list reader behind its diagnostics (text, no I/O beyond a stat).
    const engine = modules.filter((m) => /^src\/(engine|symbols|rsp|guest)\/(?!cpiolist\.ts)|^src\/adapter\/(?!events\.ts)|^node_modules\/@vscode\/debugadapter/.test(m));
    assert.deepEqual(engine, []);
    const pkg = JSON.parse(unzip(['-p', vsix, 'extension/package.json'])) as { main: string; activationEvents: string[] };
    assert.equal(pkg.main, './dist/extension.js');
    assert.ok(!pkg.activationEvents.includes('*') && !pkg.activationEvents.includes('onStartupFinished'));
  });
});
