/** The recorded QEMU gdbstub exchange (scripts/capture-rsp-fixture.mjs). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Exchange {
  sent: string;
  receivedLatin1: string;
}

const file = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'qemu-x86_64-gdbstub.json');
export const recorded = JSON.parse(fs.readFileSync(file, 'utf8')) as { qemu: string; exchanges: Exchange[] };

export function rawReply(sent: string): string {
  const e = recorded.exchanges.find((x) => x.sent === sent);
  if (!e) throw new Error(`fixture has no exchange for '${sent}'`);
  return e.receivedLatin1;
}
