/** Bad launch input: every error response names the field or file and how to fix it. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireBuilt, sampleGuest } from '../support/env';
import { TestSession } from '../support/session';

describe('launch errors name the field', function () {
  this.timeout(60_000);
  let s: TestSession;
  let g: ReturnType<typeof sampleGuest>;
  let dir: string;

  before(function () {
    requireBuilt(this);
    g = sampleGuest(this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-err-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  beforeEach(async function () {
    s = new TestSession(this);
    await s.start();
  });
  afterEach(async () => s.stop());

  const launchFails = async (args: Record<string, unknown>, pattern: RegExp): Promise<void> => {
    await assert.rejects(s.dc.launchRequest(s.launchArgs(args)), (e: Error) => {
      assert.match(e.message, pattern);
      return true;
    });
  };

  it('a missing kernel file', async () => {
    await launchFails({ kernel: path.join(dir, 'bzImage'), vmlinux: g.vmlinux }, /'kernel'.*does not exist/);
  });

  it('a missing vmlinux file', async () => {
    await launchFails({ kernel: g.kernel, vmlinux: path.join(dir, 'vmlinux') }, /'vmlinux'.*does not exist/);
  });

  it('an unknown arch', async () => {
    await launchFails({ kernel: g.kernel, vmlinux: g.vmlinux, arch: 'sparc64' }, /'arch' has unknown value 'sparc64'.*x86_64/);
  });

  it('no QEMU binary at qemuPath', async () => {
    await launchFails({ kernel: g.kernel, vmlinux: g.vmlinux, qemuPath: path.join(dir, 'qemu-system-x86_64') }, /'qemuPath'.*does not exist or is not executable/);
  });

  it('no QEMU binary on PATH', async () => {
    await s.stop();
    // The adapter runs with a PATH that has node (and setpriv) but no QEMU. TestSession takes
    // the adapter's environment when it is made, so the PATH goes in there.
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    if (!fs.existsSync(path.join(bin, 'node'))) fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    s = new TestSession(this as unknown as Mocha.Context, { PATH: bin });
    await s.start();
    await launchFails({ kernel: g.kernel, vmlinux: g.vmlinux }, /QEMU binary 'qemu-system-x86_64' was not found on PATH.*apt-get install qemu-system-x86.*'qemuPath'/);
  });

  it('a vmlinux that is not ELF (the bzImage given by mistake)', async () => {
    await launchFails({ kernel: g.kernel, vmlinux: g.kernel }, /'vmlinux'.*is not a usable vmlinux.*not an ELF file/);
  });

  it('a request before launch gets an error response, not silence', async () => {
    await assert.rejects(s.dc.stackTraceRequest({ threadId: 1 }), /has not started/);
    await assert.rejects(s.dc.customRequest('noSuchRequest'), /not supported/);
  });
});
