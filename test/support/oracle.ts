/** binutils as an independent oracle for symbol addresses and section bytes. */
import { execFileSync } from 'node:child_process';

export function nmAddress(vmlinux: string, name: string): bigint {
  const out = execFileSync('nm', [vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const m = new RegExp(`^([0-9a-f]{16}) [Tt] ${name}$`, 'm').exec(out);
  if (!m) throw new Error(`nm has no text symbol ${name}`);
  return BigInt('0x' + m[1]);
}

/** The bytes of .text at [addr, addr+len) as objdump -s prints them. */
export function objdumpBytes(vmlinux: string, addr: bigint, len: number): Buffer {
  const out = execFileSync('objdump', ['-s', '-j', '.text', `--start-address=0x${addr.toString(16)}`, `--stop-address=0x${(addr + BigInt(len)).toString(16)}`, vmlinux], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const parts: Buffer[] = [];
  for (const line of out.split('\n')) {
    const m = /^ ([0-9a-f]{16}) ((?:[0-9a-f]{2,8} ){1,4})/.exec(line);
    if (m) parts.push(Buffer.from(m[2].replace(/ /g, ''), 'hex'));
  }
  return Buffer.concat(parts).subarray(0, len);
}
