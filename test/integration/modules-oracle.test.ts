/**
 * gdb with the kernel's own scripts (vmlinux-gdb.py, `lx-symbols`) as the oracle for module
 * symbols, on each arch's sample guest, at the very stop our session makes: QEMU is started
 * here, and our session attaches through an RspSwitch (test/support/handover.ts), which holds
 * QEMU's only gdbstub connection (it pauses the booted guest), stops at the `cmd-entry` line of
 * qkd_sample_do_cmd after `insmod` and `echo add 5 > /dev/qkd_sample` typed in the console,
 * reads what it needs, lends the gdbstub connection to gdb, which runs `lx-symbols` and
 * prints the same things (and `lx-dmesg`, against the kernel log we read from memory), and
 * takes it back to go on. The kernel's sysfs section files
 * (/sys/module/qkd_sample/sections/*), read in the guest before the stop, are the third
 * party for section addresses. One boot per arch carries every check.
 *
 * Where gdb differs, and what the test does about it:
 * - lx-symbols (6.1) passes add-symbol-file only .text, .data, .data..read_mostly, .rodata,
 *   .bss, .text.hot and .text.unlikely; every other section stays where gdb lays it out from
 *   0: .gnu.linkonce.this_module (__this_module) everywhere, and on riscv64 .sdata and .sbss,
 *   where GCC puts the small globals start_value, greeting, qkd_sample_count and
 *   qkd_sample_ticks. So gdb runs in two phases: lx-symbols, compared where it places the
 *   symbol; then the .ko again by add-symbol-file with every section sysfs lists (what
 *   lx-symbols would do if it passed them all), compared everywhere.
 * - On arm64 and riscv64 the .ko has a section with a nonzero sh_addr: `ld -r` (binutils
 *   2.40) gives __patchable_function_entries (SHF_LINK_ORDER) address 0x50 / 0x78 when it
 *   links qkd_sample.o and qkd_sample.mod.o. gdb (default_symfile_offsets) then skips its
 *   layout of a relocatable file's sections, every section stays at 0, and a DWARF address
 *   relocated against a section symbol is read as .text-relative: start_value, greeting and
 *   qkd_sample_fops come out inside .text or at 0. (riscv64's .ko also has .plt, .got and
 *   .got.plt at nonzero addresses.) gdb gets a copy of the .ko with every sh_addr set to 0
 *   (the only change), which it reads right.
 * - On arm64 and riscv64 a function starts with the NOPs of -fpatchable-function-entry
 *   (ftrace), 8 bytes, and its DWARF low_pc is after them: gdb's `&func` is the low_pc, ours
 *   is the ELF symbol, which is what the kernel stores as a function pointer (the test reads
 *   qkd_sample_fops.write to show it).
 * - gdb's arm64 backtrace repeats its outermost frame (el0t_64_sync, same pc) before it
 *   stops; the repeat is not compared.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DebugProtocol } from '@vscode/debugprotocol';
import { GuestPaths } from '../../src/guest/build';
import { waitForConsole } from '../../src/qemu/console';
import { artifact, requireBuilt, requireOrSkip, sampleGuest } from '../support/env';
import { gdbFor, gdbFrames, haveGdb, normalizeValue as normalize } from '../support/gdb';
import { markerLine, OwnGuest, RspSwitch, runGdb, startOwnGuest } from '../support/handover';
import { TestSession } from '../support/session';
import { ours, Where } from '../support/source';

const ARCHES = ['x86_64', 'aarch64', 'riscv64'];

/** Module symbols whose addresses both sides print: functions, const, data, small data and bss, and the module itself. */
const SYMBOLS = ['qkd_sample_do_cmd', 'qkd_sample_write', 'qkd_sample_fops', 'qkd_sample_state', 'qkd_sample_misc', 'start_value', 'greeting', 'qkd_sample_count', 'qkd_sample_ticks', '__this_module'];
/** The sections lx-symbols gives add-symbol-file (scripts/gdb/linux/symbols.py, _section_arguments). */
const LX_SECTIONS = ['.text', '.data', '.data..read_mostly', '.rodata', '.bss', '.text.hot', '.text.unlikely'];
/** Values at the cmd-entry line, read by both sides, with the module global each reads (none: arguments). */
const VALUES: Array<[string, string | undefined]> = [
  ['qkd_sample_count', 'qkd_sample_count'],
  ['qkd_sample_ticks', 'qkd_sample_ticks'],
  ['qkd_sample_state.nr_items', 'qkd_sample_state'],
  ['qkd_sample_state.last_value', 'qkd_sample_state'],
  ['qkd_sample_state.opens', 'qkd_sample_state'],
  ['qkd_sample_state.items.next', 'qkd_sample_state'],
  ['qkd_sample_state.items.next->next', 'qkd_sample_state'],
  ['*(struct qkd_sample_state *)&qkd_sample_state', 'qkd_sample_state'],
  ['start_value', 'start_value'],
  ['greeting', 'greeting'],
  ['qkd_sample_fops.write', 'qkd_sample_fops'],
  ['qkd_sample_misc.name', 'qkd_sample_misc'],
  ['__this_module.name', '__this_module'],
  ['cmd', undefined],
  ['arg', undefined],
  ['origin', undefined],
];
/** Sysfs section files that are not sections of the module's image (the kernel's copies of the symbol tables). */
const NOT_IMAGE = new Set(['.symtab', '.strtab']);

