import { errors } from '../util/errors';
import { ArchInfo } from './types';
import { x86_64 } from './x86_64';

export type { ArchInfo } from './types';

const ARCHES: Record<string, ArchInfo> = { x86_64 };
const ALIASES: Record<string, string> = { amd64: 'x86_64', x86: 'x86_64' };

export const knownArches = (): string[] => Object.keys(ARCHES);

export function getArch(name: string): ArchInfo {
  const arch = ARCHES[ALIASES[name] ?? name];
  if (!arch) throw errors.unknownArch(name, knownArches());
  return arch;
}

export function archForElfMachine(machine: number): ArchInfo | undefined {
  return Object.values(ARCHES).find((a) => a.elfMachine === machine);
}
