/** The guest's serial console: logged while nobody watches, replayed from boot, and typed into. */
import * as assert from 'node:assert/strict';
import { READY_LINE } from '../../src/guest/initramfs';
import { GuestConsole, waitForConsole } from '../../src/qemu/console';
import { requireBuilt, sampleGuest } from '../support/env';
import { TestSession } from '../support/session';

function collect(con: GuestConsole): { text: () => string; until: (re: RegExp, ms: number) => Promise<string> } {
  let text = '';
  const waiters: Array<() => void> = [];
  con.on('data', (d: Buffer) => {
    text += d.toString('utf8');
    for (const w of waiters.splice(0)) w();
  });
  return {
    text: () => text,
    until: (re, ms) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${re} not seen within ${ms} ms; last output: ${JSON.stringify(text.slice(-400))}`)), ms);
        const check = (): void => {
          if (re.test(text)) {
            clearTimeout(timer);
            resolve(text);
          } else waiters.push(check);
        };
        check();
      }),
  };
}

describe('guest console', function () {
  this.timeout(180_000);
  let s: TestSession;

  before(async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    s = new TestSession(this);
    await s.start();
    const initialized = s.dc.waitForEvent('initialized');
    await s.dc.launchRequest(s.launchArgs({ kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd }));
    await initialized;
    await s.dc.configurationDoneRequest();
  });
  after(async () => s?.stop());

  it('logs the boot while no terminal is attached', async () => {
    const info = await s.consoleEvent;
    const text = await waitForConsole(info.log, READY_LINE, 120_000, info.logStart);
    assert.match(text, /Linux version 6\.1/);
    assert.match(text, /Run \/init as init process/);
  });

  it('typing "echo hi" into the console returns hi', async () => {
    const info = await s.consoleEvent;
    const con = new GuestConsole(info.log, info.socket);
    const out = collect(con);
    con.start();
    try {
      assert.equal(await con.ready(), true);
      // A viewer opened late still starts from the beginning of the boot.
      await out.until(new RegExp(READY_LINE), 30_000);
      assert.match(out.text(), /^\S*\[\s+0\.000000\] Linux version/);
      con.write('echo hi\n');
      // The line the shell printed, not the echo of what we typed ("/ # echo hi").
      await out.until(/\r?\nhi\r?\n/, 30_000);
    } finally {
      await con.close();
    }
  });

  it('a breakpoint set while the guest runs is hit when a typed command forks', async function () {
    const info = await s.consoleEvent;
    const bps = (await s.dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'kernel_clone' }] })).body.breakpoints;
    assert.equal(bps[0].verified, true);
    const con = new GuestConsole(info.log, info.socket);
    con.start();
    try {
      assert.equal(await con.ready(), true);
      const stopped = s.dc.waitForEvent('stopped', 60_000);
      // busybox's ls is an applet run in a forked child: the shell calls fork → kernel_clone.
      con.write('ls /\n');
      const ev = (await stopped) as { body: { reason: string; threadId: number } };
      assert.equal(ev.body.reason, 'breakpoint');
      assert.equal((await s.topFrame(ev.body.threadId)).name, 'kernel_clone');
      await s.dc.setFunctionBreakpointsRequest({ breakpoints: [] });
      await s.dc.continueRequest({ threadId: ev.body.threadId });
      await waitForConsole(info.log, /ls \/\r?\n.*bin/s, 30_000, info.logStart);
    } finally {
      await con.close();
    }
  });

  it('a reopened console replays everything, including the earlier exchange', async () => {
    const info = await s.consoleEvent;
    // The kernel may print between the typed line's echo and its answer (seen: a mouse probed mid-command).
    const text = await waitForConsole(info.log, /echo hi\r?\n(?:\[ *\d+\.\d+\] [^\n]*\n)*hi\r?\n/, 10_000, info.logStart);
    assert.ok(text.indexOf('Linux version') < text.indexOf(READY_LINE));
  });
});