/** Each symbol's section name and offset in it, from the .ko's own tables (binutils' readelf). */
function koSymbols(ko: string): Map<string, { section: string; offset: bigint }> {
  const sections = new Map<number, string>();
  for (const line of execFileSync('readelf', ['-SW', ko], { encoding: 'utf8' }).split('\n')) {
    const m = /^\s*\[\s*(\d+)\]\s+(\S+)/.exec(line);
    if (m) sections.set(Number(m[1]), m[2]);
  }
  const syms = new Map<string, { section: string; offset: bigint }>();
  for (const line of execFileSync('readelf', ['-sW', ko], { encoding: 'utf8' }).split('\n')) {
    const m = /^\s*\d+:\s+([0-9a-f]+)\s+\d+\s+\w+\s+\w+\s+\w+\s+(\d+)\s+(\S+)\s*$/.exec(line);
    if (m && sections.has(Number(m[2]))) syms.set(m[3], { section: sections.get(Number(m[2])) as string, offset: BigInt('0x' + m[1]) });
  }
  return syms;
}

/** A function's DWARF low_pc, as an offset in its section (readelf applies the .ko's relocations). */
function koLowPc(ko: string, fn: string): bigint {
  const text = execFileSync('readelf', ['--debug-dump=info', ko], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const m = new RegExp(`DW_AT_name\\s*:[^\\n]*: ${fn}\\n(?:(?![^\\n]*Abbrev Number)[^\\n]*\\n)*?\\s*<[0-9a-f]+>\\s+DW_AT_low_pc\\s*: (0x[0-9a-f]+)`).exec(text);
  if (!m) throw new Error(`readelf shows no low_pc for ${fn} in ${ko}`);
  return BigInt(m[1]);
}

/**
 * The folder lx-symbols is given: the modules folder itself, or one holding a copy of
 * qkd_sample.ko whose sections all have sh_addr 0 (see the file comment), with what changed.
 */
function koFolderForGdb(modulesDir: string, into: string): { dir: string; zeroed: string[] } {
  const bytes = fs.readFileSync(path.join(modulesDir, 'qkd_sample.ko'));
  const shoff = Number(bytes.readBigUInt64LE(0x28));
  const shentsize = bytes.readUInt16LE(0x3a);
  const shnum = bytes.readUInt16LE(0x3c);
  const strtab = Number(bytes.readBigUInt64LE(shoff + bytes.readUInt16LE(0x3e) * shentsize + 0x18));
  const zeroed: string[] = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    const addr = bytes.readBigUInt64LE(at + 0x10);
    if (addr === 0n) continue;
    const nameAt = strtab + bytes.readUInt32LE(at);
    zeroed.push(`${bytes.toString('latin1', nameAt, bytes.indexOf(0, nameAt))} (sh_addr was 0x${addr.toString(16)})`);
    bytes.writeBigUInt64LE(0n, at + 0x10);
  }
  if (!zeroed.length) return { dir: modulesDir, zeroed };
  const dir = path.join(into, 'ko-for-gdb');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'qkd_sample.ko'), bytes);
  return { dir, zeroed };
}

