/** The qkd command line: headless debug through the same adapter, and boot with the console on stdio. */
import * as assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { READY_LINE } from '../../src/guest/initramfs';
import { artifact, CLI, requireBuilt, sampleGuest } from '../support/env';
import { nmAddress } from '../support/oracle';

const run = promisify(execFile);

describe('qkd CLI', function () {
  this.timeout(240_000);

  it('guest build --json reuses the cached sample guest and prints its paths', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    const { stdout } = await run('node', [CLI, 'guest', 'build', '--json']);
    assert.deepEqual(JSON.parse(stdout), { arch: 'x86_64', kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, source: g.source });
  });

  it('debug --break kernel_clone --json stops there and prints the registers', async function () {
    requireBuilt(this);
    const g = sampleGuest(this);
    const { stdout, stderr } = await run('node', [CLI, 'debug', '--break', 'kernel_clone', '--json', '--accel', 'tcg', '--console-log', artifact(this, 'console.log')]);
    const out = JSON.parse(stdout) as { function: string; reason: string; pc: string; registers: Record<string, string> };
    assert.equal(out.function, 'kernel_clone');
    assert.equal(out.reason, 'breakpoint');
    assert.equal(BigInt(out.registers.rip), nmAddress(g.vmlinux, 'kernel_clone'));
    assert.match(stderr, /breakpoint kernel_clone: at 0x/);
  });

  it('debug names the bad field and exits 1', async function () {
    requireBuilt(this);
    await assert.rejects(run('node', [CLI, 'debug', '--kernel', '/nonexistent/bzImage', '--vmlinux', '/nonexistent/vmlinux']), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /'kernel'.*does not exist/);
      return true;
    });
  });

  it('boot puts the console on stdio: echo hi answers hi, reboot -f ends QEMU', async function () {
    requireBuilt(this);
    sampleGuest(this);
    const child = spawn('node', [CLI, 'boot', '--accel', 'tcg', '--console-log', artifact(this, 'console.log')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const seen = (re: RegExp, ms: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${re} not seen; output: ${out.slice(-300)}`)), ms);
        const check = (): void => {
          if (re.test(out)) {
            clearTimeout(timer);
            child.stdout.off('data', check);
            resolve();
          }
        };
        child.stdout.on('data', check);
        check();
      });
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await seen(new RegExp(READY_LINE), 120_000);
      child.stdin.write('echo hi\n');
      await seen(/\r?\nhi\r?\n/, 30_000);
      child.stdin.write('reboot -f\n');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
