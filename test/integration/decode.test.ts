/**
 * `qkd decode` against the kernel's own scripts/decode_stacktrace.sh, on real WARN, Oops and
 * BUG reports the sample guest prints (the module's failures on demand), with the same
 * vmlinux and module folder, line for line. The two differ in one known way, where ours is
 * right: the script looks a module function up with `nm` (a section offset) and asks
 * `addr2line -e the.ko` with no section, so for a function in .text.unlikely (where GCC puts
 * code that ends in BUG() or a NULL dereference) it gets the line of .text's code at that
 * offset. Every line that differs must be such a frame, and ours must equal addr2line asked
 * in the function's own section (-j). `Code:` lines are left out of both inputs: the script
 * hands them to scripts/decodecode, which disassembles rather than decodes.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { GuestPaths } from '../../src/guest/build';
import { RECIPES } from '../../src/guest/recipes';
import { artifact, CLI, requireBuilt, sampleGuest } from '../support/env';
import { logged, markerLine, startOwnGuest, waitForLive, type OwnGuest } from '../support/handover';
import { startLsp } from '../support/lsp';

const ARCHES = ['x86_64', 'aarch64', 'riscv64'];

for (const arch of ARCHES) {
  describe(`${arch}: qkd decode against scripts/decode_stacktrace.sh`, function () {
    this.timeout(600_000);
    let g: GuestPaths;
    let vm: OwnGuest | undefined;
    let modDir = '';
    let log = '';

    before(async function () {
      requireBuilt(this);
      g = sampleGuest(this, arch);
      assert.ok(g.modules?.sample);
      modDir = path.dirname(g.modules.sample);
      vm = await startOwnGuest(g, artifact(this, 'console.log'), 'qkd.load=qkd_sample');
      // The reports as the console socket carried them (vm.live(): no doubled characters).
      for (const kind of ['warn', 'null', 'bug']) {
        const at = vm.live().length;
        vm.console.write(`sh -c 'echo fault ${kind} > /dev/qkd_sample'; echo fault-${kind}-rc=$?\n`);
        await waitForLive(vm, new RegExp(`fault-${kind}-rc=\\d+`), 120_000, at);
      }
      log = vm.live();
    });

    after(async () => {
      await vm?.console.close();
      await vm?.kill();
    });

    it('prints what the script prints, and where they differ (a module function in .text.unlikely) ours is addr2line in the right section', function () {
      const input = log
        .split('\n')
        .map((l) => l.replace(/\r$/, ''))
        .filter((l) => !/Code: /.test(l))
        .join('\n')
        // The script's `while read` drops a last line that has no newline.
        .concat('\n');
      fs.writeFileSync(artifact(this, 'input.log'), input);
      const script = path.join(g.source, 'scripts', 'decode_stacktrace.sh');
      const env = { ...process.env, CROSS_COMPILE: RECIPES[arch].crossCompile ?? '' };
      const theirs = execFileSync('bash', [script, g.vmlinux, 'auto', modDir], { input, encoding: 'utf8', env, maxBuffer: 1 << 26 }).split('\n');
      // From the DWARF, then from the code map `qkd index` builds (in a cache of this test's own): the same.
      const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-decode-cache-'));
      const ownEnv = { ...process.env, XDG_CACHE_HOME: cache, QKD_NO_BACKGROUND_INDEX: '1' };
      let ours: string[];
      try {
        const direct = execFileSync('node', [CLI, 'decode', '--vmlinux', g.vmlinux, '--modules', modDir], { input, encoding: 'utf8', env: ownEnv, maxBuffer: 1 << 26 });
        const files = ['--vmlinux', g.vmlinux, '--module', path.join(modDir, 'qkd_sample.ko')];
        execFileSync('node', [CLI, 'index', '--quiet', ...files], { env: ownEnv });
        const status = JSON.parse(execFileSync('node', [CLI, 'index', '--status', '--json', ...files], { env: ownEnv, encoding: 'utf8' })) as Array<{ state: string; map: string }>;
        assert.deepEqual(status.map((s) => s.state), ['built', 'built']);
        for (const s of status) assert.ok(s.map.startsWith(cache), s.map);
        const mapped = execFileSync('node', [CLI, 'decode', '--vmlinux', g.vmlinux, '--modules', modDir], { input, encoding: 'utf8', env: ownEnv, maxBuffer: 1 << 26 });
        assert.equal(mapped, direct, 'qkd decode prints the same with the code map as from the DWARF');
        ours = mapped.split('\n');
      } finally {
        fs.rmSync(cache, { recursive: true, force: true });
      }
      fs.writeFileSync(artifact(this, 'theirs.log'), theirs.join('\n'));
      fs.writeFileSync(artifact(this, 'ours.log'), ours.join('\n'));
      assert.equal(ours.length, theirs.length, 'one output line per input line on both sides');
      // Formatting: addr2line keeps DWARF's "./" in generated headers' paths and adds discriminators.
      const norm = (l: string): string => l.replace(/ \(discriminator \d+\)/g, '').replace(/([( ])\.\//g, '$1').replace(/\/\.\//g, '/').replace(/\s+/g, ' ').trim();
      let decoded = 0;
      let righter = 0;
      for (let i = 0; i < ours.length; i++) {
        if (/\(\S+:\d+/.test(ours[i])) decoded++;
        if (norm(ours[i]) === norm(theirs[i])) continue;
        // A name the console log garbled (a character twice, see logged()) is in neither symbol
        // table: the script has already cut RIP's segment (`0010:`) when its lookup fails, and
        // prints the rest as it came; ours leaves such a line alone.
        if (!/\(\S+:\d+/.test(ours[i]) && norm(ours[i]).replace(/(RIP: )[0-9a-f]{4}:/, '$1') === norm(theirs[i])) continue;
        // An address the line table has no row for (arm64's kernel_init+0x0, in the patchable
        // NOPs before the function's first line): addr2line says `file:?`, ours leaves the
        // reference as it was. Both say no line is known.
        if (/\(\S+:\?\)/.test(theirs[i]) && norm(ours[i]) === norm(input.split('\n')[i] ?? '')) continue;
        // The one allowed difference: a module frame, which ours puts in its own section.
        const m = /(\S+?) \((\S+:\d+(?: \S+:\d+)*)\) ([\w-]+)$/.exec(norm(ours[i]));
        assert.ok(m, `line ${i + 1} differs:\n ours:   ${ours[i]}\n theirs: ${theirs[i]}`);
        // RIP's segment (`0010:`; the console log may hold a character twice, see logged()).
        const func = m[1].replace(/^.*:/, '');
        const off = /\+0x([0-9a-f]+)\//.exec(input.split('\n')[i] ?? '');
        assert.ok(off, `line ${i + 1}: no offset in the input`);
        const ko = path.join(modDir, `${m[3]}.ko`);
        const sym = new RegExp(`^([0-9a-f]+) .* F (\\S+)\\s+[0-9a-f]+ ${func}$`, 'm').exec(execFileSync('objdump', ['-t', ko], { encoding: 'utf8' }));
        assert.ok(sym, `${func} in ${ko}`);
        assert.notEqual(sym[2], '.text', `line ${i + 1}: ${func} is in .text, where the script is right:\n ours:   ${ours[i]}\n theirs: ${theirs[i]}`);
        const at = BigInt('0x' + sym[1]) + BigInt('0x' + off[1]);
        const right = execFileSync(`${RECIPES[arch].crossCompile ?? ''}addr2line`, ['-i', '-j', sym[2], '-e', ko, `0x${at.toString(16)}`], { encoding: 'utf8' })
          .trim()
          .split('\n')
          .map((l) => l.replace(/ \(discriminator \d+\)$/, ''))
          .join(' ');
        assert.equal(m[2], right, `line ${i + 1}: ${func}+0x${off[1]} in ${sym[2]}`);
        righter++;
      }
      assert.ok(decoded >= 20, `decoded ${decoded} frames`);
      // The NULL dereference and BUG functions sit in .text.unlikely: the script misses them.
      assert.ok(righter > 0, 'the section case was exercised');
    });

    it('the kernel-log language server, through the protocol: a diagnostic per report, links and hovers at the lines qkd decode gives, the Decode report action', async function () {
      const text = log.split('\n').map((l) => l.replace(/\r$/, '')).join('\n');
      const lsp = await startLsp({ vmlinux: g.vmlinux, modules: [modDir] });
      try {
        const uri = 'file:///tmp/console.log';
        const diags = lsp.diagnostics(uri);
        lsp.open(uri, text);
        const d = await diags;
        const titles = d.map((x) => `${x.code}: ${x.message}`);
        // The three reports the module made, in order, as errors and a warning. A kernel that
        // has just BUG()ed in a task may report more after them (aarch64 has WARNed in
        // ct_kernel_exit as that CPU went idle): each must be a report header of the log.
        assert.deepEqual(d.slice(0, 3).map((x) => x.code), ['warn', 'oops', 'bug'], titles.join('\n'));
        for (const x of d.slice(3)) assert.match(text.split('\n')[x.range.start.line], /(?:WARNING: CPU: |BUG: |Unable to handle |kernel BUG at |Internal error: |Kernel panic)/, titles.join('\n'));
        assert.match(d[0].message, new RegExp(`^WARNING: CPU: \\d+ PID: \\d+ at \\S+ ${logged('qkd_sample_fault_warn')}`));
        assert.equal(d[0].severity, 2);
        assert.equal(d[1].severity, 1);
        assert.match(d[2].message, /^kernel BUG at \S+!/);
        const links = await lsp.links(uri);
        const lines = text.split('\n');
        const rip = lines.findIndex((l) => new RegExp(`(RIP: [0-9a-f]+:|pc : |epc : )${logged('qkd_sample_fault_null')}\\+`).test(l));
        assert.ok(rip >= 0);
        const link = links.find((k) => k.range.start.line === rip);
        assert.ok(link, `no link on line ${rip + 1}: ${lines[rip]}`);
        const source = path.join(modDir, 'qkd_sample.c');
        assert.equal(link.target, `${pathToFileURL(source).toString()}#L${markerLine(source, 'fault-null')}`);
        // Every decoded reference of qkd decode's output has its link, at the same line.
        const ours = execFileSync('node', [CLI, 'decode', '--no-index', '--vmlinux', g.vmlinux, '--modules', modDir], { input: text + '\n', encoding: 'utf8' }).split('\n');
        for (const k of links) {
          const m = /\((\S+?):(\d+)/.exec(ours[k.range.start.line] ?? '');
          assert.ok(m, `line ${k.range.start.line + 1} decoded: ${ours[k.range.start.line]}`);
          assert.match(k.target ?? '', new RegExp(`#L${m[2]}$`));
        }
        const hover = await lsp.hover(uri, rip, link.range.start.character + 2);
        assert.match(hover, /\*\*qkd_sample_fault_null\*\*\+0x[0-9a-f]+ \[qkd_sample\] \(the faulting instruction\)/);
        assert.match(hover, /int value = p->value; \/\* qkd-test: fault-null \*\//);
        const actions = await lsp.codeActions(uri, d[1].range.start.line);
        assert.equal(actions[0]?.title, 'Decode report');
        const inserted = Object.values(actions[0].edit?.changes ?? {})[0]?.[0];
        assert.equal(inserted?.range.start.line, d[1].range.end.line + 1);
        assert.match(inserted?.newText ?? '', /qkd_sample_fault_null \(\S+qkd_sample\.c:\d+\) qkd_sample/);
      } finally {
        await lsp.stop();
      }
    });
  });
}
