/** The running kernel's release (`uname -r`), from `init_uts_ns`, for /lib/modules/<release>. */
import { StructLayout, type KernelAccess } from './layout';

export async function kernelRelease(access: KernelAccess): Promise<string | undefined> {
  const ns = access.symbol('init_uts_ns');
  if (ns === undefined) return undefined;
  // Units that use `struct uts_namespace` (kernel/sys.c, kernel/utsname.c); tried in turn.
  const uts = await StructLayout.of(access, 'struct uts_namespace', ['__sys_setuid', 'ksys_setsid', 'copy_utsname', 'do_init_module']);
  const field = uts.field('name.release');
  const b = await access.read(ns + BigInt(field.offset), 65);
  const end = b.indexOf(0);
  return b.toString('latin1', 0, end < 0 ? b.length : end) || undefined;
}
