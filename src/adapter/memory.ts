/**
 * readMemory/writeMemory for VS Code's binary data view. A memory reference is a virtual
 * address (`0xffffffff81000000`) as seen by the current vCPU, or a guest-physical one
 * prefixed `phys:` (`phys:0x1000000`), read through QEMU's PhyMemMode. `phys:` followed by a
 * virtual address (above any physical one: `phys:0xffff888000100000`) reads the physical
 * pages the page tables map it to, page by page.
 */
import { DebugProtocol } from '@vscode/debugprotocol';
import type { Debugger } from '../engine/debugger';
import { errors } from '../util/errors';

export interface MemoryAddress {
  address: bigint;
  physical: boolean;
}

const MASK = 0xffffffffffffffffn;

export function parseMemoryReference(ref: string, offset = 0): MemoryAddress {
  const m = /^\s*(phys:)?\s*(0x[0-9a-f]+|\d+)\s*$/i.exec(ref);
  if (!m) throw errors.unsupported(`'${ref}' is not a memory address: use a number such as 0xffffffff81000000, or phys:0x1000000 for a guest-physical address.`);
  return { address: (BigInt(m[2]) + BigInt(offset)) & MASK, physical: m[1] !== undefined };
}

export async function readMemory(dbg: Debugger, args: DebugProtocol.ReadMemoryArguments): Promise<DebugProtocol.ReadMemoryResponse['body']> {
  if (dbg.isRunning) throw errors.targetRunning('read memory');
  const at = parseMemoryReference(args.memoryReference, args.offset);
  const data = at.physical && at.address >= PHYS_LIMIT ? await throughPageTables(dbg, at.address, args.count) : await dbg.target.readMemoryPartial(at.address, args.count, dbg.currentThread, at.physical);
  return { address: `0x${at.address.toString(16)}`, data: data.toString('base64'), unreadableBytes: args.count - data.length };
}

/** No guest-physical address reaches this far (52 bits is every arch's limit). */
const PHYS_LIMIT = 1n << 52n;

/** A virtual range read physically, each page where the page tables map it; stops at the first unmapped one. */
async function throughPageTables(dbg: Debugger, va: bigint, count: number): Promise<Buffer> {
  const view = dbg.kernel.view;
  if (!view) throw errors.unsupported(`'phys:0x${va.toString(16)}' is a virtual address, and translating it needs vmlinux (set "vmlinux").`);
  const parts: Buffer[] = [];
  let at = va;
  let left = count;
  while (left > 0) {
    const n = Math.min(left, Number(0x1000n - (at & 0xfffn)));
    const t = await view.translate(dbg.currentThread, at);
    if (t.physical === undefined) break;
    const b = await dbg.target.readMemoryPartial(t.physical, n, undefined, true);
    parts.push(b);
    if (b.length < n) break;
    at += BigInt(n);
    left -= n;
  }
  return Buffer.concat(parts);
}

export async function writeMemory(dbg: Debugger, args: DebugProtocol.WriteMemoryArguments): Promise<DebugProtocol.WriteMemoryResponse['body']> {
  if (dbg.isRunning) throw errors.targetRunning('write memory');
  const at = parseMemoryReference(args.memoryReference, args.offset);
  const data = Buffer.from(args.data, 'base64');
  if (data.length === 0) return { bytesWritten: 0 };
  if (at.physical) await dbg.target.writePhysicalMemory(at.address, data);
  else await dbg.target.writeMemory(at.address, data, dbg.currentThread);
  // Variables, frames and registers read at this stop may have come from those bytes.
  dbg.forgetStop();
  return { bytesWritten: data.length };
}
