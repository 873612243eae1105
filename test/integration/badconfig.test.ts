/**
 * A few bad configurations through the real adapter (dist/adapter.js): the error response
 * carries src/config's message, naming the field and the fix, and no QEMU is started.
 * test/unit/badconfig.test.ts has the full set through the resolver itself.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireBuilt } from '../support/env';
import { TestSession } from '../support/session';

describe('bad configurations through the adapter', function () {
  this.timeout(60_000);
  let s: TestSession;
  let dir: string;
  let kernel: string;

  before(function () {
    requireBuilt(this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-badcfg-it-'));
    kernel = path.join(dir, 'bzImage');
    fs.writeFileSync(kernel, 'not booted');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  beforeEach(async function () {
    s = new TestSession(this);
    await s.start();
  });
  afterEach(async () => s.stop());

  const fails = async (request: Promise<unknown>, pattern: RegExp): Promise<void> => {
    await assert.rejects(request, (e: Error) => {
      assert.match(e.message, pattern);
      return true;
    });
    assert.equal(s.console, undefined, 'no QEMU was started');
  };

  it('smp "two"', () => fails(s.dc.launchRequest(s.launchArgs({ kernel, smp: 'two' })), /'smp' must be a whole number, not "two"\. .*"smp": 2/));

  it('a kernel that is a directory', () => fails(s.dc.launchRequest(s.launchArgs({ kernel: dir })), /'kernel' \('.*'\) is a directory, not a file\. Point it at the kernel image/));

  it('"kernal" for kernel', () => fails(s.dc.launchRequest(s.launchArgs({ kernal: kernel })), /'kernel' is required \('kernal' is not known: did you mean 'kernel'\?\)\. Rename 'kernal' to 'kernel'/));

  it('a bad memory size with sampleGuest: refused before any guest build', () => fails(s.dc.launchRequest(s.launchArgs({ sampleGuest: true, memory: 'lots' })), /'memory' \('lots'\) is not a size\. .*512M/));

  it('warns about a typo in the Debug Console before failing on another field', async () => {
    await fails(s.dc.launchRequest(s.launchArgs({ kernel: path.join(dir, 'missing'), stopOnEntyr: true })), /'kernel'.*does not exist/);
    assert.ok(
      s.output.some((o) => /'stopOnEntyr' is not known\. Did you mean 'stopOnEntry'\? Rename it/.test(o)),
      s.output.join(''),
    );
  });

  it('attach to 0.0.0.0 is refused', () => fails(s.dc.attachRequest({ target: '0.0.0.0:1234' } as never), /'target' \('0\.0\.0\.0:1234'\) is a wildcard address.*"127\.0\.0\.1:1234"/));

  it('attach without target', () => fails(s.dc.attachRequest({} as never), /'target' is required\. Give the gdbstub as host:port/));
});
