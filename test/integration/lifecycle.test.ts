/** No QEMU outlives its session: not when the adapter is SIGKILLed, nor when its client vanishes. */
import * as assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { processAlive, requireBuilt, sampleGuest, waitForExit } from '../support/env';
import { TestSession } from '../support/session';

function adapterProcess(s: TestSession): ChildProcess {
  return (s.dc as unknown as { _adapterProcess: ChildProcess })._adapterProcess;
}

describe('QEMU lifetime follows the session', function () {
  this.timeout(180_000);

  for (const how of ['SIGKILL to the adapter', 'the client closes stdin']) {
    it(`QEMU ends when ${how}`, async function () {
      requireBuilt(this);
      const g = sampleGuest(this);
      const s = new TestSession(this);
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      await s.dc.launchRequest(s.launchArgs({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd }));
      await initialized;
      const { pid } = await s.consoleEvent;
      assert.equal(processAlive(pid), true);
      const adapter = adapterProcess(s);
      if (how.startsWith('SIGKILL')) adapter.kill('SIGKILL');
      else adapter.stdin?.end();
      assert.equal(await waitForExit(pid, 10_000), true, `QEMU ${pid} outlived its adapter`);
      // The adapter is gone: close our ends without sending disconnect to nobody.
      (s.dc as unknown as { stopAdapter(): void }).stopAdapter();
    });
  }
});
