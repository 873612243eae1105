/**
 * The running kernel as the kernel/ layer reads it: memory through the stop's cache, vmlinux's
 * data symbols where the kernel runs them (KASLR applied), and types from the unit that
 * defines them, found near functions of that unit (no whole-vmlinux index needed).
 */
import type { KernelAccess } from '../kernel/layout';
import type { ImageSet } from '../symbols/imageset';
import type { KernelTarget } from './target';
import type { Program } from './values/program';

export function kernelAccess(target: KernelTarget, images: ImageSet, program: () => Program | undefined, thread: () => number): KernelAccess {
  return {
    pointerSize: target.arch.pointerSize,
    // Through the stop's memory cache: neighbouring fields and records share blocks.
    read: (addr, size) => target.memory(thread()).read(addr, size),
    readMany: (ranges) => target.memory(thread()).readMany(ranges),
    symbol: (name) => images.kernelSymbols(name).find((x) => x.type !== 'func' && x.value !== 0n)?.value,
    type: async (key, near) => {
      const p = program();
      for (const fn of near) {
        const sym = images.kernelSymbols(fn).find((x) => x.type === 'func' && x.value !== 0n);
        const t = sym && p?.typeNear(key, sym.value);
        if (t) return p?.types.complete(t) ?? t;
      }
      return undefined;
    },
  };
}
