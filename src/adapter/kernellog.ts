/** The kernel log request: the printk ring read from guest memory at a stop (the guest is stopped for it if it runs). */
import type { Debugger } from '../engine/debugger';
import { formatKernelLog } from '../kernel/printk';
import type { KernelLogResponseBody } from './events';

export async function kernelLogBody(dbg: Debugger): Promise<KernelLogResponseBody> {
  const records = await dbg.readTurn(() => dbg.kernel.kernelLog());
  return { text: formatKernelLog(records), records: records.length, firstSeq: records.length ? Number(records[0].seq) : undefined };
}
