/** The Translate Address request: an address (or expression) walked through the page tables, level by level. */
import type { Debugger } from '../engine/debugger';
import { toInteger } from '../engine/values/value';
import { errors } from '../util/errors';
import type { TranslateArguments, TranslateResponseBody } from './events';

const hex = (v: bigint): string => `0x${v.toString(16)}`;

export async function translateBody(dbg: Debugger, a: TranslateArguments): Promise<TranslateResponseBody> {
  if (typeof a.expression !== 'string' || !a.expression.trim()) throw errors.unsupported("'expression' must be an address or a C expression, e.g. \"&init_task\" or \"0xffff888000000000\".");
  const view = dbg.kernel.view;
  if (!view) throw errors.unsupported('Translating addresses needs vmlinux (set "vmlinux").');
  return dbg.readTurn(async () => {
    const tid = a.threadId ?? dbg.currentThread;
    const inspector = dbg.inspector;
    const sel = { tid, physical: 0, inlineDepth: 0 };
    const v = await inspector.evaluate(a.expression, sel);
    const va = await toInteger(v, inspector.env(tid));
    const t = await view.translate(tid, va);
    const levels = t.levels.map((l) => ({ name: l.name, index: l.index, entryAddress: hex(l.entryAddress), entry: hex(l.entry) }));
    const lines = [`${hex(va)} (${a.expression.trim()}) on CPU thread ${tid}${t.root === 'kernel' ? ", through the kernel's page tables (the vCPU's own, PTI's user copy, don't map it)" : ''}:`];
    for (const l of levels) lines.push(`  ${l.name.padEnd(7)} [${String(l.index).padStart(3)}] entry at phys ${l.entryAddress}: ${l.entry}`);
    lines.push(t.physical !== undefined ? `  physical ${hex(t.physical)} (a ${sizeName(t.pageSize ?? 4096n)} page)` : `  no physical address: ${t.fault ?? 'not mapped'}`);
    return {
      virtual: hex(va),
      ...(t.physical !== undefined ? { physical: hex(t.physical) } : {}),
      ...(t.pageSize !== undefined ? { pageSize: hex(t.pageSize) } : {}),
      root: t.root,
      levels,
      ...(t.fault ? { fault: t.fault } : {}),
      text: lines.join('\n'),
    };
  });
}

function sizeName(n: bigint): string {
  if (n >= 1n << 30n) return `${n >> 30n} GiB`;
  if (n >= 1n << 20n) return `${n >> 20n} MiB`;
  return `${n >> 10n} KiB`;
}
