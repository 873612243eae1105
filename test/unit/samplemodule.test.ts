/** The sample module, the guest builder's userspace stage, and the cache keys of the two stages. */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cachedGuest, kernelStageKey, KernelKeyInputs } from '../../src/guest/build';
import { buildInitramfs, INIT_SCRIPT, LOAD_PARAM, READY_LINE } from '../../src/guest/initramfs';
import { benchModuleNames, benchSource, findSampleModule, modulesDep, readModuleSources, userspaceKey } from '../../src/guest/modules';
import { RECIPES } from '../../src/guest/recipes';

const sampleDir = findSampleModule(path.join(__dirname, '..', '..', 'src', 'guest'));

describe('guest/modules: cache keys', () => {
  // The versions this repository's guests were first built with: the kernel key of these
  // inputs names the folders already in the cache (x86_64-9b69bf0db1ab325c since the recipes
  // gained CONFIG_BUG, MAGIC_SYSRQ, KFENCE and UBSAN for the exception filters, …), so a change
  // to what the kernel key hashes (the recipes, or the init script it still carries) shows
  // here instead of as a 20-minute rebuild of every guest.
  const inputs = (gcc: string): KernelKeyInputs => ({ linux: '6.1.192-3', busybox: '1:1.35.0-4+deb12u1+b1', gcc });
  it('keeps the kernel key of guests already built', () => {
    assert.equal(kernelStageKey(RECIPES.x86_64, inputs('gcc (Debian 12.2.0-14+deb12u1) 12.2.0')), '9b69bf0db1ab325c');
    assert.equal(kernelStageKey(RECIPES.aarch64, inputs('aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0')), '6d8b676c8d8344f3');
    assert.equal(kernelStageKey(RECIPES.riscv64, inputs('riscv64-linux-gnu-gcc (Debian 12.2.0-13) 12.2.0')), '6941ed40484ce43f');
  });

  it('changes the kernel key with the compiler, and not with the init script', () => {
    const key = kernelStageKey(RECIPES.x86_64, inputs('gcc 12'));
    assert.notEqual(kernelStageKey(RECIPES.x86_64, inputs('gcc 13')), key);
    // The init script now runs modprobe; the kernel key must not have followed it.
    assert.ok(INIT_SCRIPT.includes(LOAD_PARAM));
    assert.equal(kernelStageKey(RECIPES.x86_64, inputs('gcc 12')), key);
  });

  it('keys the userspace stage by the module sources, not by where the clone is', function () {
    if (!sampleDir) return this.skip();
    const sources = readModuleSources(sampleDir);
    const key = userspaceKey(sources);
    assert.match(key, /^[0-9a-f]{16}$/);
    assert.equal(userspaceKey({ from: '/elsewhere', files: { ...sources.files } }), key);
    const edited = { from: sources.from, files: { ...sources.files, 'qkd_sample.c': sources.files['qkd_sample.c'] + '\n' } };
    assert.notEqual(userspaceKey(edited), key);
    const template = { from: sources.from, files: { ...sources.files, 'bench/qkd_bench.c.in': '' } };
    assert.notEqual(userspaceKey(template), key);
    assert.notEqual(userspaceKey(undefined), key);
  });
});

