import { errors } from '../util/errors';
import { aarch64 } from './aarch64';
import { riscv64 } from './riscv64';
import { ArchInfo } from './types';
import { x86_64 } from './x86_64';

export type { ArchInfo, BranchInfo } from './types';

const ARCHES: Record<string, ArchInfo> = { x86_64, aarch64, riscv64 };
/** Other names for the same arch: Debian's and the kernel's (arm64, riscv), and uname's. */
const ALIASES: Record<string, string> = { amd64: 'x86_64', x86: 'x86_64', arm64: 'aarch64', riscv: 'riscv64' };

export const knownArches = (): string[] => Object.keys(ARCHES);

export function getArch(name: string): ArchInfo {
  const arch = ARCHES[ALIASES[name] ?? name];
  if (!arch) throw errors.unknownArch(name, knownArches());
  return arch;
}

export function archForElfMachine(machine: number): ArchInfo | undefined {
  return Object.values(ARCHES).find((a) => a.elfMachine === machine);
}
