/**
 * The shape of the launch and attach configurations: a small JSON-schema checker and the
 * schemas the resolver checks against. package.json's `configurationAttributes` (what the
 * editor's IntelliSense shows) must agree with these; test/unit/badconfig.test.ts holds them
 * together, so the adapter need not read package.json at run time.
 */
import { ErrorCode, UserError } from '../util/errors';
import type { KaslrChoice, Problem, Request } from './types';

export interface SchemaProp {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  items?: SchemaProp;
  additionalProperties?: SchemaProp | boolean;
  default?: unknown;
  /** How to write a good value: the fix when the value has the wrong type or is missing. */
  hint?: string;
}

export interface RequestSchema {
  required?: string[];
  properties: Record<string, SchemaProp>;
}

/** What `kaslr` means when it is left out: the kernel's own setting, as it boots outside a debugger. */
export const KASLR_DEFAULT: KaslrChoice = 'auto';

const pathProp = (hint: string): SchemaProp => ({ type: 'string', hint });
const strings = (example: string): SchemaProp => ({ type: 'array', items: { type: 'string' }, default: [], hint: `Write it as a list of strings, e.g. ${example}.` });
const SOURCE_PROPS: Record<string, SchemaProp> = {
  // Any name getArch knows, aliases included, so the enum is checked there rather than here.
  arch: { type: 'string', default: 'x86_64', hint: 'Write it as "arch": "x86_64" (or "aarch64", "riscv64").' },
  vmlinux: pathProp('Set it to the ELF vmlinux at the top of the kernel build tree, e.g. "${workspaceFolder}/vmlinux".'),
  rspLog: pathProp('Set it to a file path for the GDB remote protocol log, or remove it.'),
  sourceMap: { type: 'object', additionalProperties: { type: 'string', hint: 'Each value must be a local directory path.' }, default: {}, hint: 'Write it as { "/build/linux": "${workspaceFolder}" }: compile-time prefix to local prefix.' },
  source: pathProp('Point it at the kernel source tree the vmlinux was built from, or remove it.'),
  disassemblySyntax: { type: 'string', enum: ['att', 'intel'], default: 'att', hint: 'Use "att" (AT&T, as gdb and objdump print by default) or "intel".' },
  breakAt: strings('"breakAt": ["kernel_clone"]'),
  modulePaths: strings('"modulePaths": ["${workspaceFolder}/drivers/mydriver"]'),
  tasksAsThreads: { type: 'boolean', default: false, hint: 'Write true or false, without quotes.' },
};

export const LAUNCH_SCHEMA: RequestSchema = {
  properties: {
    sampleGuest: { type: 'boolean', default: false, hint: 'Write true or false, without quotes.' },
    kernel: pathProp('Point it at the kernel image QEMU should boot, e.g. "${workspaceFolder}/arch/x86/boot/bzImage".'),
    initrd: pathProp('Point it at an initramfs (cpio) file, or remove the field.'),
    initramfs: pathProp('Point it at an initramfs list in the kernel\'s gen_init_cpio format (file, dir, nod, slink, pipe, sock lines), or remove the field.'),
    append: { type: 'string', hint: 'Write the kernel command line as one string, e.g. "append": "quiet loglevel=7".' },
    memory: { type: 'string', default: '512M', hint: 'Write a size in quotes, e.g. "memory": "512M" or "2G".' },
    smp: { type: 'integer', minimum: 1, default: 1, hint: 'Set the number of vCPUs, a whole number from 1 to 64 without quotes, e.g. "smp": 2.' },
    // Its values are checked in rules.ts (ACCELS), whose message has kept its wording.
    accel: { type: 'string', default: 'auto', hint: 'Use "auto", "kvm" or "tcg".' },
    qemuPath: pathProp('Set it to the qemu-system-* binary, or remove it to use the one on PATH.'),
    qemuArgs: strings('"qemuArgs": ["-device", "virtio-rng-pci"]'),
    consoleLog: pathProp('Set it to a file path for the guest console log, or remove it for the default.'),
    stopOnEntry: { type: 'boolean', default: false, hint: 'Write true or false, without quotes.' },
    kaslr: { type: ['string', 'boolean'], enum: ['auto', true, false], default: KASLR_DEFAULT, hint: 'Use "auto" (the kernel\'s own setting), false (boot with nokaslr) or true (boot with kaslr).' },
    ...SOURCE_PROPS,
  },
};

export const ATTACH_SCHEMA: RequestSchema = {
  required: ['target'],
  properties: {
    target: pathProp('Give the gdbstub as host:port (e.g. "127.0.0.1:1234") or a unix socket path.'),
    stopOnAttach: { type: 'boolean', default: false, hint: 'Write true or false, without quotes.' },
    ...SOURCE_PROPS,
  },
};

export const SCHEMAS: Record<Request, RequestSchema> = { launch: LAUNCH_SCHEMA, attach: ATTACH_SCHEMA };

