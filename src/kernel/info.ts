/**
 * The running kernel in one line for the Debug Console: release, whether its build ID is the
 * vmlinux's (a different build would make every symbol a lie), CPUs online, and the command
 * line it booted with. All read from guest memory at a stop.
 */
import { readCString, readUint, type KernelAccess } from './layout';
import { gnuBuildId } from './modules';
import { kernelRelease } from './release';

export interface KernelInfo {
  release?: string;
  /** The build ID the running kernel keeps in its notes (`__start_notes`). */
  buildId?: string;
  cpus?: number;
  cmdline?: string;
}

export async function readKernelInfo(access: KernelAccess): Promise<KernelInfo> {
  const info: KernelInfo = {};
  info.release = await kernelRelease(access).catch(() => undefined);
  const start = access.symbol('__start_notes');
  const stop = access.symbol('__stop_notes');
  if (start !== undefined && stop !== undefined && stop > start && stop - start < 4096n) {
    info.buildId = gnuBuildId(await access.read(start, Number(stop - start)).catch(() => Buffer.alloc(0)));
  }
  const online = access.symbol('__num_online_cpus');
  if (online !== undefined) info.cpus = Number(readUint(await access.read(online, 4).catch(() => Buffer.alloc(4)), 0, 4)) || undefined;
  const cmd = access.symbol('saved_command_line');
  if (cmd !== undefined) {
    const p = readUint(await access.read(cmd, access.pointerSize).catch(() => Buffer.alloc(8)), 0, access.pointerSize);
    if (p !== 0n) info.cmdline = await readCString(access, p, 4096).catch(() => undefined);
  }
  return info;
}

/** `Kernel: Linux 6.1.192, build ID 3066b90c… (vmlinux's), 2 CPUs online, KASLR offset 0x…, command line: …`. */
export function describeKernel(info: KernelInfo, vmlinuxBuildId: string | undefined, offset: bigint | undefined): string {
  const parts = [`Linux ${info.release ?? '(release unreadable)'}`];
  if (info.buildId) {
    const same = vmlinuxBuildId === undefined ? '' : info.buildId === vmlinuxBuildId ? " (vmlinux's)" : ` (NOT vmlinux's ${vmlinuxBuildId}: symbols, lines and variables will be wrong; point "vmlinux" at this kernel's build)`;
    parts.push(`build ID ${info.buildId}${same}`);
  }
  if (info.cpus) parts.push(`${info.cpus} CPU${info.cpus === 1 ? '' : 's'} online`);
  if (offset !== undefined) parts.push(offset === 0n ? 'at its link addresses' : `KASLR offset 0x${offset.toString(16)}`);
  if (info.cmdline !== undefined) parts.push(`command line: ${info.cmdline}`);
  return `Kernel: ${parts.join(', ')}`;
}
