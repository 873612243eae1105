/** Values the resolver fills in for fields the user left out. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ArchInfo } from '../arch/types';

export const DEFAULT_MEMORY = '512M';

/** Add `console=` for the arch and `nokaslr` (symbols match addresses) unless the user chose otherwise. */
export function effectiveAppend(append: string | undefined, arch: ArchInfo): string {
  const words = (append ?? '').trim().split(/\s+/).filter(Boolean);
  if (!words.some((w) => w.startsWith('console='))) words.push(`console=${arch.console}`);
  if (!words.some((w) => /(^|no)kaslr$/.test(w))) words.push('nokaslr');
  return words.join(' ');
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