describe('guest/initramfs: qkd.load', () => {
  /** init's command-line loop, run by the host's sh with modprobe stubbed and a given command line. */
  function runLoadLoop(cmdline: string): string {
    const start = INIT_SCRIPT.indexOf('for arg in');
    const end = INIT_SCRIPT.indexOf('\ndone\n', INIT_SCRIPT.indexOf('esac')) + '\ndone\n'.length;
    assert.ok(start > 0 && end > start, 'init has a loop over the command line');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-init-'));
    try {
      fs.writeFileSync(path.join(tmp, 'cmdline'), cmdline + '\n');
      const loop = INIT_SCRIPT.slice(start, end).replace('/proc/cmdline', path.join(tmp, 'cmdline'));
      const script = `modprobe() { echo "load $1"; [ "$1" != bad ]; }\n${loop}`;
      return execFileSync('sh', ['-c', script], { encoding: 'utf8' });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  it('loads each module named in qkd.load, in order, and says which failed', () => {
    assert.equal(runLoadLoop('console=ttyS0 qkd.load=qkd_bench_01,bad,qkd_sample nokaslr'), 'load qkd_bench_01\nload bad\nqkd-guest: cannot load module bad\nload qkd_sample\n');
    assert.equal(runLoadLoop('console=ttyS0 nokaslr'), '');
    assert.equal(runLoadLoop('qkd.loader=x qkd.load='), '');
  });

  it('loads them before the ready line and starts the idle daemons', () => {
    assert.ok(INIT_SCRIPT.indexOf('modprobe') < INIT_SCRIPT.indexOf(`echo "${READY_LINE}`));
    for (const d of ['syslogd', 'httpd', 'sleep']) assert.ok(INIT_SCRIPT.includes(`\n${d} `), d);
  });

  it('puts extra entries (the modules) into the initramfs after busybox and init', () => {
    const img = buildInitramfs(Buffer.from('fake busybox'), [
      { kind: 'dir', path: 'lib/modules/6.1.0/extra' },
      { kind: 'file', path: 'lib/modules/6.1.0/extra/m.ko', data: Buffer.from('ko') },
    ]);
    const names = execFileSync('cpio', ['-it', '--quiet'], { input: img, encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(names.slice(-3), ['init', 'lib/modules/6.1.0/extra', 'lib/modules/6.1.0/extra/m.ko']);
    assert.equal(execFileSync('cpio', ['-i', '--to-stdout', '--quiet', 'lib/modules/6.1.0/extra/m.ko'], { input: img, encoding: 'utf8' }), 'ko');
  });
});

describe('guest/modules: sources', () => {
  it('names 20 bench modules and generates each from the template', function () {
    const names = benchModuleNames();
    assert.equal(names.length, 20);
    assert.equal(names[0], 'qkd_bench_01');
    assert.equal(names[19], 'qkd_bench_20');
    assert.equal(modulesDep(['a', 'b']), 'extra/a.ko:\nextra/b.ko:\n');
    if (!sampleDir) return this.skip();
    const c = benchSource(readModuleSources(sampleDir).files['bench/qkd_bench.c.in'], 8);
    assert.ok(!c.includes('@'), 'every placeholder is replaced');
    // 08 would not compile: C reads a leading 0 as octal.
    assert.match(c, /^int qkd_bench_08_value = 8;$/m);
    assert.match(c, /module_init\(qkd_bench_08_init\);/);
  });

  it('marks each breakpoint line once, inside the function the tests expect', function () {
    if (!sampleDir) return this.skip();
    const lines = fs.readFileSync(path.join(sampleDir, 'qkd_sample.c'), 'utf8').split('\n');
    const expected: Record<string, string> = {
      'init-body': 'qkd_sample_init',
      'write-entry': 'qkd_sample_write',
      'ioctl-entry': 'qkd_sample_ioctl',
      'cmd-entry': 'qkd_sample_do_cmd',
      'read-entry': 'qkd_sample_read',
      tick: 'qkd_sample_tick',
      'exit-body': 'qkd_sample_exit',
    };
    for (const [marker, fn] of Object.entries(expected)) {
      const at = lines.flatMap((l, i) => (l.includes(`/* qkd-test: ${marker} */`) ? [i] : []));
      assert.equal(at.length, 1, `${marker} appears once`);
      const code = lines[at[0]].replace(/\/\*.*\*\//, '').trim();
      assert.ok(code.length > 0 && !code.startsWith('{'), `${marker} sits on a line with code`);
      // The nearest function definition above the marker (definitions start in column 0).
      const def = lines.slice(0, at[0]).reverse().find((l) => /^[a-z].*\bqkd_\w+\(/.test(l));
      assert.ok(def?.includes(`${fn}(`), `${marker} is in ${fn}, not in: ${def}`);
      if (['cmd-entry', 'write-entry', 'ioctl-entry'].includes(marker)) assert.ok(def?.includes('noinline'), `${fn} is noinline`);
    }
  });
});

describe('guest/build: the userspace stage of a built guest', () => {
  for (const arch of Object.keys(RECIPES)) {
    it(`${arch}: records the modules the initramfs carries`, function () {
      const g = cachedGuest(arch);
      if (!g?.modules) return this.skip();
      const m = g.modules;
      assert.match(m.release, /^6\.1\.\d+/);
      assert.equal(m.guestDir, `/lib/modules/${m.release}/extra`);
      assert.equal(path.basename(m.sample), 'qkd_sample.ko');
      assert.deepEqual(m.bench.map((b) => path.basename(b, '.ko')), benchModuleNames());
      assert.equal(path.dirname(g.initrd), m.dir);
      const listed = execFileSync('cpio', ['-it', '--quiet'], { input: fs.readFileSync(g.initrd), encoding: 'utf8', maxBuffer: 1 << 26 }).split('\n');
      for (const ko of [m.sample, ...m.bench]) assert.ok(listed.includes(`${m.guestDir.slice(1)}/${path.basename(ko)}`), ko);
      assert.ok(listed.includes(`lib/modules/${m.release}/modules.dep`) && listed.includes(m.ctl.slice(1)));
      // The guest loads the very file the debugger reads DWARF from.
      const inGuest = execFileSync('cpio', ['-i', '--to-stdout', '--quiet', `${m.guestDir.slice(1)}/qkd_sample.ko`], { input: fs.readFileSync(g.initrd), maxBuffer: 1 << 26 });
      assert.ok(inGuest.equals(fs.readFileSync(m.sample)));
      if (g.gdbScripts) assert.ok(fs.existsSync(g.gdbScripts));
    });
  }
});
