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
    // Up to 16 bytes in groups (a start off a 4-byte boundary makes the first group short
    // and a line hold five), then the ASCII column after one or two spaces: take hex
    // groups until 32 digits, so the ASCII column is never read as bytes.
    const m = /^ ([0-9a-f]{16}) (.*)$/.exec(line);
    if (!m) continue;
    let hex = '';
    for (const group of m[2].split(' ')) {
      if (hex.length >= 32 || !/^(?:[0-9a-f]{2})+$/.test(group)) break;
      hex += group;
    }
    parts.push(Buffer.from(hex.slice(0, 32), 'hex'));
  }
  return Buffer.concat(parts).subarray(0, len);
}
