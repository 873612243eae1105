/** Values the resolver fills in for fields the user left out. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ArchInfo } from '../arch/types';
import type { KaslrChoice } from './types';

export const DEFAULT_MEMORY = '512M';

/**
 * Add `console=` for the arch unless the user chose one, and `nokaslr` or `kaslr` as `kaslr`
 * asks unless `append` already says (resolve.ts refuses the two disagreeing).
 */
export function effectiveAppend(append: string | undefined, arch: ArchInfo, kaslr: KaslrChoice = 'auto'): string {
  const words = (append ?? '').trim().split(/\s+/).filter(Boolean);
  if (!words.some((w) => w.startsWith('console='))) words.push(`console=${arch.console}`);
  if (kaslr !== 'auto' && !words.some((w) => /^(no)?kaslr$/.test(w))) words.push(kaslr ? 'kaslr' : 'nokaslr');
  return words.join(' ');
}

/** `kaslr` or `nokaslr` in a command line, the last one winning as in the kernel's parser. */
export function kaslrWord(append: string | undefined): boolean | undefined {
  const w = (append ?? '').split(/\s+/).filter((x) => /^(no)?kaslr$/.test(x)).pop();
  return w === undefined ? undefined : w === 'kaslr';
}

export function defaultConsoleLog(): string {
  const state = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.join(state, 'qemu-kernel-debug', 'logs', `console-${stamp}-${process.pid}.log`);
}

/** `<tree>/arch/x86/boot/bzImage` → `<tree>/vmlinux`, or a vmlinux in the kernel's own folder. */
export function guessVmlinux(kernel: string, arch: ArchInfo): string | undefined {
  const candidates: string[] = [path.join(path.dirname(kernel), 'vmlinux')];
  const suffix = '/' + arch.bootImage;
  if (kernel.endsWith(suffix)) candidates.unshift(path.join(kernel.slice(0, -suffix.length), 'vmlinux'));
  return candidates.find((c) => fs.existsSync(c));
}
