// The address of one ELF symbol, for when the debugger under test can't be asked for it
// (ours' evaluate resolves only FUNC/OBJECT symbols, and `_text` is NOTYPE). A standalone
// reader so the bench doesn't depend on binutils or on the code it measures.
import * as fs from 'node:fs';

export function elfSymbolAddress(file, name) {
  const fd = fs.openSync(file, 'r');
  try {
    const read = (off, len) => {
      const b = Buffer.alloc(Number(len));
      fs.readSync(fd, b, 0, b.length, Number(off));
      return b;
    };
    const h = read(0, 64);
    if (h.toString('latin1', 0, 4) !== '\x7fELF' || h[4] !== 2 || h[5] !== 1) throw new Error(`${file} is not a little-endian ELF64 file`);
    const shoff = h.readBigUInt64LE(0x28);
    const shentsize = h.readUInt16LE(0x3a);
    const shnum = h.readUInt16LE(0x3c);
    const sh = read(shoff, shentsize * shnum);
    const section = (i) => ({ type: sh.readUInt32LE(i * shentsize + 4), offset: sh.readBigUInt64LE(i * shentsize + 0x18), size: sh.readBigUInt64LE(i * shentsize + 0x20), link: sh.readUInt32LE(i * shentsize + 0x28) });
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      if (s.type !== 2) continue; // SHT_SYMTAB
      const strtab = section(s.link);
      const strs = read(strtab.offset, strtab.size);
      const syms = read(s.offset, s.size);
      // st_name may point into the tail of a longer name (`_text` inside `_stext`).
      const want = Buffer.from(`${name}\0`);
      for (let off = 0; off + 24 <= syms.length; off += 24) {
        const at = syms.readUInt32LE(off);
        if (strs.compare(want, 0, want.length, at, at + want.length) === 0) return syms.readBigUInt64LE(off + 8);
      }
    }
    throw new Error(`no symbol ${name} in ${file}`);
  } finally {
    fs.closeSync(fd);
  }
}
