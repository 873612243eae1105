/** The launch and attach configuration: see resolve.ts for how a raw config becomes a resolved one. */
export * from './types';
export { checkConfig, checkFiles, checkSubstituted, checkVmlinux, initramfsList, parseLaunch, resolveAttach, withInitrd, resolveLaunch, resolveLaunchConfig, withGuest, type LaunchSpec } from './resolve';
export { checkAgainstSchema, problemText, isError, SCHEMAS, type RequestSchema, type SchemaProp } from './schema';
export { ACCELS, checkRules } from './rules';
export { DEFAULT_MEMORY, defaultConsoleLog, effectiveAppend, kaslrWord } from './defaults';
export { elfMachine, findExecutable } from './files';
