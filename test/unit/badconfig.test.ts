/**
 * Bad launch and attach configurations through src/config, the resolver the editor, the
 * adapter and the CLI share: each error names the field at fault and says how to fix it.
 * No QEMU is needed: qemuPath points at a stand-in executable, vmlinux at an ELF header.
 * With BADCONFIG_TABLE=<file>, the cases and their messages are written there as a
 * markdown table (for docs and reviews).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { knownArches } from '../../src/arch';
import { ACCELS, checkConfig, checkSubstituted, checkVmlinux, parseLaunch, resolveAttach, resolveLaunchConfig, SCHEMAS, type RequestSchema } from '../../src/config';
import { ErrorCode, UserError } from '../../src/util/errors';
import { contributedSchemasFromManifest } from '../support/manifest';

interface Case {
  name: string;
  /** Throws the UserError under test (or returns the editor's problems). */
  run: () => unknown;
  field: string;
  fix: RegExp;
  code?: ErrorCode;
}

/** A 64-bit little-endian ELF header for `machine`: all the resolver and the editor read. */
function elfHeader(machine: number): Buffer {
  const h = Buffer.alloc(64);
  h.write('\x7fELF', 0, 'latin1');
  h[4] = 2;
  h[5] = 1;
  h[6] = 1;
  h.writeUInt16LE(2, 16);
  h.writeUInt16LE(machine, 18);
  return h;
}

