/** Turning CLI options into a launch config, with the sample guest as the default kernel. */
import { initramfsList, parseLaunch } from '../config';
import { initramfsFromList, problemLine } from '../guest/initramfslist';
import type { Accel, KaslrChoice, LaunchConfig } from '../config/types';
import { buildGuest } from '../guest/build';
import { errors } from '../util/errors';

export interface LaunchFlags {
  kernel?: string;
  vmlinux?: string;
  initrd?: string;
  initramfs?: string;
  append?: string;
  arch?: string;
  memory?: string;
  smp?: string;
  accel?: string;
  kaslr?: string;
  qemu?: string;
  'console-log'?: string;
  'rsp-log'?: string;
  'module-path'?: string[];
}

export const say = (m: string): void => void process.stderr.write(`qkd: ${m}\n`);

export async function launchConfigFrom(flags: LaunchFlags): Promise<LaunchConfig> {
  const cfg: LaunchConfig = {
    arch: flags.arch,
    kernel: flags.kernel,
    vmlinux: flags.vmlinux,
    initrd: flags.initrd,
    initramfs: flags.initramfs,
    append: flags.append,
    memory: flags.memory,
    accel: flags.accel as Accel | undefined,
    qemuPath: flags.qemu,
    consoleLog: flags['console-log'],
    rspLog: flags['rsp-log'],
    modulePaths: flags['module-path'],
  };
  if (flags.smp !== undefined) {
    const n = Number(flags.smp);
    if (!Number.isInteger(n)) throw errors.invalidField('smp', `('${flags.smp}') is not a whole number`, 'Use e.g. --smp 2.');
    cfg.smp = n;
  }
  if (flags.kaslr !== undefined) cfg.kaslr = kaslrFlag(flags.kaslr);
  if (!cfg.kernel && (cfg.vmlinux || cfg.initrd)) throw errors.missingField('kernel', 'Give --kernel too, or none of --kernel/--vmlinux/--initrd to use the sample guest.');
  // Checked by the resolver the adapter uses too, before a sample guest build of minutes.
  const spec = parseLaunch({ ...cfg, sampleGuest: !cfg.kernel });
  const list = initramfsList(spec);
  let made: string | undefined;
  if (list) {
    const a = initramfsFromList(list);
    for (const p of a.problems) say(problemLine(list, p));
    say(a.rebuilt ? `initramfs made from ${list}` : `initramfs from ${list} is unchanged`);
    made = a.file;
    delete cfg.initramfs;
  }
  if (!spec.needsGuest) return made ? { ...cfg, initrd: made } : cfg;
  const g = await buildGuest(spec.arch.name, say);
  return { ...cfg, kernel: g.kernel, vmlinux: g.vmlinux, initrd: made ?? g.initrd };
}

function kaslrFlag(v: string): KaslrChoice {
  if (v === 'auto') return 'auto';
  if (v === 'true' || v === 'on') return true;
  if (v === 'false' || v === 'off') return false;
  throw errors.invalidField('kaslr', `('${v}') is not auto, true or false`, 'Use --kaslr auto (the kernel\'s own setting), --kaslr false (boot with nokaslr) or --kaslr true.');
}
