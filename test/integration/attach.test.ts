/** Attach to a QEMU someone else started, paused, with a gdbstub on 127.0.0.1. */
import * as assert from 'node:assert/strict';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import { artifact, requireBuilt, sampleGuest } from '../support/env';
import { nmAddress } from '../support/oracle';
import { TestSession } from '../support/session';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Resolves once something listens on the port (QEMU opens the gdbstub before it runs). */
function listening(port: number, qemu: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const tryOnce = (): void => {
      if (qemu.exitCode !== null) return reject(new Error(`QEMU exited with ${qemu.exitCode}`));
      const sock = net.createConnection({ host: '127.0.0.1', port });
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => (Date.now() > deadline ? reject(new Error('gdbstub never listened')) : setTimeout(tryOnce, 50)));
    };
    tryOnce();
  });
}

describe('attach to a running QEMU gdbstub', function () {
  this.timeout(180_000);
  let qemu: ChildProcess | undefined;
  let s: TestSession | undefined;

  afterEach(async () => {
    await s?.stop();
    qemu?.kill('SIGKILL');
  });

  it('attaches to 127.0.0.1:PORT, sets kernel_clone and stops there', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    const port = await freePort();
    qemu = spawn('qemu-system-x86_64', ['-nodefaults', '-display', 'none', '-accel', 'tcg', '-m', '512M', '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0 nokaslr', '-serial', `file:${artifact(this, 'console.log')}`, '-gdb', `tcp:127.0.0.1:${port}`, '-S'], { stdio: 'ignore' });
    await listening(port, qemu, 20_000);
    // The probe connection above may have stopped the VM; it never ran, so that changes nothing.
    s = new TestSession(this);
    await s.start();
    const initialized = s.dc.waitForEvent('initialized');
    await s.dc.attachRequest({ target: `127.0.0.1:${port}`, vmlinux: g.vmlinux, rspLog: artifact(this, 'rsp.log') } as never);
    await initialized;
    // A QEMU with anonymous RAM: read through the gdbstub, and the user is told how to do better.
    assert.ok(s.output.some((o) => o.includes('Guest memory is read through the gdbstub. Start QEMU with -object memory-backend-memfd')), s.output.join(''));
    const changed: DebugProtocol.Breakpoint[] = [];
    s.dc.on('breakpoint', (e: DebugProtocol.BreakpointEvent) => changed.push(e.body.breakpoint));
    const bps = (await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] })).body.breakpoints;
    // Attached at the reset vector: the kernel has not chosen where to run yet (KASLR), so
    // the breakpoint is armed at every place it can be (TCG, found through `info kvm`).
    assert.equal(bps[0].verified, false);
    assert.match(bps[0].message ?? '', /armed at each of the \d{3} places this kernel can run at/);
    const stopped = s.dc.waitForEvent('stopped');
    await s.dc.configurationDoneRequest();
    const ev = (await stopped) as { body: { reason: string; threadId: number } };
    assert.equal(ev.body.reason, 'breakpoint');
    const top = await s.topFrame(ev.body.threadId);
    assert.equal(top.name, 'kernel_clone');
    assert.equal(BigInt(top.instructionPointerReference as string), nmAddress(g.vmlinux, 'kernel_clone'));
    // The hit told where the kernel runs (nokaslr: at its link address), and the breakpoint is placed there for good.
    const now = changed.filter((b) => b.id === bps[0].id).pop();
    assert.ok(now?.verified, JSON.stringify(changed));
    assert.equal(now.instructionReference, top.instructionPointerReference);
    // Detaching leaves someone else's QEMU running.
    await s.dc.disconnectRequest({});
    assert.equal(qemu.exitCode, null);
  });

  it('names the target field when nothing listens there', async function () {
    requireBuilt(this);
    const port = await freePort();
    s = new TestSession(this);
    await s.start();
    await assert.rejects(s.dc.attachRequest({ target: `127.0.0.1:${port}` } as never), /Cannot connect to the gdbstub at '127\.0\.0\.1:\d+'.*ECONNREFUSED/);
    await assert.rejects(s.dc.attachRequest({ target: 'not a target' } as never), /'target'.*neither host:port nor a unix socket path/);
  });
});
