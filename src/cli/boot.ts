/** `qkd boot`: boot a kernel with its serial console on this terminal. Ctrl-A x quits. */
import { parseArgs } from 'node:util';
import { decideAccel } from '../qemu/kvmprobe';
import { kvmBootTrial } from '../qemu/boottrial';
import { resolveLaunchConfig } from '../qemu/config';
import { shellQuote } from '../qemu/argv';
import { GuestConsole } from '../qemu/console';
import { QemuInstance } from '../qemu/instance';
import { launchConfigFrom, say } from './launchargs';
import { LAUNCH_OPTIONS } from './options';

export async function bootCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: LAUNCH_OPTIONS });
  const cfg = resolveLaunchConfig(await launchConfigFrom(values), false);
  const accel = await decideAccel(cfg.accel, cfg.qemuPath, cfg.arch, () => {
    say('checking that KVM boots this kernel (a few seconds, once per host boot)');
    return kvmBootTrial(cfg);
  });
  say(`accelerator: ${accel.reason}`);
  const inst = await QemuInstance.start(cfg, accel.accel);
  say(`QEMU: ${shellQuote(inst.argv)}`);
  say(`console log: ${cfg.consoleLog}`);
  say('Ctrl-A x quits; the guest console follows.');

  const con = new GuestConsole(cfg.consoleLog, inst.paths.consoleSocket, { fromOffset: inst.consoleLogStart });
  con.on('data', (d: Buffer) => process.stdout.write(d));
  con.start();
  await con.ready();
  await inst.qmp.execute('cont');

  const stdin = process.stdin;
  const tty = stdin.isTTY;
  if (tty) stdin.setRawMode(true);
  let escape = false;
  const quit = (): void => void inst.stop();
  stdin.on('data', (d: Buffer) => {
    if (!tty) return void con.write(d);
    for (const byte of d) {
      if (escape) {
        escape = false;
        if (byte === 0x78 /* x */) return quit();
        if (byte !== 0x01) con.write(Buffer.from([0x01]));
      } else if (byte === 0x01) {
        escape = true;
        continue;
      }
      con.write(Buffer.from([byte]));
    }
  });
  stdin.on('end', () => undefined);
  for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.on(sig, quit);

  const exit = await inst.exited;
  await con.close();
  if (tty) {
    stdin.setRawMode(false);
    // The guest's prompt is usually left without a newline.
    process.stderr.write('\r\n');
  }
  stdin.pause();
  say(`QEMU exited (${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`}); console log kept at ${cfg.consoleLog}`);
  return exit.code === 0 || exit.signal ? 0 : 1;
}
