/**
 * The code map (src/symbols/codemap/) against the DWARF it was built from, on each sample
 * guest's real vmlinux: at thousands of addresses (random ones in every unit's ranges, and
 * each side of the map's own record boundaries) its frames equal SourceInfo.inlineChainAt's,
 * name for name and line for line. (decode.test.ts checks `qkd decode` with and without the
 * map on the sample guest's real reports.)
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SourceSet } from '../../src/engine/sources';
import { sourceInfo, symbolTable } from '../../src/engine/vmlinux';
import type { GuestPaths } from '../../src/guest/build';
import { CodeMap } from '../../src/symbols/codemap/format';
import { codeMapFile } from '../../src/symbols/codemap/store';
import { writeCodeMap, type WrittenMap } from '../../src/symbols/codemap/write';
import { ArangeIndex } from '../../src/symbols/dwarf/ranges';
import { ElfFile } from '../../src/symbols/elf';
import { CLI, requireBuilt, sampleGuest } from '../support/env';

const ARCHES = ['x86_64', 'aarch64', 'riscv64'];
const RANDOM = 3000;

for (const arch of ARCHES) {
  describe(`${arch}: the code map answers as the DWARF does`, function () {
    this.timeout(600_000);
    let g: GuestPaths;
    let cache = '';
    let saved: string | undefined;
    let built: WrittenMap | undefined;

    before(function () {
      requireBuilt(this);
      g = sampleGuest(this, arch);
      saved = process.env.XDG_CACHE_HOME;
      cache = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-codemap-'));
      process.env.XDG_CACHE_HOME = cache;
      built = writeCodeMap(g.vmlinux);
    });

    after(() => {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
      fs.rmSync(cache, { recursive: true, force: true });
    });

    it('gives SourceInfo.inlineChainAt\'s frames at random addresses and at each side of its records', function () {
      assert.ok(built, 'the map was built');
      assert.equal(built.unreadable, 0, 'every unit read');
      assert.ok(built.records > 1000, `${built.records} records`);
      const file = codeMapFile(g.vmlinux);
      assert.ok(file.startsWith(path.join(cache, 'qemu-kernel-debug', 'codemap')));
      assert.equal((fs.statSync(path.dirname(file)).mode & 0o777).toString(8), '700');
      const st = fs.statSync(g.vmlinux);
      const map = CodeMap.open(file, { size: st.size, mtimeMs: st.mtimeMs });
      assert.ok(map);
      assert.equal(CodeMap.open(file, { size: st.size + 1, mtimeMs: st.mtimeMs }), undefined, 'a map of another build is refused');
      const elf = ElfFile.open(g.vmlinux);
      let source: SourceSet | undefined;
      try {
        source = sourceInfo(elf, symbolTable(elf, g.vmlinux), g.vmlinux, {});
        const ranges = [...ArangeIndex.read(source.dwarf!.sections).entries()].filter((e) => e.end > e.start);
        const total = ranges.reduce((n, r) => n + Number(r.end - r.start), 0);
        // A fixed seed: a failure names an address that fails again.
        let seed = 0x9e3779b9;
        const rand = (): number => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
        const addresses: bigint[] = [];
        for (let i = 0; i < RANDOM; i++) {
          let at = Math.floor(rand() * total);
          const r = ranges.find((x) => (at -= Number(x.end - x.start)) < 0) ?? ranges[0];
          addresses.push(r.end + BigInt(at));
        }
        // Each range's edges, where a wrong boundary would show.
        for (const r of ranges.filter((_, i) => i % 7 === 0)) addresses.push(r.start, r.end - 1n);
        const toLocal = (p: string): string => source!.mapper.toLocal(p);
        let compared = 0;
        let inlined = 0;
        for (const a of addresses) {
          const mapped = map.framesAt(a, toLocal);
          assert.ok(mapped, `the map sends 0x${a.toString(16)} back to the DWARF`);
          if (!mapped.length) continue;
          assert.deepEqual(mapped, source.inlineChainAt(a), `at 0x${a.toString(16)}`);
          compared++;
          if (mapped.length > 1) inlined++;
        }
        assert.ok(compared >= RANDOM * 0.9, `${compared} addresses compared`);
        assert.ok(inlined > 50, `${inlined} of them in inlined code`);
      } finally {
        elf.close();
        map.close();
      }
    });

    // Once is enough: the background build is the same code on every arch.
    if (arch === 'x86_64') {
      it('qkd decode with no map builds one in the background, which the next decode uses', async function () {
        const own = fs.mkdtempSync(path.join(os.tmpdir(), 'qkd-codemap-bg-'));
        const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: own };
        delete env.QKD_NO_BACKGROUND_INDEX;
        try {
          const log = '[    1.000000]  kernel_clone+0x10/0x400\n[    1.000000]  do_syscall_64+0x3b/0x90\n';
          const first = execFileSync('node', [CLI, 'decode', '--vmlinux', g.vmlinux], { input: log, env, encoding: 'utf8' });
          assert.match(first, /kernel_clone \(kernel\/fork\.c:\d+\)/);
          const status = (): { state: string; map: string } => {
            try {
              return JSON.parse(execFileSync('node', [CLI, 'index', '--status', '--json', '--vmlinux', g.vmlinux], { env, encoding: 'utf8' })) as { state: string; map: string };
            } catch (e) {
              return JSON.parse((e as { stdout: string }).stdout) as { state: string; map: string };
            }
          };
          const deadline = Date.now() + 300_000;
          while (status().state !== 'built') {
            assert.ok(Date.now() < deadline, `no code map after 300 s: ${JSON.stringify(status())}`);
            await new Promise((r) => setTimeout(r, 1000));
          }
          assert.ok(status().map.startsWith(own));
          assert.ok(!fs.readdirSync(path.dirname(status().map)).some((f) => f.endsWith('.lock') || f.endsWith('.tmp')), 'no lock or temporary file left');
          assert.equal(execFileSync('node', [CLI, 'decode', '--vmlinux', g.vmlinux], { input: log, env, encoding: 'utf8' }), first);
        } finally {
          fs.rmSync(own, { recursive: true, force: true });
        }
      });
    }
  });
}
