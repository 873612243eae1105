import { errors } from '../util/errors';
import { aarch64 } from './aarch64';
import { riscv64 } from './riscv64';
import { archFacts, archNames } from './facts';
import { ArchInfo } from './types';
import { x86_64 } from './x86_64';

export type { ArchInfo, BranchInfo } from './types';
export { ARCH_FACTS, DEFAULT_ARCH, archFacts, archNames, factsForElfMachine, supportedMachine } from './facts';

/** The descriptions, by name; names, aliases and ELF machines are in ./facts. */
const ARCHES: Record<string, ArchInfo> = { x86_64, aarch64, riscv64 };

export const knownArches = archNames;

export function getArch(name: string): ArchInfo {
  const facts = archFacts(name);
  const arch = facts && ARCHES[facts.name];
  if (!arch) throw errors.unknownArch(name, knownArches());
  return arch;
}

export function archForElfMachine(machine: number): ArchInfo | undefined {
  return Object.values(ARCHES).find((a) => a.elfMachine === machine);
}
