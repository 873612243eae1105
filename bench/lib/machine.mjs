// What the figures were measured on, for RESULTS.md's header and the JSON's consumers.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { firstLine } from './proc.mjs';

export function describeMachine() {
  const cpu = os.cpus()[0]?.model?.trim() || 'unknown';
  let debian = 'not Debian';
  try {
    debian = fs.readFileSync('/etc/debian_version', 'utf8').trim();
  } catch {
    // not a Debian system
  }
  return {
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    ram_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    debian,
    qemu: firstLine('qemu-system-x86_64', ['--version']),
    gdb: firstLine('gdb', ['--version']),
    node: process.version,
    date: new Date().toISOString(),
  };
}

export function machineMarkdown(m) {
  return [
    `- CPU: ${m.cpu}, ${m.cores} cores available`,
    `- RAM: ${m.ram_gb} GB`,
    `- Linux ${m.kernel}, Debian ${m.debian}`,
    `- ${m.qemu}`,
    `- ${m.gdb}`,
    `- Node ${m.node}`,
    `- Date: ${m.date}`,
  ].join('\n');
}