describe('config: 36 bad configurations, each naming its field and the fix', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-badcfg-'));
  const at = (rel: string): string => path.join(dir, rel);
  const table: string[] = [];
  let base: Record<string, unknown>;

  before(() => {
    fs.mkdirSync(at('linux/arch/x86/boot'), { recursive: true });
    fs.writeFileSync(at('linux/arch/x86/boot/bzImage'), 'kernel image');
    fs.writeFileSync(at('linux/vmlinux'), elfHeader(62));
    fs.writeFileSync(at('arm64-vmlinux'), elfHeader(183));
    fs.writeFileSync(at('a-file'), 'not a directory');
    fs.writeFileSync(at('qemu-system-x86_64'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    base = { kernel: at('linux/arch/x86/boot/bzImage'), vmlinux: at('linux/vmlinux'), qemuPath: at('qemu-system-x86_64'), consoleLog: at('logs/console.log') };
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    if (process.env.BADCONFIG_TABLE) fs.writeFileSync(process.env.BADCONFIG_TABLE, ['| # | case | field | message |', '|---|---|---|---|', ...table].join('\n') + '\n');
  });

  const launch = (over: Record<string, unknown>) => (): unknown => resolveLaunchConfig({ ...base, ...over });
  const launchElf = (over: Record<string, unknown>) => (): unknown => checkVmlinux(resolveLaunchConfig({ ...base, ...over }));
  const attach = (cfg: Record<string, unknown>) => (): unknown => resolveAttach(cfg);
  const uncreatable = (): string => at('a-file/logs/out.log');

  const cases: Case[] = [
    { name: 'kernel: missing file', run: launch({ kernel: at('nope/bzImage') }), field: 'kernel', code: ErrorCode.FileNotFound, fix: /does not exist\. Point it at the kernel image/ },
    { name: 'kernel: a directory', run: launch({ kernel: at('linux') }), field: 'kernel', code: ErrorCode.InvalidField, fix: /is a directory, not a file\. Point it at the kernel image/ },
    { name: 'vmlinux: not ELF (the bzImage)', run: launchElf({ vmlinux: at('linux/arch/x86/boot/bzImage') }), field: 'vmlinux', code: ErrorCode.NotElf, fix: /not an ELF file.*Point it at the uncompressed ELF 'vmlinux'/ },
    { name: 'vmlinux: wrong arch', run: launchElf({ vmlinux: at('arm64-vmlinux') }), field: 'vmlinux', code: ErrorCode.ArchMismatch, fix: /built for aarch64, but 'arch' is 'x86_64'\. Set 'arch' to match/ },
    { name: 'arch: unknown', run: launch({ arch: 'mips' }), field: 'arch', code: ErrorCode.UnknownArch, fix: /unknown value 'mips'\. Use one of: x86_64, aarch64, riscv64/ },
    { name: 'arch: wrong type', run: launch({ arch: 64 }), field: 'arch', fix: /must be a string, not 64\. Write it as "arch": "x86_64"/ },
    { name: 'accel: "fast"', run: launch({ accel: 'fast' }), field: 'accel', fix: /unknown value 'fast'\. Use "auto", "kvm" or "tcg"/ },
    { name: 'memory: "lots"', run: launch({ memory: 'lots' }), field: 'memory', fix: /is not a size\. .*e\.g\. 512M or 2G/ },
    { name: 'memory: "0"', run: launch({ memory: '0' }), field: 'memory', fix: /is zero\. Give the guest some RAM, e\.g\. "memory": "512M"/ },
    { name: 'smp: 0', run: launch({ smp: 0 }), field: 'smp', fix: /must be at least 1, not 0\. .*from 1 to 64.*"smp": 2/ },
    { name: 'smp: 1.5', run: launch({ smp: 1.5 }), field: 'smp', fix: /must be a whole number, not 1\.5\. .*"smp": 2/ },
    { name: 'smp: "two"', run: launch({ smp: 'two' }), field: 'smp', fix: /must be a whole number, not "two"\. .*without quotes/ },
    { name: 'qemuPath: missing', run: launch({ qemuPath: at('no-qemu') }), field: 'qemuPath', code: ErrorCode.QemuNotFound, fix: /does not exist or is not executable\. Fix the path or remove the field/ },
    { name: 'qemuArgs: not an array', run: launch({ qemuArgs: '-s' }), field: 'qemuArgs', fix: /must be an array of strings, not "-s"\. Write it as a list of strings/ },
    { name: 'qemuArgs: a non-string', run: launch({ qemuArgs: ['-smp', 2] }), field: 'qemuArgs', fix: /'qemuArgs\[1\]' must be a string, not 2\. Write it as a list of strings/ },
    { name: 'append: not a string', run: launch({ append: ['quiet'] }), field: 'append', fix: /must be a string.*as one string, e\.g\. "append": "quiet/ },
    { name: 'modulePaths: a string', run: launch({ modulePaths: '/lib/modules' }), field: 'modulePaths', fix: /must be an array of strings.*"modulePaths": \["\$\{workspaceFolder\}\/drivers\/mydriver"\]/ },
    { name: 'modulePaths: a folder that is not there', run: launch({ modulePaths: [at('no-such-dir')] }), field: 'modulePaths[0]', code: ErrorCode.FileNotFound, fix: /does not exist\. Point it at a folder where your modules are built/ },
    { name: 'modulePaths: a file', run: attach({ target: '127.0.0.1:1234', modulePaths: [at('a-file')] }), field: 'modulePaths[0]', code: ErrorCode.InvalidField, fix: /is not a directory\. Point it at a folder where your modules are built/ },
    { name: 'breakAt: a string', run: launch({ breakAt: 'kernel_clone' }), field: 'breakAt', fix: /must be an array of strings.*"breakAt": \["kernel_clone"\]/ },
    { name: 'sourceMap: not an object', run: launch({ sourceMap: '/build/linux' }), field: 'sourceMap', fix: /must be an object.*compile-time prefix to local prefix/ },
    { name: 'sourceMap: a value not a string', run: launch({ sourceMap: { '/build/linux': 7 } }), field: 'sourceMap', fix: /'sourceMap\.\/build\/linux' must be a string, not 7\. Each value must be a local directory path/ },
    { name: 'source: not a directory', run: launch({ source: at('a-file') }), field: 'source', fix: /is not a directory\. Point it at the kernel source tree/ },
    { name: 'initrd: missing', run: launch({ initrd: at('initrd.cpio') }), field: 'initrd', code: ErrorCode.FileNotFound, fix: /does not exist\. Point it at an initramfs/ },
    { name: 'consoleLog: uncreatable directory', run: launch({ consoleLog: uncreatable() }), field: 'consoleLog', fix: /cannot be created: '.*a-file' is not a directory\. Set "consoleLog" to a file in a directory you can write/ },
    { name: 'rspLog: uncreatable directory', run: launch({ rspLog: uncreatable() }), field: 'rspLog', fix: /cannot be created: '.*a-file' is not a directory\. Set "rspLog" to a file in a directory you can write/ },
    { name: 'disassemblySyntax: "masm"', run: launch({ disassemblySyntax: 'masm' }), field: 'disassemblySyntax', fix: /unknown value "masm"\. Use one of: att, intel\. Remove it to use the default, "att"/ },
    { name: 'stopOnEntry: "yes"', run: launch({ stopOnEntry: 'yes' }), field: 'stopOnEntry', fix: /must be a boolean, not "yes"\. Write true or false, without quotes/ },
    { name: 'kaslr: "on"', run: launch({ kaslr: 'on' }), field: 'kaslr', fix: /unknown value "on"\. Use one of: auto, true, false\. Remove it to use the default, "auto"/ },
    { name: 'kaslr: false with kaslr in append', run: launch({ kaslr: false, append: 'quiet kaslr' }), field: 'kaslr', fix: /'kaslr' is false, but 'append' has 'kaslr'\. Remove 'kaslr' from 'append', or set "kaslr": true \(or "auto"\)/ },
    { name: 'typo "kernal"', run: () => resolveLaunchConfig({ kernal: base.kernel, qemuPath: base.qemuPath }), field: 'kernel', code: ErrorCode.MissingField, fix: /'kernal' is not known: did you mean 'kernel'\?.*Rename 'kernal' to 'kernel'/ },
    { name: 'attach: no target', run: attach({ vmlinux: at('linux/vmlinux') }), field: 'target', code: ErrorCode.MissingField, fix: /is required\. Give the gdbstub as host:port \(e\.g\. "127\.0\.0\.1:1234"\)/ },
    { name: 'attach: target "localhost"', run: attach({ target: 'localhost' }), field: 'target', fix: /has no port\. Add the port .*"localhost:1234"/ },
    { name: 'attach: port out of range', run: attach({ target: '127.0.0.1:70000' }), field: 'target', fix: /has port 70000, outside 1-65535\. Use the port QEMU's -gdb option listens on/ },
    { name: 'attach: target 0.0.0.0 (refused)', run: attach({ target: '0.0.0.0:1234' }), field: 'target', fix: /wildcard address.*Connect to "127\.0\.0\.1:1234" instead, and start QEMU with -gdb tcp:127\.0\.0\.1:1234/ },
    { name: 'request: neither launch nor attach', run: () => checkConfig({ type: 'qemu-kernel', request: 'debug', name: 'x' }), field: 'request', fix: /must be "launch" or "attach", not "debug"\. Use "launch" to boot a kernel/ },
  ];

  it('has 36 cases', () => assert.equal(cases.length, 36));

  cases.forEach((c, i) =>
    it(`${i + 1}. ${c.name}`, () => {
      let message: string;
      let field: string | undefined;
      let code: ErrorCode | undefined;
      try {
        const out = c.run();
        // The editor's check returns its problems rather than throwing.
        const problems = Array.isArray(out) ? (out as Array<{ field: string; message: string; fix?: string; code?: ErrorCode }>) : [];
        assert.ok(problems.length, `no error for ${c.name}`);
        ({ field, code } = problems[0]);
        message = `${problems[0].message} ${problems[0].fix ?? ''}`.trim();
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        ({ message, field, code } = e);
      }
      table.push(`| ${i + 1} | ${c.name} | \`${c.field}\` | ${message.replace(/\|/g, '\\|').replace(new RegExp(dir, 'g'), '<tmp>')} |`);
      assert.equal(field, c.field, message);
      assert.ok(message.includes(`'${c.field}`), `names '${c.field}': ${message}`);
      assert.match(message, c.fix);
      if (c.code !== undefined) assert.equal(code, c.code, message);
    }),
  );

  describe('what is only a warning, or fine', () => {
    it('warns about a typo of an optional field, with the field it meant, and goes on', () => {
      const r = resolveLaunchConfig({ ...base, stopOnEntyr: true });
      assert.equal(r.stopOnEntry, false);
      assert.deepEqual(r.warnings.map((w) => [w.field, w.message, w.fix]), [['stopOnEntyr', "Launch config field 'stopOnEntyr' is not known. Did you mean 'stopOnEntry'?", "Rename it to 'stopOnEntry'; until then it is ignored."]]);
    });

    it('warns about a gdbstub reached over the network, and attaches', () => {
      const r = resolveAttach({ target: '192.0.2.7:1234' });
      assert.deepEqual(r.target, { kind: 'tcp', host: '192.0.2.7', port: 1234 });
      assert.match(r.warnings[0].message, /'target' \('192\.0\.2\.7:1234'\) is reached over the network/);
      assert.match(r.warnings[0].fix ?? '', /ssh -L 1234:127\.0\.0\.1:1234 192\.0\.2\.7/);
    });

    it('accepts arch aliases, fractional sizes, unix sockets, nulls, and takes the arch from the vmlinux on attach', () => {
      assert.equal(resolveLaunchConfig({ ...base, arch: 'amd64', memory: '1.5G', vmlinux: null }).arch.name, 'x86_64');
      assert.deepEqual(resolveAttach({ target: 'unix:/run/qkd/gdb.sock' }).target, { kind: 'unix', path: '/run/qkd/gdb.sock' });
      const a = resolveAttach({ target: '[::1]:1234', vmlinux: at('arm64-vmlinux') });
      assert.deepEqual([a.arch.name, a.target], ['aarch64', { kind: 'tcp', host: '::1', port: 1234 }]);
    });

    it('checks every field before the sample guest is built, and none of its files', () => {
      assert.throws(() => parseLaunch({ sampleGuest: true, smp: 'two' }), (e: unknown) => e instanceof UserError && e.field === 'smp');
      const spec = parseLaunch({ sampleGuest: true, arch: 'arm64', memory: '2G' });
      assert.deepEqual([spec.needsGuest, spec.arch.name], [true, 'aarch64']);
      assert.deepEqual(checkSubstituted({ request: 'launch', sampleGuest: true, qemuPath: base.qemuPath, consoleLog: base.consoleLog }), []);
    });

    it('gives the editor the same verdicts after substitution: a kernel directory, a vmlinux of another arch', () => {
      const editor = (over: Record<string, unknown>): string[] => checkSubstituted({ request: 'launch', ...base, ...over }).map((p) => `${p.field}: ${p.message}`);
      assert.match(editor({ kernel: at('linux') })[0], /^kernel: .*is a directory, not a file/);
      assert.match(editor({ vmlinux: at('arm64-vmlinux') })[0], /^vmlinux: .*built for aarch64/);
      assert.deepEqual(editor({}), []);
    });
  });

  describe("agrees with package.json's schema (what IntelliSense shows)", () => {
    const contributed = contributedSchemasFromManifest();
    for (const request of ['launch', 'attach'] as const) {
      it(`${request}: the same fields, types, minimums, item types and required fields`, () => {
        const theirs = contributed[request] as RequestSchema;
        const ours = SCHEMAS[request];
        assert.deepEqual(Object.keys(ours.properties).sort(), Object.keys(theirs.properties).sort());
        for (const [field, p] of Object.entries(ours.properties)) {
          const q = theirs.properties[field];
          assert.deepEqual([p.type, p.minimum, p.items?.type], [q.type, q.minimum, q.items?.type], field);
          // An enum the resolver checks in rules.ts (arch with its aliases, accel) is absent from ours.
          if (p.enum) assert.deepEqual(p.enum, q.enum, field);
        }
        assert.deepEqual(ours.required ?? [], theirs.required ?? []);
      });
    }
    it("lists the arches src/arch knows and the accelerators rules.ts accepts", () => {
      assert.deepEqual(contributed.launch?.properties.arch.enum, knownArches());
      assert.deepEqual(contributed.launch?.properties.accel.enum, [...ACCELS]);
    });
  });
});
