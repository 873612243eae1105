/** `qkd guest build`. */
import { parseArgs } from 'node:util';
import { buildGuest } from '../guest/build';
import { RECIPES } from '../guest/recipes';
import { LAUNCH_OPTIONS } from './options';
import { say } from './launchargs';

export async function guestCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { arch: LAUNCH_OPTIONS.arch, json: LAUNCH_OPTIONS.json } });
  if (positionals[0] !== 'build') {
    process.stderr.write(`usage: qkd guest build [--arch ${Object.keys(RECIPES).join('|')}] [--json]\n`);
    return 2;
  }
  const g = await buildGuest(values.arch ?? 'x86_64', say);
  const modules = g.modules ? { dir: g.modules.dir, sample: g.modules.sample, release: g.modules.release, guestDir: g.modules.guestDir } : undefined;
  if (values.json) process.stdout.write(JSON.stringify({ arch: g.arch, kernel: g.kernel, vmlinux: g.vmlinux, initrd: g.initrd, source: g.source, modules, gdbScripts: g.gdbScripts }) + '\n');
  else
    process.stdout.write(
      `kernel:  ${g.kernel}\nvmlinux: ${g.vmlinux}\ninitrd:  ${g.initrd}\nsource:  ${g.source}\n${g.busybox ? `busybox: ${g.busybox}\n` : ''}` +
        (modules ? `module:  ${modules.sample} (in the guest: ${modules.guestDir}/qkd_sample.ko)\n` : ''),
    );
  return 0;
}
