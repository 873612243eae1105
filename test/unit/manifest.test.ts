/**
 * package.json as VS Code and vsce read it: commands titled and categorised and handled,
 * every contributed file present, the walkthrough complete, activation lazy.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from '../support/env';

interface Command {
  command: string;
  title?: string;
  category?: string;
  icon?: string | { light: string; dark: string };
  enablement?: string;
}
interface Step {
  id: string;
  title?: string;
  description?: string;
  media?: { image?: string | Record<string, string>; svg?: string; markdown?: string; altText?: string };
  completionEvents?: string[];
}
interface Manifest {
  main: string;
  icon?: string;
  activationEvents: string[];
  files?: string[];
  contributes: {
    commands: Command[];
    menus?: Record<string, Array<{ command: string; when?: string }>>;
    walkthroughs?: Array<{ id: string; title: string; description: string; steps: Step[] }>;
    configuration?: { properties: Record<string, { type: string; default?: unknown }> } | Array<{ properties: Record<string, { type: string; default?: unknown }> }>;
    [k: string]: unknown;
  };
}

const manifest = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as Manifest;
const exists = (rel: string): boolean => fs.existsSync(path.join(REPO, rel));

/** Every string under `contributes` that names a file: `path`, walkthrough media, file icons. */
function contributedFiles(node: unknown, key = '', trail = 'contributes'): Array<{ at: string; file: string }> {
  if (typeof node === 'string') {
    const fileKey = ['path', 'svg', 'markdown', 'image', 'light', 'dark'].includes(key) || (key === 'icon' && !node.startsWith('$('));
    return fileKey && !/^https?:/.test(node) ? [{ at: trail, file: node }] : [];
  }
  if (Array.isArray(node)) return node.flatMap((x, i) => contributedFiles(x, key, `${trail}[${i}]`));
  if (node && typeof node === 'object') {
    return Object.entries(node as Record<string, unknown>).flatMap(([k, v]) =>
      // JSON schemas of launch attributes describe fields; their keys are not file names.
      k === 'configurationAttributes' || k === 'properties' ? [] : contributedFiles(v, k, `${trail}.${k}`),
    );
  }
  return [];
}

function sourcesUnder(dir: string): string {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .map((e) => (e.isDirectory() ? sourcesUnder(path.join(dir, e.name)) : e.name.endsWith('.ts') ? fs.readFileSync(path.join(dir, e.name), 'utf8') : ''))
    .join('\n');
}

