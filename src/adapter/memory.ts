/**
 * readMemory/writeMemory for VS Code's binary data view. A memory reference is a virtual
 * address (`0xffffffff81000000`) as seen by the current vCPU, or a guest-physical one
 * prefixed `phys:` (`phys:0x1000000`), read through QEMU's PhyMemMode.
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
  const data = await dbg.target.readMemoryPartial(at.address, args.count, dbg.currentThread, at.physical);
  return { address: `0x${at.address.toString(16)}`, data: data.toString('base64'), unreadableBytes: args.count - data.length };
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
