/**
 * The kernel's own helpers in expressions, computed by the debugger since nothing runs in the
 * guest: `per_cpu(var, cpu)` and `this_cpu(var)` (the variable on that CPU, an lvalue),
 * `per_cpu_ptr(ptr, cpu)` and `this_cpu_ptr(ptr)` (the pointer moved to that CPU's copy),
 * `container_of(ptr, type, member)`, `$task(pid)`, and `$current` (also the kernel's
 * `current` where no variable of that name is in scope).
 */
import { pointerTo, sizeOf, strip, typeName, type CType } from '../../symbols/dwarf/types';
import { findMember, isPointer, memoryValue, toInteger, valueOf, type Value, type ValueEnv } from '../values/value';
import type { Expr, Pos, TypeName } from './ast';

/** What the helpers need of the running kernel; absent when the session has no kernel awareness. */
export interface KernelHelpers {
  /** `__per_cpu_offset[cpu]` (0 on a kernel without SMP). */
  perCpuOffset(cpu: number): Promise<bigint>;
  /** The Linux CPU the selected vCPU is (found by its per-CPU base, not by QEMU's numbering). */
  thisCpu(): Promise<number>;
  /** The selected vCPU's `current` task_struct. */
  current(): Promise<bigint>;
  /** The task_struct of a pid, or undefined when no task has it. */
  task(pid: number): Promise<bigint | undefined>;
  taskType(): Promise<CType>;
}

export interface HelperContext {
  kernel?: KernelHelpers;
  env: ValueEnv;
  evaluate(e: Expr): Promise<Value>;
  resolveType(t: TypeName): Promise<CType>;
  complete(t: CType): CType;
  fail(message: string, pos?: Pos): never;
  snippet(pos: Pos): string;
}

type Call = Extract<Expr, { kind: 'call' }>;

const MASK64 = (1n << 64n) - 1n;

export async function callHelper(e: Call, c: HelperContext): Promise<Value> {
  const k = c.kernel;
  const shown = `${e.dollar ? '$' : ''}${e.name}`;
  if (e.name === 'container_of') return containerOf(e, c);
  if (!k) return c.fail(`${shown} needs the running kernel: the session has no vmlinux with DWARF`, e.pos);
  if (e.dollar && e.name === 'task') {
    const pid = Number(await toInteger(await c.evaluate(e.args[0]), c.env));
    const addr = await k.task(pid);
    if (addr === undefined) c.fail(`No task has pid ${pid} (the kernel's pid, which is a thread id).`, e.pos);
    return valueOf(pointerTo(await k.taskType()), addr);
  }
  const cpu = e.name.startsWith('this_') ? await k.thisCpu() : Number(await toInteger(await c.evaluate(e.args[1]), c.env));
  const off = await k.perCpuOffset(cpu).catch((err: Error) => c.fail(`${shown}: ${err.message}`, e.pos));
  const v = await c.evaluate(e.args[0]);
  if (e.name.endsWith('_ptr')) {
    if (!isPointer(v.type)) c.fail(`${shown} takes a pointer to a per-CPU variable, as in ${shown}(&runqueues${e.name.startsWith('this_') ? '' : ', 0'}); '${c.snippet(e.args[0].pos)}' is a ${typeName(v.type)}`, e.args[0].pos);
    return valueOf(v.type, ((await toInteger(v, c.env)) + off) & MASK64);
  }
  if (v.place.kind !== 'memory') c.fail(`${shown} takes a per-CPU variable; '${c.snippet(e.args[0].pos)}' is not in memory`, e.args[0].pos);
  return memoryValue(v.type, v.place.address + off);
}

/** `(type *)((char *)ptr - offsetof(type, member))`, with `member` a path such as `a.b[2].c`. */
async function containerOf(e: Call, c: HelperContext): Promise<Value> {
  const outer = c.complete(await c.resolveType(e.type as TypeName));
  let t: CType = outer;
  let offset = 0;
  for (const part of (e.member ?? '').split('.')) {
    const m = /^(\w+)((?:\[\d+\])*)$/.exec(part);
    const found = m ? findMember(c.complete(strip(t)), m[1]) : undefined;
    if (!m || !found) return c.fail(`${typeName(outer)} has no member ${e.member}`, e.pos);
    offset += found.offset;
    t = found.member.type;
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) {
      const a = strip(t);
      if (a.kind !== 'array') return c.fail(`${part} in ${e.member} is not an array`, e.pos);
      offset += Number(idx[1]) * (sizeOf(a.element) ?? 0);
      t = a.element;
    }
  }
  const ptr = await toInteger(await c.evaluate(e.args[0]), c.env);
  return valueOf(pointerTo(outer), (ptr - BigInt(offset)) & MASK64);
}