for (const arch of ARCHES) {
  describe(`${arch}: module symbols at a stop in qkd_sample, against gdb's lx-symbols at the same stop`, function () {
    this.timeout(900_000);
    let guest: GuestPaths;
    let vm: OwnGuest | undefined;
    let sw: RspSwitch | undefined;
    let s: TestSession | undefined;
    let tid = 1;
    let frames: DebugProtocol.StackFrame[] = [];
    let mod: DebugProtocol.Module | undefined;
    /** The kernel's own placement: /sys/module/qkd_sample/sections/NAME. */
    const sysfs = new Map<string, bigint>();
    const ourAddr = new Map<string, bigint>();
    const ourValue = new Map<string, string>();
    let gdbOut = '';
    /** The kernel log as our adapter read it from guest memory at the stop. */
    let ourLog = '';
    let gdbMs = 0;
    let heldBytes = 0;
    let koForGdb: { dir: string; zeroed: string[] } = { dir: '', zeroed: [] };
    const source = (): string => path.join(guest.modules?.dir ?? '', 'qkd_sample.c');

    /** What gdb printed between `@@key@@` and the next marker. */
    function gdbSection(key: string): string {
      const start = gdbOut.indexOf(`@@${key}@@\n`);
      if (start < 0) return '';
      const rest = gdbOut.slice(start + key.length + 5);
      const end = rest.indexOf('@@');
      return end < 0 ? rest : rest.slice(0, end);
    }
    const gdbPrinted = (key: string): string => /^\$\d+ = ([\s\S]*?)\s*$/m.exec(gdbSection(key).trim())?.[1] ?? `<gdb: ${gdbSection(key).trim()}>`;

    async function evaluate(expression: string, context = 'watch'): Promise<string> {
      return (await (s as TestSession).dc.evaluateRequest({ expression, frameId: frames[0].id, context })).body.result;
    }

    before(async function () {
      requireBuilt(this);
      guest = sampleGuest(this, arch);
      requireOrSkip(this, guest.modules !== undefined, `the ${arch} guest has no sample module (run: node dist/cli.js guest build --arch ${arch})`);
      requireOrSkip(this, !!guest.gdbScripts && fs.existsSync(guest.gdbScripts), `the ${arch} guest's kernel tree has no vmlinux-gdb.py`);
      requireOrSkip(this, haveGdb(arch), `${gdbFor(arch)} is not installed`);
      const modules = guest.modules as NonNullable<GuestPaths['modules']>;

      vm = await startOwnGuest(guest, artifact(this, 'console.log'));
      sw = await RspSwitch.open(vm.gdbSocket, vm.dir);
      s = new TestSession(this);
      await s.start();
      const initialized = s.dc.waitForEvent('initialized');
      fs.rmSync(artifact(this, 'rsp.log'), { force: true });
      await s.dc.attachRequest({ target: sw.adapterPath, vmlinux: guest.vmlinux, arch, rspLog: artifact(this, 'rsp.log') } as DebugProtocol.AttachRequestArguments);
      await initialized;
      const [bp] = (await s.dc.setBreakpointsRequest({ source: { path: source() }, breakpoints: [{ line: markerLine(source(), 'cmd-entry') }] })).body.breakpoints;
      assert.equal(bp.verified, false, 'qkd_sample is not loaded yet: its breakpoint waits');
      await s.dc.configurationDoneRequest();

      const con = vm.console;
      const mark = (): number => fs.statSync(vm?.consoleLog ?? '').size;
      let from = mark();
      con.write(`insmod ${modules.guestDir}/qkd_sample.ko\n`);
      await waitForConsole(vm.consoleLog, /qkd_sample: loaded/, 120_000, from);
      // The end marker is computed by the shell, so the echoed command line does not match it.
      from = mark();
      con.write('for f in /sys/module/qkd_sample/sections/.* /sys/module/qkd_sample/sections/*; do [ -f $f ] && echo "qkd-sect ${f##*/} $(cat $f)"; done; echo qkd-sect-$((40+2))\n');
      const listing = await waitForConsole(vm.consoleLog, 'qkd-sect-42', 60_000, from);
      for (const m of listing.matchAll(/^qkd-sect (\S+) (0x[0-9a-f]+)\s*$/gm)) sysfs.set(m[1], BigInt(m[2]));
      assert.ok(sysfs.has('.text'), `the guest listed its sections:\n${listing}`);

      const stopped = s.dc.waitForEvent('stopped', 120_000);
      con.write('echo add 5 > /dev/qkd_sample\n');
      const stop = (await stopped) as DebugProtocol.StoppedEvent;
      tid = stop.body.threadId ?? 1;
      frames = (await s.dc.stackTraceRequest({ threadId: tid })).body.stackFrames;
      mod = ((await s.dc.customRequest('modules', {})).body.modules as DebugProtocol.Module[]).find((m) => m.name === 'qkd_sample');
      for (const sym of SYMBOLS) ourAddr.set(sym, BigInt(await evaluate(`(unsigned long)&${sym}`)));
      for (const [v] of VALUES) ourValue.set(v, await evaluate(v, 'clipboard'));
      ourLog = ((await s.dc.customRequest('qemuKernel.kernelLog', {})).body as { text: string }).text;

      // Our reading is done: gdb gets the connection, at this same stop.
      koForGdb = koFolderForGdb(modules.dir, vm.dir);
      const ko = path.join(koForGdb.dir, 'qkd_sample.ko');
      await sw.lend();
      const t0 = Date.now();
      const marked = (key: string, cmd: string): string[] => [`echo @@${key}@@\\n`, cmd];
      gdbOut = await runGdb(arch, guest.vmlinux, vm.dir, [
        `source ${guest.gdbScripts}`,
        `target remote ${sw.gdbPath}`,
        ...marked('lx-symbols', `lx-symbols ${koForGdb.dir}`),
        ...marked('lsmod', 'lx-lsmod'),
        ...marked('sections', 'maint info sections -all-objects ALLOC'),
        ...SYMBOLS.flatMap((sym) => marked(`lx addr ${sym}`, `print/x (unsigned long)&${sym}`)),
        ...marked('bt', 'bt'),
        ...VALUES.flatMap(([v]) => marked(`lx value ${v}`, `print ${v}`)),
        ...marked('remove', `remove-symbol-file ${ko}`),
        ...marked('add', `add-symbol-file ${ko} ${[...sysfs].filter(([n]) => !NOT_IMAGE.has(n)).map(([n, a]) => `-s ${n} 0x${a.toString(16)}`).join(' ')}`),
        ...SYMBOLS.flatMap((sym) => marked(`all addr ${sym}`, `print/x (unsigned long)&${sym}`)),
        ...VALUES.flatMap(([v]) => marked(`all value ${v}`, `print ${v}`)),
        ...marked('dmesg', 'lx-dmesg'),
        ...marked('end', 'disconnect'),
      ]);
      gdbMs = Date.now() - t0;
      heldBytes = (await sw.reclaim()).heldBytes;
      fs.writeFileSync(artifact(this, 'gdb.log'), `${gdbOut}\n--- packets gdb sent through the switch ---\n${sw.gdbPackets.join('\n')}\n`);
      // eslint-disable-next-line no-console
      console.log(`      ${arch}: boot to the ready line ${(vm.bootMs / 1000).toFixed(1)} s; gdb (lx-symbols, prints, bt) ${(gdbMs / 1000).toFixed(1)} s`);
      // eslint-disable-next-line no-console
      if (koForGdb.zeroed.length) console.log(`      ${arch}: gdb read a copy of qkd_sample.ko with sh_addr 0 for ${koForGdb.zeroed.join(', ')}`);
    });

    after(async () => {
      await s?.stop();
      sw?.close();
      await vm?.console.close();
      await vm?.kill();
    });

    it('lx-symbols finds qkd_sample.ko in the modules folder and loads it where our modules list has it', () => {
      const loading = /loading @(0x[0-9a-f]+): (\S+)/.exec(gdbSection('lx-symbols'));
      assert.ok(loading, `lx-symbols loaded no module:\n${gdbOut}`);
      assert.equal(loading[2], path.join(koForGdb.dir, 'qkd_sample.ko'));
      assert.ok(mod, 'qkd_sample is in our modules list');
      assert.equal(mod.path, guest.modules?.sample);
      assert.equal(mod.symbolStatus, 'Symbols loaded');
      const [start, end] = String(mod.addressRange).split('-').map((x) => BigInt(x));
      // core_layout.base is where the module's .text starts, for the kernel and both debuggers.
      assert.equal(start, BigInt(loading[1]), `our range ${mod.addressRange}, lx-symbols @${loading[1]}`);
      assert.equal(start, sysfs.get('.text'));
      // lx-lsmod: the core layout's base and size; our range lies inside it.
      const lsmod = /^(0x[0-9a-f]+)\s+qkd_sample\s+(\d+)\s+(-?\d+)(?: (\S+))?\s*$/m.exec(gdbSection('lsmod'));
      assert.ok(lsmod, `lx-lsmod lists qkd_sample:\n${gdbSection('lsmod')}`);
      assert.equal(BigInt(lsmod[1]), start);
      assert.ok(end <= start + BigInt(lsmod[2]), `our range ${mod.addressRange} ends inside the core layout (${lsmod[1]} + ${lsmod[2]})`);
      // lsmod's columns: the core size, and the references held (the shell's open /dev/qkd_sample holds one) with the users.
      const k = mod as DebugProtocol.Module & { size?: number; refcnt?: number; usedBy?: string[] };
      assert.equal(k.size, Number(lsmod[2]));
      assert.equal(k.refcnt, Number(lsmod[3]));
      assert.equal(k.refcnt, 1, 'the writing shell holds the device open');
      assert.deepEqual(k.usedBy, lsmod[4] ? lsmod[4].split(',') : []);
    });

    it('section addresses: gdb after lx-symbols, gdb with every section, the kernel (sysfs) and ours agree', () => {
      const gdbSections = new Map<string, bigint>();
      const block = gdbSection('sections').split(/^Object file: /m).find((b) => b.startsWith(`\`${path.join(koForGdb.dir, 'qkd_sample.ko')}'`)) ?? '';
      for (const m of block.matchAll(/^\s*\[\d+\]\s+(0x[0-9a-f]+)->0x[0-9a-f]+ at 0x[0-9a-f]+: (\S+)/gm)) gdbSections.set(m[2], BigInt(m[1]));
      assert.ok(gdbSections.has('.text'), `gdb's sections of qkd_sample.ko:\n${block}`);
      const placedByLx = LX_SECTIONS.filter((n) => sysfs.has(n));
      assert.ok(placedByLx.includes('.data') && placedByLx.includes('.bss') && placedByLx.includes('.rodata'), `sysfs: ${[...sysfs.keys()].join(' ')}`);
      for (const n of placedByLx) assert.equal(gdbSections.get(n), sysfs.get(n), `${n}: gdb 0x${gdbSections.get(n)?.toString(16)}, sysfs 0x${sysfs.get(n)?.toString(16)}`);

      // Ours, per section: a symbol's address less its offset in the section is where we put the section.
      const syms = koSymbols(guest.modules?.sample ?? '');
      const seen = new Set<string>();
      const lxCompared: string[] = [];
      for (const [name, addr] of ourAddr) {
        const sym = syms.get(name);
        assert.ok(sym, `${name} is in the .ko's symbol table`);
        assert.equal(addr - sym.offset, sysfs.get(sym.section), `${name} in ${sym.section}: ours puts the section at 0x${(addr - sym.offset).toString(16)}, sysfs at 0x${sysfs.get(sym.section)?.toString(16)}`);
        seen.add(sym.section);
        // gdb's &func is its DWARF low_pc, past the ftrace NOPs where there are any.
        const past = sym.section === '.text' ? koLowPc(guest.modules?.sample ?? '', name) - sym.offset : 0n;
        const phases = LX_SECTIONS.includes(sym.section) ? ['lx', 'all'] : ['all'];
        if (phases.includes('lx')) lxCompared.push(name);
        for (const phase of phases) {
          const theirs = BigInt(gdbPrinted(`${phase} addr ${name}`));
          assert.equal(addr + past, theirs, `&${name} (${sym.section}): ours 0x${addr.toString(16)} (+${past} to the low_pc), gdb (${phase}) 0x${theirs.toString(16)}`);
        }
      }
      // A function pointer the kernel stored is the symbol's address, ours.
      assert.equal(BigInt(/0x[0-9a-f]+/.exec(gdbPrinted('lx value qkd_sample_fops.write'))?.[0] ?? '-1'), ourAddr.get('qkd_sample_write'));
      for (const n of ['.text', '.rodata', '.data', '.bss', '.gnu.linkonce.this_module']) assert.ok(seen.has(n) || (n === '.bss' && seen.has('.sbss')), `a symbol in ${n} was compared (${[...seen].join(' ')})`);
      assert.ok(lxCompared.length >= 4, `compared with lx-symbols' placement: ${lxCompared.join(' ')}`);
    });

    it("backtrace: gdb's frames, functions and lines, are ours", () => {
      const theirs = gdbFrames(gdbSection('bt'));
      // gdb's arm64 unwinder repeats the outermost frame, same pc, before it gives up.
      const [last, before] = [theirs[theirs.length - 1], theirs[theirs.length - 2]];
      if (last && before && last.pc !== undefined && last.pc === before.pc && last.fn === before.fn) theirs.pop();
      assert.ok(theirs.length >= 3, `gdb's backtrace:\n${gdbSection('bt')}`);
      const mine: Where[] = frames.map(ours);
      const show = (w: Where[]): string => w.map((f) => `${f.fn}:${f.line}`).join(' < ');
      assert.equal(theirs[0].fn, 'qkd_sample_do_cmd');
      assert.equal(theirs[0].line, markerLine(source(), 'cmd-entry'));
      assert.deepEqual(mine.map((f) => `${f.fn}:${f.line}`), theirs.map((f) => `${f.fn}:${f.line}`), `ours: ${show(mine)}\ngdb:  ${show(theirs)}\n${gdbSection('bt')}`);
      theirs.forEach((g, i) => assert.ok(mine[i].file === g.file || mine[i].file.endsWith('/' + g.file.replace(/^\.\//, '')), `frame ${i}: ours ${mine[i].file}, gdb ${g.file}`));
    });

    it("module globals, the struct, arguments and a const struct's member: ours print what gdb prints", () => {
      const syms = koSymbols(guest.modules?.sample ?? '');
      for (const [v, global] of VALUES) {
        const section = global === undefined ? undefined : syms.get(global)?.section;
        const phases = section === undefined || LX_SECTIONS.includes(section) ? ['lx', 'all'] : ['all'];
        for (const phase of phases) assert.equal(normalize(ourValue.get(v) ?? ''), normalize(gdbPrinted(`${phase} value ${v}`)), `${v}: ours ${ourValue.get(v)}, gdb (${phase}) ${gdbPrinted(`${phase} value ${v}`)}`);
      }
      // And the values themselves, in case both were wrong alike.
      assert.equal(ourValue.get('qkd_sample_count'), '0');
      assert.equal(ourValue.get('qkd_sample_state.nr_items'), '1');
      assert.equal(ourValue.get('qkd_sample_state.last_value'), '42');
      assert.equal(ourValue.get('start_value'), '42');
      assert.equal(ourValue.get('arg'), '5');
      assert.match(ourValue.get('__this_module.name') ?? '', /"qkd_sample"/);
    });

    it("the kernel log read from memory is lx-dmesg's, record for record", () => {
      // lx-dmesg rounds each timestamp to the microsecond where the kernel's console (and
      // dmesg, and ours) truncates: the times may differ by 1 µs, the text not at all.
      const parse = (text: string): Array<{ t: number; line: string }> =>
        text
          .split('\n')
          .map((l) => /^\[\s*(\d+\.\d{6})\] (.*)$/.exec(l))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => ({ t: Number(m[1]), line: m[2] }));
      const theirs = parse(gdbSection('dmesg'));
      const ours = parse(ourLog);
      assert.ok(theirs.length > 50, `lx-dmesg printed ${theirs.length} lines:\n${gdbSection('dmesg').slice(0, 400)}`);
      assert.deepEqual(
        ours.map((r) => r.line),
        theirs.map((r) => r.line),
      );
      const off = ours.findIndex((r, i) => Math.abs(r.t - theirs[i].t) > 1.5e-6);
      assert.equal(off, -1, off >= 0 ? `line ${off}: ours ${ours[off].t}, lx-dmesg ${theirs[off].t}` : '');
    });

    it('gdb only read: our session goes on at the same stop, and the guest finishes the command', async () => {
      const session = s as TestSession;
      assert.ok(sw?.gdbPackets.every((p) => !p.includes('refused')), `gdb sent a packet it should not have:\n${sw?.gdbPackets.join('\n')}`);
      assert.equal(heldBytes, 0, 'our adapter sent nothing while gdb had the connection');
      assert.ok(!session.output.some((o) => /not answering/.test(o)), session.output.join(''));
      const again = (await session.dc.stackTraceRequest({ threadId: tid })).body.stackFrames;
      assert.equal(ours(again[0]).fn, 'qkd_sample_do_cmd');
      assert.equal(await evaluate('qkd_sample_count'), '0');
      await session.dc.setBreakpointsRequest({ source: { path: source() }, breakpoints: [] });
      await session.dc.continueRequest({ threadId: tid });
      const from = fs.statSync(vm?.consoleLog ?? '').size;
      vm?.console.write('cat /dev/qkd_sample\n');
      // Up to the item the write added: the console can stop mid-line between two reads.
      const text = await waitForConsole(vm?.consoleLog ?? '', /count 1 ticks \d+ opens \d+ items 2 last 5[\s\S]*\r?\n5 write\r?\n/, 60_000, from);
      assert.match(text, /^42 init\s*$/m);
    });
  });
}
