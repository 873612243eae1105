/**
 * What a schema can't say: which fields must come together, the syntax of strings (memory
 * sizes, gdbstub addresses), ranges, and arch names (aliases included, from src/arch).
 * Values with a `${...}` variable are left alone: the editor checks before substitution.
 */
import { getArch } from '../arch';
import { ErrorCode, UserError } from '../util/errors';
import { kaslrWord } from './defaults';
import { missing } from './schema';
import { parseTarget } from './target';
import type { Accel, Problem, Request } from './types';

export const ACCELS: readonly Accel[] = ['auto', 'kvm', 'tcg'];
export const MAX_SMP = 64;

const isVariable = (v: unknown): boolean => typeof v === 'string' && v.includes('${');
const invalid = (field: string, message: string, fix?: string): Problem => ({ field, message, fix, code: ErrorCode.InvalidField });

/** `request`, or the problem with it. */
export function requestOf(config: Record<string, unknown>): Request | Problem {
  if (config.request === 'launch' || config.request === 'attach') return config.request;
  return invalid('request', `Launch config field 'request' must be "launch" or "attach", not ${JSON.stringify(config.request)}.`, 'Use "launch" to boot a kernel under QEMU, or "attach" to connect to a running gdbstub.');
}

/** QEMU -m syntax: a number, MiB without a suffix; a fraction needs a K/M/G/T suffix. */
export function memoryProblem(memory: string): Problem | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/i.exec(memory.trim());
  if (!m || (m[1].includes('.') && !m[2]))
    return invalid('memory', `Launch config field 'memory' ('${memory}') is not a size. Use a number with an optional K/M/G/T suffix, e.g. 512M or 2G.`);
  if (Number(m[1]) === 0) return invalid('memory', `Launch config field 'memory' ('${memory}') is zero.`, 'Give the guest some RAM, e.g. "memory": "512M".');
  return undefined;
}

/** An arch name or alias getArch knows; its error lists the known ones. */
export function archProblem(arch: unknown): Problem | undefined {
  if (typeof arch !== 'string' || isVariable(arch)) return undefined;
  try {
    getArch(arch);
    return undefined;
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return { field: 'arch', message: e.message, code: e.code };
  }
}

function launchRules(config: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  if (!config.sampleGuest && !config.kernel) problems.push(missing(config, 'kernel', 'Give the kernel image to boot (e.g. "${workspaceFolder}/arch/x86/boot/bzImage"), or set "sampleGuest": true.'));
  if (config.initrd !== undefined && config.initramfs !== undefined)
    problems.push(invalid('initramfs', "Launch config fields 'initrd' and 'initramfs' are both set: the initrd would be made from the list and the other file ignored.", 'Keep "initramfs" (a gen_init_cpio list, made into the initrd) or "initrd" (a cpio archive), not both.'));
  if (typeof config.memory === 'string' && !isVariable(config.memory)) {
    const p = memoryProblem(config.memory);
    if (p) problems.push(p);
  }
  if (typeof config.smp === 'number' && Number.isInteger(config.smp) && config.smp > MAX_SMP)
    problems.push(invalid('smp', `Launch config field 'smp' (${config.smp}) must be a whole number from 1 to ${MAX_SMP}.`, 'Set the number of vCPUs, e.g. "smp": 2.'));
  if (typeof config.accel === 'string' && !isVariable(config.accel) && !ACCELS.includes(config.accel as Accel))
    problems.push(invalid('accel', `Launch config field 'accel' has unknown value '${config.accel}'.`, 'Use "auto", "kvm" or "tcg", or remove it for "auto".'));
  const said = typeof config.append === 'string' && !isVariable(config.append) ? kaslrWord(config.append) : undefined;
  if (typeof config.kaslr === 'boolean' && said !== undefined && said !== config.kaslr)
    problems.push(
      invalid('kaslr', `Launch config field 'kaslr' is ${String(config.kaslr)}, but 'append' has '${said ? 'kaslr' : 'nokaslr'}'.`, `Remove '${said ? 'kaslr' : 'nokaslr'}' from 'append', or set "kaslr": ${String(said)} (or "auto").`),
    );
  return problems;
}

function attachRules(config: Record<string, unknown>): Problem[] {
  if (typeof config.target !== 'string' || !config.target || isVariable(config.target)) return [];
  const t = parseTarget(config.target);
  return 'problem' in t ? [t.problem] : t.warning ? [t.warning] : [];
}

/** Rules beyond the schema for `request` (from the config itself when not given). */
export function checkRules(config: Record<string, unknown>, request?: Request): Problem[] {
  const req = request ?? requestOf(config);
  if (typeof req !== 'string') return [req];
  const arch = archProblem(config.arch);
  return [...(arch ? [arch] : []), ...(req === 'launch' ? launchRules(config) : attachRules(config))];
}
