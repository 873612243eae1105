/**
 * Launch-configuration logic that needs no editor: finding a kernel tree in a folder, the
 * configurations to offer, and checking a configuration against the schema package.json
 * contributes (one source of truth for IntelliSense and validation) plus the rules a schema
 * can't say. Every problem names the field and how to fix it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type DebugConfig = Record<string, unknown> & { type?: string; request?: string; name?: string };

export interface SchemaProp {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  items?: SchemaProp;
  additionalProperties?: SchemaProp | boolean;
}

export interface RequestSchema {
  required?: string[];
  properties: Record<string, SchemaProp>;
}

export interface Problem {
  field: string;
  message: string;
}

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

/** e_machine of an ELF file, or undefined when it is not a 64-bit little-endian ELF. */
function elfMachine(file: string): number | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const h = Buffer.alloc(20);
    if (fs.readSync(fd, h, 0, 20, 0) < 20) return undefined;
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return undefined;
    return h.readUInt16LE(18);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

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

/** Fields VS Code itself gives meaning to in any debug configuration. */
const GENERIC_FIELDS = new Set(['type', 'request', 'name', 'preLaunchTask', 'postDebugTask', 'presentation', 'internalConsoleOptions', 'debugServer', 'suppressMultipleSessionWarning', 'serverReadyAction', 'windows', 'linux', 'osx', 'cwd', '__configurationTarget', '__sessionId', 'noDebug']);

function typeOf(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(v: unknown, want: string | string[]): boolean {
  const got = typeOf(v);
  const wants = Array.isArray(want) ? want : [want];
  return wants.some((w) => w === got || (w === 'number' && got === 'integer'));
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
  return d[a.length][b.length];
}

function checkValue(field: string, v: unknown, p: SchemaProp): Problem[] {
  if (p.type && !typeMatches(v, p.type)) return [{ field, message: `Launch config field '${field}' must be ${Array.isArray(p.type) ? p.type.join(' or ') : p.type === 'integer' ? 'a whole number' : `a ${p.type}`}, not ${JSON.stringify(v)}.` }];
  if (p.enum && !p.enum.includes(v)) return [{ field, message: `Launch config field '${field}' has unknown value ${JSON.stringify(v)}. Use one of: ${p.enum.map((x) => String(x)).join(', ')}.` }];
  if (p.minimum !== undefined && typeof v === 'number' && v < p.minimum) return [{ field, message: `Launch config field '${field}' must be at least ${p.minimum}, not ${v}.` }];
  if (p.items && Array.isArray(v)) return v.flatMap((x, i) => checkValue(`${field}[${i}]`, x, p.items as SchemaProp));
  if (p.additionalProperties && typeof p.additionalProperties === 'object' && typeOf(v) === 'object') {
    const ap = p.additionalProperties;
    return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => checkValue(`${field}.${k}`, x, ap));
  }
  return [];
}

/** Check types, enums and minimums from the schema; unknown fields close to a known one are typos. */
export function checkAgainstSchema(config: DebugConfig, schema: RequestSchema): Problem[] {
  const problems: Problem[] = [];
  for (const [field, v] of Object.entries(config)) {
    if (GENERIC_FIELDS.has(field) || v === undefined) continue;
    const p = schema.properties[field];
    if (p) {
      problems.push(...checkValue(field, v, p));
      continue;
    }
    const near = Object.keys(schema.properties).filter((k) => distance(k, field) <= Math.max(1, Math.floor(k.length / 4)));
    if (near.length) problems.push({ field, message: `Launch config field '${field}' is not known. Did you mean '${near[0]}'?` });
  }
  for (const field of schema.required ?? []) {
    if (config[field] === undefined || config[field] === '') problems.push({ field, message: `Launch config field '${field}' is required.` });
  }
  return problems;
}

/** Rules beyond the schema: what must come together, and the shape of strings. */
export function checkRules(config: DebugConfig): Problem[] {
  const problems: Problem[] = [];
  if (config.request !== 'launch' && config.request !== 'attach') {
    problems.push({ field: 'request', message: `Launch config field 'request' must be "launch" or "attach", not ${JSON.stringify(config.request)}.` });
    return problems;
  }
  if (config.request === 'launch') {
    if (!config.sampleGuest && !config.kernel) problems.push({ field: 'kernel', message: "Launch config field 'kernel' is required: give the kernel image to boot (e.g. \"${workspaceFolder}/arch/x86/boot/bzImage\"), or set \"sampleGuest\": true." });
    if (typeof config.memory === 'string' && !/^\d+(\.\d+)?[KMGT]?$/i.test(config.memory.trim()))
      problems.push({ field: 'memory', message: `Launch config field 'memory' ('${config.memory}') is not a size. Use a number with an optional K/M/G/T suffix, e.g. 512M or 2G.` });
  } else if (typeof config.target === 'string' && !/^[^:\s]+:\d{1,5}$/.test(config.target) && !config.target.includes('/')) {
    problems.push({ field: 'target', message: `Launch config field 'target' ('${config.target}') is neither host:port nor a unix socket path. Use e.g. "127.0.0.1:1234" (QEMU -s or -gdb tcp:127.0.0.1:1234).` });
  }
  return problems;
}

/** After variable substitution: the files the configuration names must exist. */
export function checkFiles(config: DebugConfig, exists: (p: string) => boolean = fs.existsSync): Problem[] {
  const problems: Problem[] = [];
  const fields = config.request === 'launch' && config.sampleGuest ? ['qemuPath'] : ['kernel', 'vmlinux', 'initrd', 'qemuPath'];
  for (const field of fields) {
    const v = config[field];
    if (typeof v !== 'string' || !v) continue;
    if (v.includes('${')) problems.push({ field, message: `Launch config field '${field}': '${v}' has a variable VS Code could not substitute.` });
    else if (!exists(v)) problems.push({ field, message: `Launch config field '${field}': file '${v}' does not exist. ${field === 'kernel' ? 'Build the kernel (make -j$(nproc)) or fix the path.' : 'Fix the path or remove the field.'}` });
  }
  return problems;
}
