/**
 * The attach `target`: host:port or a unix socket path. A gdbstub has no authentication, so
 * whoever reaches it owns the guest: a wildcard address is refused (it is what a stub exposed
 * to the network listens on, not an address to connect to) and a remote host is warned about.
 */
import type { RspTarget } from '../rsp/client';
import { ErrorCode } from '../util/errors';
import type { Problem } from './types';

const EXAMPLE = 'Use e.g. "127.0.0.1:1234" with QEMU started as -gdb tcp:127.0.0.1:1234, or a unix socket path (-gdb unix:/tmp/gdb.sock,server=on,wait=off).';
const WILDCARDS = new Set(['0.0.0.0', '::', '*', '0']);

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

export type ParsedTarget = { target: RspTarget; warning?: Problem } | { problem: Problem };

export function parseTarget(text: string): ParsedTarget {
  // The fix goes in the message: the editor lists rule problems by message alone.
  const bad = (problem: string, fix = EXAMPLE): ParsedTarget => ({ problem: { field: 'target', message: `Launch config field 'target' ('${text}') ${problem}. ${fix}`, code: ErrorCode.InvalidField } });
  const t = text.trim();
  const unix = /^unix:(.+)$/.exec(t)?.[1] ?? (t.includes('/') ? t : undefined);
  if (unix !== undefined) return { target: { kind: 'unix', path: unix } };
  const m = /^(?:tcp:)?(\[[^\]]*\]|[^:]*):(\d+)$/.exec(t);
  if (!m) {
    if (/^(?:tcp:)?[\w.-]+$/.test(t)) return bad('has no port', `Add the port QEMU's -gdb option listens on: "${t.replace(/^tcp:/, '')}:1234" for QEMU started with -gdb tcp:127.0.0.1:1234.`);
    return bad('is neither host:port nor a unix socket path');
  }
  const host = m[1].replace(/^\[|\]$/g, '');
  const port = Number(m[2]);
  if (!host) return bad('has no host', `Write the host too, e.g. "127.0.0.1:${port}".`);
  if (port < 1 || port > 65535) return bad(`has port ${port}, outside 1-65535`, `Use the port QEMU's -gdb option listens on: "${host}:1234" for QEMU started with -gdb tcp:127.0.0.1:1234.`);
  if (WILDCARDS.has(host))
    return bad(
      `is a wildcard address: a gdbstub listening on ${host} can be reached from the network, and it has no authentication`,
      `Connect to "127.0.0.1:${port}" instead, and start QEMU with -gdb tcp:127.0.0.1:${port} so only this machine can reach it.`,
    );
  const target: RspTarget = { kind: 'tcp', host, port };
  if (isLoopback(host)) return { target };
  const warning: Problem = {
    field: 'target',
    message: `Launch config field 'target' ('${text}') is reached over the network: whoever can reach a gdbstub controls the guest.`,
    fix: `Prefer an SSH tunnel (ssh -L ${port}:127.0.0.1:${port} ${host}) and "127.0.0.1:${port}".`,
    severity: 'warning',
  };
  return { target, warning };
}
