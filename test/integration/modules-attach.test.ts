/**
 * Attaching to a guest that loaded qkd_sample before anyone attached: QEMU is started here
 * (not by the adapter), boots with `qkd.load=qkd_sample` (the guest's init loads the module
 * before its ready line), runs, and our adapter attaches to its gdbstub. At the first stop
 * the module is listed with its symbols, a function breakpoint in it is verified at once,
 * its globals read, and a write typed in the console stops in it. One boot per arch.
 *
 * It also prints how long the attach request takes and how long until the modules list
 * has the module (a measurement, not asserted).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { DebugProtocol } from '@vscode/debugprotocol';
import { GuestPaths } from '../../src/guest/build';
import { LOAD_PARAM } from '../../src/guest/initramfs';
import { artifact, requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { OwnGuest, startOwnGuest } from '../support/handover';
import { TestSession } from '../support/session';

const ARCHES = ['x86_64', 'aarch64', 'riscv64'];

for (const arch of ARCHES) {
  describe(`${arch}: attach to a running guest that has qkd_sample loaded`, function () {
    this.timeout(600_000);
    let guest: GuestPaths;
    let vm: OwnGuest | undefined;
    let s: TestSession | undefined;
    let tid = 1;
    let stoppedOnce = false;

    before(async function () {
      requireBuilt(this);
      guest = sampleGuest(this, arch);
      requireOrSkip(this, guest.modules !== undefined, `the ${arch} guest has no sample module (run: node dist/cli.js guest build --arch ${arch})`);
      vm = await startOwnGuest(guest, artifact(this, 'console.log'), `${LOAD_PARAM}=qkd_sample`);
      // init loads the module before it prints the ready line.
      assert.match(fs.readFileSync(vm.consoleLog, 'utf8'), /qkd_sample: loaded, start_value=42/);
    });

    after(async () => {
      await s?.stop();
      await vm?.console.close();
      await vm?.kill();
    });

    async function modules(): Promise<DebugProtocol.Module[]> {
      return ((await (s as TestSession).dc.customRequest('modules', {})).body.modules as DebugProtocol.Module[]) ?? [];
    }

    it('at the first stop the module is listed with its symbols, a breakpoint in it is verified, its globals read', async function () {
      s = new TestSession(this);
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      fs.rmSync(artifact(this, 'rsp.log'), { force: true });
      const t0 = performance.now();
      await s.dc.attachRequest({ target: vm?.gdbSocket, vmlinux: guest.vmlinux, arch, stopOnAttach: true, rspLog: artifact(this, 'rsp.log') } as DebugProtocol.AttachRequestArguments);
      const attachMs = performance.now() - t0;
      await initialized;
      // The list as soon as the attach has answered; then, if the module is not in it yet, until it is.
      let listed = (await modules()).find((m) => m.name === 'qkd_sample');
      const firstListMs = performance.now() - t0;
      while (!listed && performance.now() - t0 < 30_000) {
        await new Promise((r) => setTimeout(r, 50));
        listed = (await modules()).find((m) => m.name === 'qkd_sample');
      }
      const listedMs = performance.now() - t0;
      // eslint-disable-next-line no-console
      console.log(
        `      ${arch}: boot ${(vm?.bootMs ?? 0) / 1000} s; attach request ${attachMs.toFixed(0)} ms; modules list right after: ${firstListMs.toFixed(0)} ms (${listed ? 'qkd_sample in it' : 'qkd_sample not in it'}); qkd_sample listed at ${listedMs.toFixed(0)} ms`,
      );

      const [bp] = (await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'qkd_sample_do_cmd' }] })).body.breakpoints;
      assert.equal(bp.verified, true, `qkd_sample_do_cmd: ${bp.message ?? ''}`);
      const stopped = s.dc.waitForEvent('stopped');
      await s.dc.configurationDoneRequest();
      const stop = (await stopped) as DebugProtocol.StoppedEvent;
      tid = stop.body.threadId ?? 1;
      stoppedOnce = true;

      const m = (await modules()).find((x) => x.name === 'qkd_sample');
      assert.ok(m, `qkd_sample is not in the modules list: ${JSON.stringify(await modules())}`);
      assert.equal(m.path, guest.modules?.sample);
      assert.equal(m.symbolStatus, 'Symbols loaded');
      assert.match(String(m.addressRange), /^0x[0-9a-f]+-0x[0-9a-f]+$/);
      // Wherever the guest was stopped (idle, most likely), the module's globals are found by name.
      const top = (await s.dc.stackTraceRequest({ threadId: tid })).body.stackFrames[0];
      const evaluate = async (expression: string): Promise<string> => ((await s?.dc.evaluateRequest({ expression, frameId: top.id, context: 'watch' }))?.body.result ?? '');
      assert.equal(await evaluate('qkd_sample_state.nr_items'), '1');
      assert.equal(await evaluate('start_value'), '42');
    });

    it('a write typed in the console stops in qkd_sample_do_cmd, called from qkd_sample_write', async () => {
      const session = s as TestSession;
      assert.ok(vm && stoppedOnce, 'the attach did not stop the guest (see the first failure)');
      const stopped = session.dc.waitForEvent('stopped', 120_000);
      await session.dc.continueRequest({ threadId: tid });
      vm.console.write('echo add 7 > /dev/qkd_sample\n');
      const stop = (await stopped) as DebugProtocol.StoppedEvent;
      assert.equal(stop.body.reason, 'breakpoint');
      const frames = (await session.dc.stackTraceRequest({ threadId: stop.body.threadId ?? 1 })).body.stackFrames;
      const names = frames.map((f) => f.name.replace(/ \[inlined\]$/, ''));
      assert.equal(names[0], 'qkd_sample_do_cmd');
      assert.ok(names.includes('qkd_sample_write'), names.join(' < '));
      assert.equal((await session.dc.evaluateRequest({ expression: 'arg', frameId: frames[0].id, context: 'watch' })).body.result, '7');
      await session.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
    });
  });
}
