/**
 * A console log holding a real WARN and a real Oops from the x86_64 sample guest (its module's
 * failures on demand), for the tiers that open one in the editor. It is made once per test
 * run and guest build (boot once, test many things) and kept under test-results/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GuestPaths } from '../../src/guest/build';
import { RESULTS } from './env';
import { startOwnGuest, waitForLive } from './handover';

export async function oopsLog(g: GuestPaths): Promise<string> {
  const dir = path.join(RESULTS, 'kernel-log', path.basename(path.dirname(g.vmlinux)));
  // A .log whose name says nothing: the editor must take it for a kernel log by what it holds.
  const file = path.join(dir, 'guest.log');
  const built = Math.max(fs.statSync(g.vmlinux).mtimeMs, g.modules?.sample ? fs.statSync(g.modules.sample).mtimeMs : 0);
  if (fs.existsSync(file) && fs.statSync(file).mtimeMs > built) return file;
  fs.mkdirSync(dir, { recursive: true });
  const vm = await startOwnGuest(g, path.join(dir, 'qemu-console.log'), 'qkd.load=qkd_sample');
  try {
    // The boot from QEMU's log, the reports as the socket carried them (vm.live(): QEMU's log
    // can hold a character twice, see logged()).
    const boot = fs.readFileSync(vm.consoleLog, 'utf8');
    for (const kind of ['warn', 'null']) {
      const at = vm.live().length;
      vm.console.write(`sh -c 'echo fault ${kind} > /dev/qkd_sample'; echo fault-${kind}-rc=$?\n`);
      await waitForLive(vm, new RegExp(`fault-${kind}-rc=\\d+`), 120_000, at);
    }
    fs.writeFileSync(`${file}.tmp`, (boot + vm.live()).replace(/\r/g, ''));
    fs.renameSync(`${file}.tmp`, file);
    return file;
  } finally {
    await vm.console.close();
    await vm.kill();
  }
}
