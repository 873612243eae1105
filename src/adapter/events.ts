/** Custom DAP events this adapter sends beyond the protocol's own. */

/** Body: { log: string; socket: string; pid?: number } — where the guest console can be read and typed into. */
export const CONSOLE_EVENT = 'qemuKernel.console';
