import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveLaunchConfig } from '../../src/qemu/config';
import { ErrorCode, UserError } from '../../src/util/errors';

describe('qemu/config validation', () => {
  let dir: string;
  let kernel: string;
  let vmlinux: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-cfg-'));
    fs.mkdirSync(path.join(dir, 'arch/x86/boot'), { recursive: true });
    kernel = path.join(dir, 'arch/x86/boot/bzImage');
    vmlinux = path.join(dir, 'vmlinux');
    fs.writeFileSync(kernel, 'k');
    fs.writeFileSync(vmlinux, 'v');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const fails = (cfg: object, field: string, code: ErrorCode, text: RegExp): void => {
    assert.throws(
      () => resolveLaunchConfig(cfg),
      (e: unknown) => e instanceof UserError && e.code === code && e.field === field && text.test(e.message) && e.message.includes(`'${field}'`),
    );
  };

  it('fills defaults and finds vmlinux at the top of the kernel tree', () => {
    const r = resolveLaunchConfig({ kernel });
    assert.equal(r.vmlinux, vmlinux);
    assert.equal(r.memory, '512M');
    assert.equal(r.smp, 1);
    assert.equal(r.accel, 'auto');
    // KASLR as the kernel decides (nothing appended): the debugger finds the offset itself.
    assert.equal(r.append, 'console=ttyS0');
    assert.equal(r.kaslr, 'auto');
    assert.match(r.qemuPath, /qemu-system-x86_64$/);
    assert.match(r.consoleLog, /qemu-kernel-debug\/logs\/console-.*\.log$/);
  });

  it('names the field for a missing kernel file', () => fails({ kernel: path.join(dir, 'nope') }, 'kernel', ErrorCode.FileNotFound, /does not exist/));
  it('names the field when kernel is absent', () => fails({}, 'kernel', ErrorCode.MissingField, /is required/));
  it('names the field for a missing vmlinux file', () => fails({ kernel, vmlinux: path.join(dir, 'missing-vmlinux') }, 'vmlinux', ErrorCode.FileNotFound, /missing-vmlinux/));
  it('names the field for an unknown arch and lists the known ones', () => fails({ kernel, arch: 'mips' }, 'arch', ErrorCode.UnknownArch, /'mips'.*x86_64/));
  it('names qemuPath when the given QEMU does not exist', () => fails({ kernel, qemuPath: '/nonexistent/qemu' }, 'qemuPath', ErrorCode.QemuNotFound, /does not exist/));
  it('names the field for bad memory, smp, accel, qemuArgs and stopOnEntry', () => {
    fails({ kernel, memory: 'lots' }, 'memory', ErrorCode.InvalidField, /not a size/);
    fails({ kernel, smp: 0 }, 'smp', ErrorCode.InvalidField, /1 to 64/);
    fails({ kernel, accel: 'hvf' }, 'accel', ErrorCode.InvalidField, /unknown value 'hvf'/);
    fails({ kernel, qemuArgs: '-foo' }, 'qemuArgs', ErrorCode.InvalidField, /array of strings/);
    fails({ kernel, stopOnEntry: 'yes' }, 'stopOnEntry', ErrorCode.InvalidField, /true or false/);
    fails({ kernel: 42 }, 'kernel', ErrorCode.InvalidField, /must be a string/);
  });

  it('says how to install QEMU when it is not on PATH', () => {
    const saved = process.env.PATH;
    process.env.PATH = dir;
    try {
      assert.throws(() => resolveLaunchConfig({ kernel }), (e: unknown) => e instanceof UserError && e.code === ErrorCode.QemuNotFound && /apt-get install qemu-system-x86/.test(e.message));
    } finally {
      process.env.PATH = saved;
    }
  });
});