/** Fields VS Code itself gives meaning to in any debug configuration. */
const GENERIC_FIELDS = new Set(['type', 'request', 'name', 'preLaunchTask', 'postDebugTask', 'presentation', 'internalConsoleOptions', 'debugServer', 'suppressMultipleSessionWarning', 'serverReadyAction', 'windows', 'linux', 'osx', 'cwd', 'noDebug']);

/** VS Code's own fields, and the `__`-prefixed ones it adds in flight (__sessionId, __restart, ...). */
export const isGenericField = (field: string): boolean => GENERIC_FIELDS.has(field) || field.startsWith('__');

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

/** Edit distance, case-insensitive: how far a typo is from a known field. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
  return d[a.length][b.length];
}

/** The known field `field` is most likely a typo of, if any. */
export function nearestField(field: string, known: string[]): string | undefined {
  const near = known.map((k) => ({ k, d: distance(k, field) })).filter(({ k, d }) => d <= Math.max(1, Math.floor(k.length / 4)));
  return near.sort((a, b) => a.d - b.d)[0]?.k;
}

function describeType(p: SchemaProp): string {
  const t = p.type ?? 'any';
  if (Array.isArray(t)) return t.join(' or ');
  if (t === 'array') return p.items?.type === 'string' ? 'an array of strings' : 'an array';
  return t === 'integer' ? 'a whole number' : t === 'object' ? 'an object' : `a ${t}`;
}

function checkValue(field: string, v: unknown, p: SchemaProp): Problem[] {
  const invalid = (message: string, fix?: string): Problem[] => [{ field, message, fix, code: ErrorCode.InvalidField }];
  if (p.type && !typeMatches(v, p.type)) return invalid(`Launch config field '${field}' must be ${describeType(p)}, not ${JSON.stringify(v)}.`, p.hint);
  if (p.enum && !p.enum.includes(v)) {
    const fallback = p.default !== undefined ? `Remove it to use the default, ${JSON.stringify(p.default)}.` : undefined;
    return invalid(`Launch config field '${field}' has unknown value ${JSON.stringify(v)}. Use one of: ${p.enum.map((x) => String(x)).join(', ')}.`, fallback);
  }
  if (p.minimum !== undefined && typeof v === 'number' && v < p.minimum) return invalid(`Launch config field '${field}' must be at least ${p.minimum}, not ${v}.`, p.hint);
  if (p.items && Array.isArray(v)) return v.flatMap((x, i) => checkValue(`${field}[${i}]`, x, { ...(p.items as SchemaProp), hint: p.items?.hint ?? p.hint }));
  if (p.additionalProperties && typeof p.additionalProperties === 'object' && typeOf(v) === 'object') {
    const ap = p.additionalProperties;
    return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => checkValue(`${field}.${k}`, x, ap));
  }
  return [];
}

/**
 * Types, enums and minimums from the schema, and the required fields. An unknown field close
 * to a known one is a typo: a warning, since the session can run without it, unless the
 * field it meant is required and so missing.
 */
export function checkAgainstSchema(config: Record<string, unknown>, schema: RequestSchema): Problem[] {
  const problems: Problem[] = [];
  const known = Object.keys(schema.properties);
  for (const [field, v] of Object.entries(config)) {
    if (isGenericField(field) || v === undefined) continue;
    const p = schema.properties[field];
    if (p) {
      problems.push(...checkValue(field, v, p));
      continue;
    }
    const near = nearestField(field, known);
    if (near) problems.push({ field, message: `Launch config field '${field}' is not known. Did you mean '${near}'?`, fix: `Rename it to '${near}'; until then it is ignored.`, code: ErrorCode.InvalidField, severity: 'warning' });
  }
  for (const field of schema.required ?? []) {
    if (config[field] === undefined || config[field] === '') problems.push(missing(config, field, schema.properties[field]?.hint ?? '', known));
  }
  return problems;
}

/** A missing field, with the typo that probably meant it when there is one. */
export function missing(config: Record<string, unknown>, field: string, fix: string, known: string[] = Object.keys(LAUNCH_SCHEMA.properties)): Problem {
  const typo = Object.keys(config).find((k) => !known.includes(k) && !isGenericField(k) && nearestField(k, known) === field);
  const also = typo ? ` ('${typo}' is not known: did you mean '${field}'?)` : '';
  return { field, message: `Launch config field '${field}' is required${also}.`, fix: typo ? `Rename '${typo}' to '${field}'. ${fix}`.trim() : fix, code: ErrorCode.MissingField };
}

/** What the user reads: the problem, then how to fix it. */
export const problemText = (p: Problem): string => (p.fix ? `${p.message} ${p.fix}` : p.message);

export const isError = (p: Problem): boolean => p.severity !== 'warning';

/** A problem as the error a request fails with; `field` is the top-level field (`qemuArgs`, not `qemuArgs[1]`). */
export function problemError(p: Problem): UserError {
  return new UserError(p.code ?? ErrorCode.InvalidField, problemText(p), p.field.replace(/[.[].*$/, ''));
}
