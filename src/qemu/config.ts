/**
 * The qemu layer's view of the launch configuration. The configuration itself (fields,
 * defaults, checks) lives in src/config, the one module every caller resolves it through; the
 * names stay importable from here because QEMU's argv, instance and boot code take them.
 */
export type { Accel, DisassemblySyntax, LaunchConfig, ResolvedLaunch } from '../config/types';
export { DEFAULT_MEMORY, defaultConsoleLog, effectiveAppend } from '../config/defaults';
export { findExecutable } from '../config/files';
export { resolveLaunchConfig } from '../config/resolve';
