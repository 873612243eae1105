/**
 * A loaded module's symbols from the real sample .ko, as the module tracker asks for them:
 * found and linked where the kernel placed the sections; refused with both build IDs when
 * the file is another build; a corrupt file reported by name without ending anything; and
 * "no symbols" saying where it looked. The live module is described as the kernel would
 * (kernel/modules.ts reads the same fields from the guest).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cachedGuest } from '../../src/guest/build';
import type { LoadedModule } from '../../src/kernel/modules';
import { gnuBuildId } from '../../src/kernel/modules';
import { ModuleSymbols } from '../../src/engine/modulefiles';
import { ElfFile } from '../../src/symbols/elf';
import { moduleIdentity } from '../../src/symbols/modfiles';

function sampleKo(): string {
  const ko = cachedGuest('x86_64')?.modules?.sample;
  if (!ko || !fs.existsSync(ko)) assert.fail('the x86_64 sample guest has no sample module; run: node dist/cli.js guest build --arch x86_64');
  return ko;
}

/** The module as the kernel would have placed it: each loadable section at its own address. */
function placedLike(ko: string, buildId: string | undefined): LoadedModule {
  const elf = ElfFile.fromBuffer(ko, fs.readFileSync(ko));
  const sections = new Map<string, bigint>();
  let at = 0xffffffffc0000000n;
  for (const s of elf.sections) {
    if ((s.flags & 2n) === 0n || s.size === 0) continue;
    sections.set(s.name, at);
    at += (BigInt(s.size) + 0xfffn) & ~0xfffn;
  }
  return { address: 0xffffffffc1000000n, name: 'qkd_sample', state: 'coming', sections, core: [{ start: 0xffffffffc0000000n, end: at }], init: [], buildId };
}

describe('module symbols for a loaded module (real sample .ko)', () => {
  let tmp: string;
  const warnings: string[] = [];
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-modsyms-'));
    warnings.length = 0;
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('links the matching file where the kernel placed its sections', async () => {
    const ko = sampleKo();
    const id = moduleIdentity(fs.readFileSync(ko), ko).buildId;
    assert.ok(id, 'the sample .ko has a build ID');
    const m = placedLike(ko, id);
    const { image, view } = await new ModuleSymbols({ modulePaths: [], extraDirs: [path.dirname(ko)] }, (w) => warnings.push(w)).load(m);
    assert.equal(view.symbolStatus, 'Symbols loaded');
    assert.equal(view.symbolFile, ko);
    const fn = image?.symbols.lookup('qkd_sample_do_cmd')[0];
    const text = m.sections.get('.text') as bigint;
    assert.ok(fn && fn.value >= text && fn.value < text + 0x10000n, `qkd_sample_do_cmd at ${fn?.value.toString(16)}, .text at ${text.toString(16)}`);
    const data = image?.symbols.lookup('qkd_sample_count')[0];
    const bss = m.sections.get('.bss') as bigint;
    assert.ok(data && data.value >= bss, 'qkd_sample_count is in the placed .bss');
    assert.ok(image?.dwarf, 'the module has DWARF');
    assert.deepEqual(warnings, []);
  });

  it('refuses another build, naming both build IDs, and uses the file that matches', async () => {
    const ko = sampleKo();
    const bytes = Buffer.from(fs.readFileSync(ko));
    const real = moduleIdentity(bytes, ko).buildId as string;
    // The same module with one byte of its build ID changed: another build, as far as the ID says.
    const at = bytes.indexOf(Buffer.from(real, 'hex'));
    assert.ok(at > 0);
    bytes[at] ^= 0xff;
    const stale = path.join(tmp, 'qkd_sample.ko');
    fs.writeFileSync(stale, bytes);
    const staleId = moduleIdentity(bytes, stale).buildId as string;
    assert.notEqual(staleId, real);
    const syms = new ModuleSymbols({ modulePaths: [tmp], extraDirs: [path.dirname(ko)] }, (w) => warnings.push(w));
    const { view } = await syms.load(placedLike(ko, real));
    assert.equal(view.symbolFile, ko, 'the matching file from the later folder is used');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], new RegExp(`${stale}.*${staleId}.*${real}`));

    // Alone, the stale file gives no symbols, and the status names both IDs.
    const only = await new ModuleSymbols({ modulePaths: [tmp], extraDirs: [] }, () => undefined).load(placedLike(ko, real));
    assert.equal(only.image, undefined);
    assert.match(only.view.symbolStatus, new RegExp(`^no symbols: refused ${stale}: build ID ${staleId} is not the loaded module's ${real}`));
  });

  it('a corrupt .ko is reported with its name and the session goes on without its symbols', async () => {
    const ko = sampleKo();
    const bad = path.join(tmp, 'qkd_sample.ko');
    fs.writeFileSync(bad, fs.readFileSync(ko).subarray(0, 3000));
    const { image, view } = await new ModuleSymbols({ modulePaths: [tmp], extraDirs: [] }, (w) => warnings.push(w)).load(placedLike(ko, undefined));
    assert.equal(image, undefined);
    assert.match(view.symbolStatus, new RegExp(`^no symbols: refused ${bad}: `));
    assert.equal(warnings.length, 1);
  });

  it('with no file anywhere, says which folders it searched', async () => {
    const ko = sampleKo();
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    const { view } = await new ModuleSymbols({ modulePaths: [empty], extraDirs: [] }, () => undefined).load(placedLike(ko, undefined));
    assert.equal(view.symbolStatus, `no symbols: no qkd_sample.ko in ${empty}`);
  });

  it('reads a GNU build ID note as readelf prints it', () => {
    const ko = sampleKo();
    const elf = ElfFile.fromBuffer(ko, fs.readFileSync(ko));
    const note = elf.section('.note.gnu.build-id');
    assert.ok(note);
    assert.equal(gnuBuildId(elf.sectionData(note)), moduleIdentity(fs.readFileSync(ko), ko).buildId);
    assert.equal(gnuBuildId(Buffer.alloc(8)), undefined);
  });
});
