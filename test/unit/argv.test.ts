import * as assert from 'node:assert/strict';
import { getArch } from '../../src/arch';
import { buildQemuArgv, qemuOptValue, runPaths, shellQuote } from '../../src/qemu/argv';
import { effectiveAppend, ResolvedLaunch } from '../../src/qemu/config';

const x86 = getArch('x86_64');

function cfg(over: Partial<ResolvedLaunch> = {}): ResolvedLaunch {
  return {
    arch: x86,
    kernel: '/k/bzImage',
    vmlinux: '/k/vmlinux',
    initrd: '/k/initrd.cpio',
    append: 'console=ttyS0 nokaslr',
    kaslr: false,
    memory: '512M',
    smp: 2,
    accel: 'auto',
    qemuPath: '/usr/bin/qemu-system-x86_64',
    qemuArgs: [],
    consoleLog: '/logs/console.log',
    stopOnEntry: false,
    request: 'launch',
    sampleGuest: false,
    disassemblySyntax: 'att',
    sourceMap: {},
    breakAt: [],
    modulePaths: [],
    tasksAsThreads: false,
    warnings: [],
    ...over,
  };
}

describe('qemu/argv', () => {
  const paths = runPaths('/run/qkd-abc');

  it('starts paused with the gdbstub, console and QMP on unix sockets in the private dir', () => {
    const argv = buildQemuArgv(cfg(), paths, 'tcg');
    assert.equal(argv[0], '/usr/bin/qemu-system-x86_64');
    assert.ok(argv.includes('-S'));
    assert.ok(!argv.includes('-s'), 'never -s (it listens on every interface)');
    assert.ok(!argv.some((a) => a.includes('tcp:') || a.includes('0.0.0.0')));
    const gdb = argv[argv.indexOf('-gdb') + 1];
    assert.equal(gdb, 'chardev:qkd-gdb');
    assert.ok(argv.includes('socket,id=qkd-gdb,path=/run/qkd-abc/gdb.sock,server=on,wait=off'));
    assert.ok(argv.includes('socket,id=qkd-console,path=/run/qkd-abc/console.sock,server=on,wait=off,logfile=/logs/console.log,logappend=on'));
    assert.ok(argv.includes('socket,id=qkd-qmp,path=/run/qkd-abc/qmp.sock,server=off'));
    assert.ok(argv.includes('socket,id=qkd-hmp,path=/run/qkd-abc/monitor.sock,server=on,wait=off'));
    assert.equal(argv[argv.indexOf('chardev=qkd-hmp,mode=readline') - 1], '-mon');
    assert.ok(argv.indexOf('chardev=qkd-qmp,mode=control') > argv.indexOf('chardev=qkd-hmp,mode=readline'));
    // QMP comes last so the other sockets listen by the time QEMU connects to us.
    assert.ok(argv.indexOf('chardev=qkd-qmp,mode=control') > argv.indexOf('chardev:qkd-gdb'));
  });

  it('passes kernel, initrd, append, memory, smp and accel through', () => {
    const argv = buildQemuArgv(cfg(), paths, 'tcg');
    const after = (flag: string): string => argv[argv.indexOf(flag) + 1];
    assert.equal(after('-kernel'), '/k/bzImage');
    assert.equal(after('-initrd'), '/k/initrd.cpio');
    assert.equal(after('-append'), 'console=ttyS0 nokaslr');
    assert.equal(after('-m'), '512M');
    assert.equal(after('-smp'), '2');
    assert.equal(after('-accel'), 'tcg');
    assert.ok(!argv.includes('-cpu'), 'TCG keeps the default CPU model');
    assert.equal(buildQemuArgv(cfg(), paths, 'kvm')[buildQemuArgv(cfg(), paths, 'kvm').indexOf('-cpu') + 1], 'host');
  });

  it("boots aarch64 and riscv64 on QEMU's virt machine, with one -cpu under KVM", () => {
    const a64 = cfg({ arch: getArch('aarch64'), qemuPath: '/usr/bin/qemu-system-aarch64', append: 'console=ttyAMA0 nokaslr' });
    const tcg = buildQemuArgv(a64, paths, 'tcg');
    assert.deepEqual(tcg.slice(tcg.indexOf('-machine'), tcg.indexOf('-machine') + 4), ['-machine', 'virt', '-cpu', 'cortex-a57']);
    const kvm = buildQemuArgv(a64, paths, 'kvm');
    assert.equal(kvm.filter((a) => a === '-cpu').length, 1);
    assert.equal(kvm[kvm.indexOf('-cpu') + 1], 'host');
    assert.equal(kvm[kvm.indexOf('-machine') + 1], 'virt');
    const rv = buildQemuArgv(cfg({ arch: getArch('riscv64'), qemuPath: '/usr/bin/qemu-system-riscv64' }), paths, 'tcg');
    assert.equal(rv[rv.indexOf('-machine') + 1], 'virt');
    // OpenSBI is QEMU's default -bios for virt: no firmware path to get wrong.
    assert.ok(!rv.includes('-bios'));
  });

  it('omits -initrd when there is none and appends user qemuArgs last', () => {
    const argv = buildQemuArgv(cfg({ initrd: undefined, qemuArgs: ['-device', 'virtio-rng-pci'] }), paths, 'tcg');
    assert.ok(!argv.includes('-initrd'));
    assert.deepEqual(argv.slice(-2), ['-device', 'virtio-rng-pci']);
  });

  it('escapes commas in paths inside option values', () => {
    assert.equal(qemuOptValue('/tmp/a,b'), '/tmp/a,,b');
    const argv = buildQemuArgv(cfg({ consoleLog: '/l/a,b.log' }), paths, 'tcg');
    assert.ok(argv.some((a) => a.includes('logfile=/l/a,,b.log,')));
  });

  it('adds console= and what kaslr asks for only when the user did not choose', () => {
    assert.equal(effectiveAppend(undefined, x86, 'auto'), 'console=ttyS0', 'auto: the kernel decides');
    assert.equal(effectiveAppend('quiet', x86, true), 'quiet console=ttyS0 kaslr');
    assert.equal(effectiveAppend('nokaslr', x86, 'auto'), 'nokaslr console=ttyS0');
    assert.equal(effectiveAppend(undefined, x86), 'console=ttyS0', 'the default is auto');
    assert.equal(effectiveAppend('quiet', x86, false), 'quiet console=ttyS0 nokaslr');
    assert.equal(effectiveAppend('console=ttyS1,115200 kaslr', x86), 'console=ttyS1,115200 kaslr');
    assert.equal(effectiveAppend('  nokaslr   console=hvc0 ', x86), 'nokaslr console=hvc0');
  });

  it('quotes a command line for a shell', () => {
    assert.equal(shellQuote(['qemu', '-append', 'console=ttyS0 nokaslr', "it's"]), `qemu -append 'console=ttyS0 nokaslr' 'it'\\''s'`);
  });
});
