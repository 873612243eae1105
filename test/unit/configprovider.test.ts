/**
 * The launch-configuration provider's logic: kernel-tree detection on the real sample
 * guest's build tree (and small trees laid out like arm64 and riscv ones), the configurations
 * offered, and validation against the schema package.json really contributes.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cachedGuest } from '../../src/guest/build';
import { checkAgainstSchema, checkFiles, checkRules, detectKernelTree, initialConfigurations, type DebugConfig, type RequestSchema } from '../../src/extension/configcheck';
import { contributedSchemasFromManifest, manifest } from '../support/manifest';
import { requireOrSkip } from '../support/env';

describe('extension/configcheck: launch configurations', () => {
  let tmp: string;
  const schemas = contributedSchemasFromManifest();
  const launch = schemas.launch as RequestSchema;
  const attach = schemas.attach as RequestSchema;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-tree-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function tree(name: string, files: Record<string, string | Buffer>): string {
    const root = path.join(tmp, name);
    for (const [rel, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), content);
    }
    fs.mkdirSync(root, { recursive: true });
    return root;
  }

  describe('finding a kernel tree', () => {
    it("recognises the sample guest's real build tree: x86_64 from vmlinux's ELF header, and its bzImage", function () {
      const g = cachedGuest('x86_64');
      requireOrSkip(this, g !== undefined, 'the sample guest is not built (run: node dist/cli.js guest build)');
      const t = detectKernelTree(g?.source as string);
      assert.deepEqual(t && { arch: t.arch, kernel: t.kernel, vmlinux: t.vmlinux }, { arch: 'x86_64', kernel: 'arch/x86/boot/bzImage', vmlinux: 'vmlinux' });
      const configs = initialConfigurations(g?.source);
      assert.deepEqual(
        configs.map((c) => c.name),
        ['Debug kernel tree (x86_64)', 'Debug sample guest'],
      );
      assert.equal(configs[0].kernel, '${workspaceFolder}/arch/x86/boot/bzImage');
      assert.equal(configs[0].vmlinux, '${workspaceFolder}/vmlinux');
      assert.deepEqual(checkAgainstSchema(configs[0], launch), []);
      assert.deepEqual(checkRules(configs[0]), []);
    });

    it('takes the arch from the image directory when there is no vmlinux (arm64 Image, riscv Image)', () => {
      assert.deepEqual(detectKernelTree(tree('arm', { 'arch/arm64/boot/Image': 'x' })), { root: path.join(tmp, 'arm'), arch: 'aarch64', kernel: 'arch/arm64/boot/Image', vmlinux: undefined });
      assert.equal(detectKernelTree(tree('rv', { 'arch/riscv/boot/Image': 'x' }))?.arch, 'riscv64');
    });

    it('trusts the vmlinux over a stale image of another arch, and then offers only the sample guest', function () {
      const g = cachedGuest('x86_64');
      requireOrSkip(this, g !== undefined, 'the sample guest is not built');
      const root = tree('mixed', { 'arch/arm64/boot/Image': 'x' });
      fs.symlinkSync(g?.vmlinux as string, path.join(root, 'vmlinux'));
      assert.deepEqual(detectKernelTree(root), { root, arch: 'x86_64', kernel: undefined, vmlinux: 'vmlinux' });
      assert.deepEqual(initialConfigurations(root).map((c) => c.name), ['Debug sample guest']);
    });

    it('finds nothing in an empty folder or one whose vmlinux is not ELF', () => {
      assert.equal(detectKernelTree(tree('empty', {})), undefined);
      assert.equal(detectKernelTree(tree('notelf', { vmlinux: 'not an ELF file at all' })), undefined);
      assert.deepEqual(initialConfigurations(undefined), [{ type: 'qemu-kernel', request: 'launch', name: 'Debug sample guest', sampleGuest: true, breakAt: ['kernel_clone'] }]);
    });
  });

  describe('checking against the contributed schema', () => {
    const base: DebugConfig = { type: 'qemu-kernel', request: 'launch', name: 't', kernel: '/k' };
    const problems = (extra: DebugConfig, schema = launch): string[] => checkAgainstSchema({ ...base, ...extra }, schema).map((p) => p.message);

    it('names a field with an unknown enum value and lists the allowed ones', () => {
      assert.deepEqual(problems({ accel: 'hax' }), ["Launch config field 'accel' has unknown value \"hax\". Use one of: auto, kvm, tcg."]);
      assert.match(problems({ disassemblySyntax: 'masm' })[0], /'disassemblySyntax'.*Use one of: att, intel/);
      assert.match(problems({ arch: 'sparc' })[0], /'arch' has unknown value "sparc"/);
    });

    it('names wrong types, minimums, array items and map values', () => {
      assert.deepEqual(problems({ smp: '2' }), ['Launch config field \'smp\' must be a whole number, not "2".']);
      assert.deepEqual(problems({ smp: 0 }), ["Launch config field 'smp' must be at least 1, not 0."]);
      assert.deepEqual(problems({ qemuArgs: ['-s', 5] }), ["Launch config field 'qemuArgs[1]' must be a string, not 5."]);
      assert.deepEqual(problems({ sourceMap: { '/build': 7 } }), ["Launch config field 'sourceMap./build' must be a string, not 7."]);
      assert.deepEqual(problems({ stopOnEntry: 'yes' }), ['Launch config field \'stopOnEntry\' must be a boolean, not "yes".']);
    });

    it("suggests the field a typo meant, and leaves VS Code's own fields alone", () => {
      assert.deepEqual(problems({ kernal: '/k' }), ["Launch config field 'kernal' is not known. Did you mean 'kernel'?"]);
      assert.deepEqual(problems({ preLaunchTask: 'build', presentation: { hidden: true }, internalConsoleOptions: 'openOnSessionStart' }), []);
    });

    it('describes every field, with a type, for IntelliSense', () => {
      for (const [req, schema] of Object.entries(schemas)) {
        for (const [field, prop] of Object.entries((schema as RequestSchema).properties)) {
          const p = prop as { type?: string; description?: string; enum?: unknown[]; default?: unknown };
          assert.ok(p.type, `${req}.${field} has a type`);
          assert.ok(p.description && p.description.length > 20, `${req}.${field} has a description`);
          if (p.enum && p.default !== undefined) assert.ok(p.enum.includes(p.default), `${req}.${field}'s default is one of its values`);
        }
      }
    });

    it('accepts every snippet and the initial configuration package.json offers', () => {
      const dbg = (manifest() as { contributes: { debuggers: Array<{ type: string; initialConfigurations: DebugConfig[]; configurationSnippets: Array<{ label: string; body: DebugConfig }> }> } }).contributes.debuggers.find((d) => d.type === 'qemu-kernel');
      assert.ok(dbg);
      const labels = dbg.configurationSnippets.map((x) => x.label).join(' | ');
      for (const want of [/sample guest/i, /own kernel tree/i, /running QEMU/i, /virtme-ng/i]) assert.match(labels, want);
      for (const cfg of [...dbg.initialConfigurations, ...dbg.configurationSnippets.map((x) => x.body)]) {
        // Snippet bodies spell variables as ^"${workspaceFolder}…" so the JSON editor keeps them literal.
        const body = Object.fromEntries(Object.entries(cfg).map(([k, v]) => [k, typeof v === 'string' ? v.replace(/^\^"(.*)"$/s, '$1').replace(/\\\$/g, '$') : v])) as DebugConfig;
        const schema = body.request === 'attach' ? attach : launch;
        assert.deepEqual([...checkAgainstSchema(body, schema), ...checkRules(body)], [], `${body.name}: ${JSON.stringify(body)}`);
      }
    });

    it('requires target for attach', () => {
      assert.deepEqual(checkAgainstSchema({ type: 'qemu-kernel', request: 'attach', name: 'a' }, attach).map((p) => p.field), ['target']);
    });
  });

  describe('rules beyond the schema, and files', () => {
    it('needs a kernel unless sampleGuest is set, a size for memory, and a host:port or socket for target', () => {
      assert.deepEqual(checkRules({ request: 'launch' }).map((p) => p.field), ['kernel']);
      assert.deepEqual(checkRules({ request: 'launch', sampleGuest: true }), []);
      assert.match(checkRules({ request: 'launch', sampleGuest: true, memory: 'lots' })[0].message, /'memory' \('lots'\) is not a size.*512M/);
      assert.deepEqual(checkRules({ request: 'launch', sampleGuest: true, memory: '2G' }), []);
      assert.match(checkRules({ request: 'attach', target: 'localhost' })[0].message, /'target' \('localhost'\).*127\.0\.0\.1:1234/);
      assert.deepEqual(checkRules({ request: 'attach', target: '127.0.0.1:1234' }), []);
      assert.deepEqual(checkRules({ request: 'attach', target: '/run/qkd/gdb.sock' }), []);
      assert.deepEqual(checkRules({ request: 'debug' }).map((p) => p.field), ['request']);
    });

    it('names a missing file by its field, and ignores kernel paths when the sample guest supplies them', () => {
      const missing = path.join(tmp, 'no-such-bzImage');
      assert.deepEqual(checkFiles({ request: 'launch', kernel: missing }).map((p) => p.message), [`Launch config field 'kernel': file '${missing}' does not exist. Build the kernel (make -j$(nproc)) or fix the path.`]);
      assert.deepEqual(checkFiles({ request: 'launch', sampleGuest: true, kernel: missing }), []);
      assert.match(checkFiles({ request: 'launch', vmlinux: '${workspaceFolder}/vmlinux' })[0].message, /'vmlinux'.*could not substitute/);
      assert.deepEqual(checkFiles({ request: 'launch', kernel: tmp }), []);
      // An initramfs list is the user's file even with the sample guest's kernel.
      const list = path.join(tmp, 'no-such.list');
      assert.deepEqual(checkFiles({ request: 'launch', sampleGuest: true, initramfs: list }).map((p) => p.field), ['initramfs']);
    });

    it('refuses initrd and initramfs together, naming initramfs', () => {
      const p = checkRules({ request: 'launch', sampleGuest: true, initrd: '/a.cpio', initramfs: '/a.list' });
      assert.deepEqual(p.map((x) => x.field), ['initramfs']);
      assert.match(p[0].message, /'initrd' and 'initramfs' are both set/);
    });
  });
});