describe('package.json manifest', () => {
  const commands = manifest.contributes.commands;

  it('gives every command a title and the "QEMU Kernel" category', () => {
    assert.ok(commands.length >= 4);
    for (const c of commands) {
      assert.ok(c.title && c.title.trim(), `${c.command} has a title`);
      assert.equal(c.category, 'QEMU Kernel', `${c.command} category`);
      assert.match(c.command, /^qemuKernel\./);
    }
    assert.equal(new Set(commands.map((c) => c.command)).size, commands.length, 'no command twice');
  });

  it('contributes the session commands, shown only when they can work', () => {
    const palette = new Map((manifest.contributes.menus?.commandPalette ?? []).map((m) => [m.command, m.when]));
    for (const id of ['qemuKernel.restartGuest', 'qemuKernel.openMonitor', 'qemuKernel.copyQemuCommandLine']) {
      assert.ok(commands.some((c) => c.command === id), `${id} is contributed`);
      assert.equal(palette.get(id), 'qemuKernel.ownsQemu', `${id} is in the palette only while the session owns a QEMU`);
    }
    assert.equal(palette.get('qemuKernel.activationTime'), 'false', 'the measurement command stays out of the palette');
    assert.ok(commands.some((c) => c.command === 'qemuKernel.showGuestConsole'));
  });

  it('has a handler for every contributed command, and menus name only contributed commands', () => {
    const src = sourcesUnder(path.join(REPO, 'src', 'extension')) + sourcesUnder(path.join(REPO, 'src', 'ui'));
    // A command id may be a constant of the file that registers it.
    const constants = new Map([...src.matchAll(/const (\w+) = ['"]([\w.]+)['"]/g)].map((m) => [m[1], m[2]]));
    const registered = new Set([...src.matchAll(/registerCommand\(\s*(?:['"]([\w.]+)['"]|(\w+)\s*,)/g)].map((m) => m[1] ?? constants.get(m[2]) ?? m[2]));
    for (const c of commands) assert.ok(registered.has(c.command), `${c.command} is registered by the extension`);
    const ids = new Set(commands.map((c) => c.command));
    for (const [menu, items] of Object.entries(manifest.contributes.menus ?? {})) {
      for (const item of items) assert.ok(ids.has(item.command), `${menu} names ${item.command}, which is contributed`);
    }
  });

  it('names only files that exist (grammars, icons, walkthrough media)', () => {
    const files = contributedFiles(manifest.contributes);
    assert.ok(files.some((f) => f.file.includes('syntaxes/')), 'the grammar path is among them');
    const missing = files.filter((f) => !exists(f.file)).map((f) => `${f.at}: ${f.file}`);
    assert.deepEqual(missing, []);
    if (manifest.icon) assert.ok(exists(manifest.icon), `icon ${manifest.icon}`);
  });

  it('has a Getting Started walkthrough of 4–5 steps, each with media and completion events', () => {
    const w = manifest.contributes.walkthroughs ?? [];
    assert.equal(w.length, 1);
    assert.equal(w[0].title, 'Debug a Linux kernel under QEMU');
    assert.ok(w[0].steps.length >= 4 && w[0].steps.length <= 5, `${w[0].steps.length} steps`);
    assert.equal(new Set(w[0].steps.map((s) => s.id)).size, w[0].steps.length, 'step ids are unique');
    const ids = new Set(commands.map((c) => c.command));
    for (const s of w[0].steps) {
      assert.ok(s.title && s.description, `${s.id} has a title and description`);
      const media = s.media ?? {};
      const file = media.svg ?? media.markdown ?? (typeof media.image === 'string' ? media.image : undefined);
      assert.ok(file, `${s.id} has media`);
      assert.ok(file.startsWith('media/walkthrough/'), `${s.id}'s media lives in media/walkthrough/`);
      assert.ok(exists(file), `${s.id}: ${file} exists`);
      assert.ok(fs.statSync(path.join(REPO, file)).size < 16 * 1024, `${file} stays small`);
      if (media.svg || media.image) assert.ok(media.altText, `${s.id} has alt text`);
      assert.ok((s.completionEvents ?? []).length > 0, `${s.id} has completion events`);
      for (const e of s.completionEvents ?? []) assert.match(e, /^(onCommand|onContext|onView|onSettingChanged|onLink|onStepSelected|extensionInstalled):.+/);
      // Buttons that run our own commands must name commands we contribute.
      for (const m of (s.description ?? '').matchAll(/\(command:(qemuKernel\.[\w.]+)\)/g)) assert.ok(ids.has(m[1]), `${s.id} links ${m[1]}`);
      for (const e of s.completionEvents ?? []) if (e.startsWith('onCommand:qemuKernel.')) assert.ok(ids.has(e.slice('onCommand:'.length)), `${s.id}: ${e}`);
    }
    const svgs = w[0].steps.map((s) => s.media?.svg).filter((x): x is string => !!x);
    for (const f of svgs) assert.match(fs.readFileSync(path.join(REPO, f), 'utf8'), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* viewBox=/, `${f} is a scalable SVG`);
  });

  it('activates lazily: no "*", no onStartupFinished, only debug, command, kernel-log and initramfs-list language events', () => {
    const ev = manifest.activationEvents;
    assert.ok(ev.length > 0);
    for (const e of ev) {
      assert.notEqual(e, '*');
      assert.notEqual(e, 'onStartupFinished');
      // onLanguage: a kernel log (or a .log that may be one), or an initramfs list, opening; the glue it loads is small.
      assert.match(e, /^(onDebugResolve|onDebugInitialConfigurations|onDebugDynamicConfigurations|onDebugAdapterProtocolTracker|onDebug|onCommand|onView|onWalkthrough|onLanguage:linux-kernel-log|onLanguage:log|onLanguage:initramfs-list)(:|$)/, e);
    }
    assert.ok(ev.includes('onDebugResolve:qemu-kernel'));
  });

  it('declares the RSP trace setting, off by default', () => {
    const cfg = manifest.contributes.configuration;
    const props = Array.isArray(cfg) ? Object.assign({}, ...cfg.map((c) => c.properties)) : (cfg?.properties ?? {});
    assert.deepEqual({ type: props['qemuKernel.trace.rsp']?.type, default: props['qemuKernel.trace.rsp']?.default }, { type: 'boolean', default: false });
  });

  it('packages with one file list: .vscodeignore, not also package.json "files" (vsce refuses both)', () => {
    assert.ok(exists('.vscodeignore'));
    assert.equal(manifest.files, undefined);
    assert.equal(manifest.main, './dist/extension.js');
  });
});
