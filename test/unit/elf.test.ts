/** The ELF reader on the real sample vmlinux, with binutils (nm, readelf) as the oracle. */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getArch, knownArches } from '../../src/arch';
import { ARCH_FACTS, archFacts, supportedMachine } from '../../src/arch/facts';
import { EM_X86_64, ElfError, ElfFile } from '../../src/symbols/elf';
import { SymbolTable } from '../../src/symbols/symtab';
import { sampleGuest } from '../support/env';
import { objdumpBytes } from '../support/oracle';

describe('symbols/elf on the sample vmlinux', function () {
  let elf: ElfFile;
  let table: SymbolTable;
  let nm: Map<string, bigint>;

  before(function () {
    const g = sampleGuest(this);
    elf = ElfFile.open(g.vmlinux);
    table = SymbolTable.fromElf(elf);
    nm = new Map();
    for (const line of execFileSync('nm', [g.vmlinux], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n')) {
      const m = /^([0-9a-f]{16}) ([Tt]) (\S+)$/.exec(line);
      if (m && !nm.has(m[3])) nm.set(m[3], BigInt('0x' + m[1]));
    }
  });
  after(() => elf?.close());

  it('reads the header: x86_64, and the same sections readelf lists', function () {
    assert.equal(elf.machine, EM_X86_64);
    const readelf = execFileSync('readelf', ['-SW', elf.path], { encoding: 'utf8' });
    for (const name of ['.text', '.rodata', '.data', '.symtab', '.debug_info', '.debug_line']) {
      assert.ok(elf.section(name), `section ${name}`);
      assert.ok(readelf.includes(` ${name} `), `readelf lists ${name}`);
    }
  });

  it('resolves kernel_clone and 200 other text symbols to the addresses nm gives', () => {
    assert.ok(nm.has('kernel_clone'));
    assert.equal(table.lookup('kernel_clone')[0].value, nm.get('kernel_clone'));
    let checked = 0;
    for (const [name, addr] of nm) {
      if (checked >= 200) break;
      const found = table.lookup(name).map((s) => s.value);
      assert.ok(found.includes(addr), `${name} at 0x${addr.toString(16)}`);
      checked++;
    }
  });

  it('finds every kind of name the same streaming the tables from the file (inFile) as with them read in', function () {
    this.timeout(60_000);
    const all = execFileSync('nm', [elf.path], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .map((l) => l.split(' ')[2])
      .filter((n): n is string => !!n);
    // Every 100th name of every kind (text, data, absolute, static duplicates), plus names that
    // are the tail of others in the string table, and none.
    const names = [...new Set([...all.filter((_, i) => i % 100 === 0), 'kernel_clone', 'clone', 'init', 'e', 'no_such_symbol_at_all'])];
    const loaded = SymbolTable.fromElf(elf);
    let several = 0;
    for (const name of names) {
      const streamed = SymbolTable.inFile(elf).lookup(name);
      assert.deepEqual(streamed, loaded.lookup(name), name);
      if (streamed.length > 1) several++;
    }
    assert.ok(names.length > 400 && several > 0, `${names.length} names, ${several} with several symbols`);
    // One table through its life: a streamed lookup, then address and name lookups read it in.
    const lazy = SymbolTable.inFile(elf);
    assert.deepEqual(lazy.lookup('kernel_clone'), loaded.lookup('kernel_clone'));
    assert.equal(lazy.describe((nm.get('kernel_clone') as bigint) + 4n), 'kernel_clone+0x4');
    assert.deepEqual(lazy.lookup('start_kernel'), loaded.lookup('start_kernel'));
    assert.equal(lazy.size, loaded.size);
  });

  it('names each supported arch\'s ELF machine as the arch descriptions do', () => {
    assert.deepEqual(ARCH_FACTS.map((a) => a.name).sort(), knownArches().sort());
    for (const name of knownArches()) assert.equal(archFacts(name)?.elfMachine, getArch(name).elfMachine, name);
    for (const f of ARCH_FACTS) for (const alias of f.aliases) assert.equal(getArch(alias).name, f.name, alias);
    assert.ok(supportedMachine(elf.machine));
    assert.ok(!supportedMachine(3), 'EM_386 is not supported');
  });

  it('maps addresses back to function+offset', () => {
    const base = nm.get('kernel_clone') as bigint;
    assert.equal(table.describe(base), 'kernel_clone');
    assert.equal(table.describe(base + 0x1an), 'kernel_clone+0x1a');
    const loc = table.locate(base + 4n);
    assert.equal(loc?.symbol.name, 'kernel_clone');
    assert.equal(loc?.offset, 4n);
  });

  it('reads .text bytes at a virtual address, as objdump shows them', () => {
    const base = nm.get('kernel_clone') as bigint;
    const ours = elf.readVirtual(base, 16);
    // objdump -s, parsed in test/support/oracle.ts (its groups follow the address's alignment).
    assert.equal(ours?.toString('hex'), objdumpBytes(elf.path, base, 16).toString('hex'));
  });
});

describe('symbols/elf on bad input', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-elf-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('says a non-ELF file is not ELF, and hints at bzImage vs vmlinux', () => {
    const f = path.join(dir, 'bzImage');
    fs.writeFileSync(f, Buffer.from('MZ\x00\x00HdrS not an elf file at all, this is long enough to hold a header'));
    assert.throws(() => ElfFile.open(f), (e: unknown) => e instanceof ElfError && /not an ELF file/.test(e.message) && /vmlinux/.test(e.message));
  });

  it('reports a truncated ELF instead of reading garbage', function () {
    const g = sampleGuest(this);
    const f = path.join(dir, 'truncated');
    const fd = fs.openSync(g.vmlinux, 'r');
    const head = Buffer.alloc(4096);
    fs.readSync(fd, head, 0, 4096, 0);
    fs.closeSync(fd);
    fs.writeFileSync(f, head);
    assert.throws(() => ElfFile.open(f), /truncated/);
  });

  it('says a missing file cannot be opened', () => {
    assert.throws(() => ElfFile.open(path.join(dir, 'nope')), /cannot open/);
  });
});
