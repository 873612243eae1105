/**
 * A stop in user mode, where the page tables of the stopped vCPU hide the kernel: x86_64
 * booted with `pti=on` (QEMU's CPU model is not Meltdown-affected, so PTI is off unless
 * forced), arm64 with `kpti=1` (KASLR alone may not need it). A busy loop runs in a
 * subshell; the guest is paused until the vCPU is caught in user mode. Kernel memory must
 * still read (through the kernel's own page tables, walked here), `current` and the task list
 * must still work, and Translate Address must say which tables mapped what, its physical
 * address holding the same bytes. riscv64 has no PTI, but QEMU's gdbstub reads with the
 * hart's privilege, and supervisor pages are out of a U-mode hart's reach: the same checks hold.
 */
import * as assert from 'node:assert/strict';
import { DebugProtocol } from '@vscode/debugprotocol';
import type { TasksResponseBody, TranslateResponseBody } from '../../src/adapter/events';
import type { GuestPaths } from '../../src/guest/build';
import { artifact, requireBuilt, sampleGuest } from '../support/env';
import { normalizeValue } from '../support/gdb';
import { startOwnGuest, type OwnGuest } from '../support/handover';
import { TestSession } from '../support/session';

const ARCHES = ['x86_64', 'aarch64', 'riscv64'];
const APPEND: Record<string, string> = { x86_64: 'kaslr pti=on', aarch64: 'kaslr kpti=1', riscv64: '' };
/** An expression that is 1 when the stopped vCPU runs user code. */
const IN_USER: Record<string, string> = { x86_64: '($cs & 3) == 3', aarch64: '($cpsr & 0xf) == 0', riscv64: '$priv == 0' };

for (const arch of ARCHES) {
  describe(`${arch}: a stop in user mode${APPEND[arch] ? ` (${APPEND[arch]})` : ''} still reads the kernel`, function () {
    this.timeout(600_000);
    let guest: GuestPaths;
    let vm: OwnGuest | undefined;
    let s: TestSession | undefined;
    let tid = 1;
    let frameId = 0;
    let pauses = 0;
    let whileRunning: TasksResponseBody | undefined;

    const evaluate = async (expression: string): Promise<string> =>
      (s as TestSession).dc
        .evaluateRequest({ expression, frameId, context: 'clipboard' })
        .then((r) => r.body.result)
        .catch((e: Error) => `<error: ${e.message}>`);

    before(async function () {
      requireBuilt(this);
      guest = sampleGuest(this, arch);
      vm = await startOwnGuest(guest, artifact(this, 'console.log'), APPEND[arch]);
      s = new TestSession(this);
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      await s.dc.attachRequest({ target: vm.gdbSocket, vmlinux: guest.vmlinux, arch, rspLog: artifact(this, 'rsp.log') } as DebugProtocol.AttachRequestArguments);
      await initialized;
      await s.dc.configurationDoneRequest();
      // The view asks only from a stopped guest: a running one is left running, and says so.
      whileRunning = (await s.dc.customRequest('qemuKernel.tasks', { ifStopped: true })).body as TasksResponseBody;
      vm.console.write('while :; do :; done &\n');
      await new Promise((r) => setTimeout(r, 1500));
      // Pause until the vCPU is caught running the loop, in user mode.
      for (pauses = 1; pauses <= 40; pauses++) {
        const stopped = s.dc.waitForEvent('stopped', 30_000);
        await s.dc.pauseRequest({ threadId: 1 });
        tid = ((await stopped) as DebugProtocol.StoppedEvent).body.threadId ?? 1;
        frameId = (await s.dc.stackTraceRequest({ threadId: tid })).body.stackFrames[0].id;
        if ((await evaluate(IN_USER[arch])) === '1') return;
        await s.dc.continueRequest({ threadId: tid });
        await new Promise((r) => setTimeout(r, 100 + 37 * pauses));
      }
      assert.fail('no pause caught the vCPU in user mode');
    });

    after(async () => {
      await s?.stop();
      await vm?.console.close();
      await vm?.kill();
    });

    it('kernel data reads at a user-mode stop: linux_banner, init_task, and current is the looping shell', async () => {
      assert.match(await evaluate('linux_banner'), /^"Linux version 6\.1\./);
      assert.equal(normalizeValue(await evaluate('init_task.comm')), '"swapper/0"');
      assert.equal(normalizeValue(await evaluate('$current->comm')), '"sh"');
      // eslint-disable-next-line no-console
      console.log(`      ${arch}: caught in user mode after ${pauses} pause(s)`);
    });

    it('the task list reads, with the looping shell running on the stopped CPU (and, asked while the guest ran with ifStopped, was not read)', async () => {
      assert.deepEqual(whileRunning, { running: true, tasks: [], cpus: [], ms: 0 });
      const body = (await (s as TestSession).dc.customRequest('qemuKernel.tasks', {})).body as TasksResponseBody;
      assert.ok(body.tasks.length > 20);
      const mine = body.tasks.find((t) => t.vcpu === tid);
      assert.equal(mine?.comm, 'sh', JSON.stringify(body.cpus));
      assert.equal(mine?.state, 'R');
    });

    it("Translate Address walks the kernel's tables where PTI hides the kernel, and the physical bytes are the banner's", async () => {
      const sess = s as TestSession;
      const t = (await sess.dc.customRequest('qemuKernel.translate', { expression: '&linux_banner', threadId: tid })).body as TranslateResponseBody;
      assert.ok(t.physical, t.text);
      assert.equal(t.root, arch === 'riscv64' ? 'vcpu' : 'kernel', t.text);
      assert.ok(t.levels.length >= 2, t.text);
      const mem = await sess.dc.customRequest('readMemory', { memoryReference: `phys:${t.physical}`, count: 14 });
      assert.equal(Buffer.from((mem.body as DebugProtocol.ReadMemoryResponse['body'])?.data ?? '', 'base64').toString('latin1'), 'Linux version ');
      // phys: with a virtual address reads where the page tables put it.
      const viaVa = await sess.dc.customRequest('readMemory', { memoryReference: `phys:${t.virtual}`, count: 14 });
      assert.equal(Buffer.from((viaVa.body as DebugProtocol.ReadMemoryResponse['body'])?.data ?? '', 'base64').toString('latin1'), 'Linux version ');
      // The user code the vCPU runs is mapped by its own tables.
      const u = (await sess.dc.customRequest('qemuKernel.translate', { expression: '$pc', threadId: tid })).body as TranslateResponseBody;
      assert.equal(u.root, 'vcpu', u.text);
      assert.ok(u.physical, u.text);
      // eslint-disable-next-line no-console
      console.log(t.text.split('\n').map((l) => `      ${l}`).join('\n'));
    });
  });
}
