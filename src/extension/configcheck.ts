/**
 * Launch-configuration logic that needs no editor: finding a kernel tree in a folder and the
 * configurations to offer. Checking a configuration is src/config's, the same code the
 * adapter resolves it with; the names it is known by here are re-exported.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { elfMachine } from '../config/files';

export { checkAgainstSchema, checkFiles, checkRules, checkConfig, checkSubstituted, problemText, isError, type Problem, type RequestSchema, type SchemaProp } from '../config';

export type DebugConfig = Record<string, unknown> & { type?: string; request?: string; name?: string };

export interface KernelTree {
  root: string;
  arch: string;
  /** Relative to root. */
  kernel?: string;
  vmlinux?: string;
}

const ELF_MACHINES: Record<number, string> = { 62: 'x86_64', 183: 'aarch64', 243: 'riscv64' };
const ARCH_DIRS: Record<string, { arch: string; images: string[] }> = {
  x86: { arch: 'x86_64', images: ['bzImage'] },
  arm64: { arch: 'aarch64', images: ['Image', 'Image.gz'] },
  riscv: { arch: 'riscv64', images: ['Image', 'Image.gz'] },
};

/**
 * A built kernel tree at `root`: `vmlinux` (its ELF header says the arch) and/or
 * `arch/<dir>/boot/<image>`. Undefined when neither is there.
 */
export function detectKernelTree(root: string): KernelTree | undefined {
  const vmlinux = path.join(root, 'vmlinux');
  const machine = fs.existsSync(vmlinux) ? elfMachine(vmlinux) : undefined;
  const fromElf = machine !== undefined ? ELF_MACHINES[machine] : undefined;
  let image: { arch: string; rel: string } | undefined;
  for (const [dir, spec] of Object.entries(ARCH_DIRS)) {
    if (fromElf && spec.arch !== fromElf) continue;
    const found = spec.images.find((i) => fs.existsSync(path.join(root, 'arch', dir, 'boot', i)));
    if (found) {
      image = { arch: spec.arch, rel: path.posix.join('arch', dir, 'boot', found) };
      break;
    }
  }
  const arch = fromElf ?? image?.arch;
  if (!arch) return undefined;
  return { root, arch, kernel: image?.rel, vmlinux: fromElf ? 'vmlinux' : undefined };
}

export const SAMPLE_GUEST_CONFIG: DebugConfig = { type: 'qemu-kernel', request: 'launch', name: 'Debug sample guest', sampleGuest: true, breakAt: ['kernel_clone'] };

/** A launch configuration for a kernel tree, with paths relative to the workspace folder. */
export function treeConfig(tree: KernelTree): DebugConfig | undefined {
  if (!tree.kernel) return undefined;
  const cfg: DebugConfig = { type: 'qemu-kernel', request: 'launch', name: `Debug kernel tree (${tree.arch})`, arch: tree.arch, kernel: '${workspaceFolder}/' + tree.kernel };
  if (tree.vmlinux) cfg.vmlinux = '${workspaceFolder}/' + tree.vmlinux;
  return cfg;
}

/** What launch.json starts with: the workspace's own kernel first when there is one, then the sample guest. */
export function initialConfigurations(root: string | undefined): DebugConfig[] {
  const tree = root ? detectKernelTree(root) : undefined;
  const own = tree ? treeConfig(tree) : undefined;
  return own ? [own, { ...SAMPLE_GUEST_CONFIG }] : [{ ...SAMPLE_GUEST_CONFIG }];
}
