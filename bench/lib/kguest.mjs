// The kernel-awareness rows' guest (K1–K3): the x86_64 sample booted with KASLR on, QEMU
// alone (TCG, 1 vCPU, 512 MB, not paused), its gdbstub and console on unix sockets in a
// private 0700 directory, and TASKS sleeping processes started from the shell so the task
// list has something to walk. Both sides attach to it in turn while it runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { ConsoleTail, consoleInput, privateDir, shellReady } from './modules.mjs';
import { killQemu } from './modgdb.mjs';

export const TASKS = 200;

export async function bootKaslrGuest(guest) {
  const dir = privateDir('qkd-bench-k-');
  const sock = path.join(dir, 'gdb.sock');
  const conSock = path.join(dir, 'console.sock');
  const tail = new ConsoleTail(path.join(dir, 'console.log'), 20);
  const args = ['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-machine', 'pc', '-accel', 'tcg', '-m', '512M', '-object', 'memory-backend-memfd,id=ram0,size=512M,share=on', '-machine', 'memory-backend=ram0', '-smp', '1', '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', 'console=ttyS0 kaslr'];
  const qemu = spawn('qemu-system-x86_64', [...args, '-chardev', `socket,id=con,path=${conSock},server=on,wait=off,logfile=${tail.file}`, '-serial', 'chardev:con', '-gdb', `unix:${sock},server=on,wait=off`], { stdio: ['ignore', 'ignore', 'ignore'] });
  let input = null;
  const stop = async () => {
    input?.close();
    tail.close();
    await killQemu(qemu, sock, 'K guest');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await shellReady(tail);
    input = await consoleInput(conSock);
    let from = tail.size;
    // The markers are computed by the shell, so the echo of the typed line doesn't match them.
    input.write(`for i in $(seq ${TASKS}); do sleep 1000000 & done; echo K-spawned-$((40+2))\n`);
    await tail.waitFor('K-spawned-42', { from, timeoutMs: 120000, what: `${TASKS} sleeping processes` });
    from = tail.size;
    input.write("grep -w _text /proc/kallsyms | sed 's/^/kallsyms: /'\n");
    const text = await tail.waitFor(/kallsyms: ([0-9a-f]{16}) \w _text/, { from, timeoutMs: 60000, what: '_text in /proc/kallsyms' });
    const runtime = BigInt('0x' + /kallsyms: ([0-9a-f]{16}) \w _text/.exec(text.text)[1]);
    const nm = execFileSync('nm', [guest.vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const link = BigInt('0x' + /^([0-9a-f]{16}) T _text$/m.exec(nm)[1]);
    return { dir, sock, stop, offset: runtime - link };
  } catch (e) {
    await stop();
    throw e;
  }
}
