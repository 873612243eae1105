/**
 * Reading a module file (kbuild compresses installed modules with gzip, xz or zstd) and telling
 * which build of which module it is: the build ID, and .modinfo's name, srcversion and vermagic.
 */
import * as fs from 'node:fs';
import { ReadableStream } from 'node:stream/web';
import * as zlib from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import xxhash from 'xxhash-wasm';
import { XzReadableStream } from 'xz-decompress';
import { ElfError, ElfFile, ElfSection, SHT_NOBITS } from './elf';
import type { ModuleCandidate, ModuleCompression } from './modsearch';

/** A module file that cannot be read, decompressed or identified; names the file and what is wrong. */
export class ModuleFileError extends Error {
  constructor(readonly file: string, detail: string, options?: { cause?: unknown }) {
    super(`${file}: ${detail}`, options);
    this.name = 'ModuleFileError';
  }
}

/** Far beyond any real module (a debug amdgpu.ko is a few hundred MB): only a corrupt or hostile file gets here. */
const MAX_MODULE_BYTES = 1 << 30;

/** The file's bytes, decompressed; errors are ModuleFileErrors naming the file. */
export async function readModuleFile(c: ModuleCandidate): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await fs.promises.readFile(c.path);
  } catch (e) {
    throw new ModuleFileError(c.path, `cannot read: ${(e as Error).message}`, { cause: e });
  }
  return decompressModule(c.path, raw, c.compression);
}

const MAGIC: Record<ModuleCompression, Buffer> = {
  gz: Buffer.from([0x1f, 0x8b]),
  xz: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
  zst: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]),
};

/** `raw` as `compression` says (undefined: as it is); `file` only names it in errors. */
export async function decompressModule(file: string, raw: Buffer, compression: ModuleCompression | undefined): Promise<Buffer> {
  if (!compression) return raw;
  if (!raw.subarray(0, MAGIC[compression].length).equals(MAGIC[compression])) {
    throw new ModuleFileError(file, raw.length === 0 ? 'the file is empty' : `not ${compression} data (the name ends in .${compression} but the bytes do not start with its magic number)`);
  }
  try {
    if (compression === 'gz') return await gunzip(raw);
    if (compression === 'xz') return await unxz(raw);
    return await unzstd(raw);
  } catch (e) {
    if (e instanceof ModuleFileError) throw e;
    throw new ModuleFileError(file, `cannot decompress (${compression}): ${describeDecompressError(compression, e)}`, { cause: e });
  }
}

function gunzip(raw: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => zlib.gunzip(raw, { maxOutputLength: MAX_MODULE_BYTES }, (err, out) => (err ? reject(err) : resolve(out))));
}

async function unxz(raw: Buffer): Promise<Buffer> {
  const input = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
      controller.close();
    },
  });
  const reader = new XzReadableStream(input).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_MODULE_BYTES) {
      // Cancelling frees the decoder's shared context for the next file.
      await reader.cancel();
      throw new Error(`decompresses to more than ${MAX_MODULE_BYTES} bytes`);
    }
    if (value.byteLength) chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

async function unzstd(raw: Buffer): Promise<Buffer> {
  // fzstd does not check the frames' content checksums, so each frame is decoded alone and checked here:
  // a flipped bit must be an error, as it is for gzip's and xz's CRCs, not a module with wrong code.
  const hasher = await xxhashApi();
  const outs: Uint8Array[] = [];
  let total = 0;
  for (const f of zstdFrames(raw)) {
    if (f.skippable) continue;
    const out = zstdDecompress(raw.subarray(f.start, f.end));
    total += out.byteLength;
    if (total > MAX_MODULE_BYTES) throw new Error(`decompresses to more than ${MAX_MODULE_BYTES} bytes`);
    if (f.checksum !== undefined) {
      const h = hasher.create64(0n);
      // In slices: the hasher copies its input into wasm memory, which never shrinks again.
      for (let o = 0; o < out.byteLength; o += 1 << 20) h.update(out.subarray(o, o + (1 << 20)));
      const got = Number(h.digest() & 0xffffffffn);
      if (got !== f.checksum) throw new Error(`frame at byte ${f.start} fails its content checksum (corrupt data)`);
    }
    outs.push(out);
  }
  return Buffer.concat(outs, total);
}

let xxhashLoading: ReturnType<typeof xxhash> | undefined;
function xxhashApi(): ReturnType<typeof xxhash> {
  xxhashLoading ??= xxhash();
  return xxhashLoading;
}

interface ZstdFrame {
  start: number;
  end: number;
  skippable: boolean;
  checksum?: number;
}

/** The frames of a zstd file, found by walking frame and block headers (RFC 8878 §3.1). */
function zstdFrames(raw: Buffer): ZstdFrame[] {
  const frames: ZstdFrame[] = [];
  const need = (at: number, n: number): void => {
    if (at + n > raw.length) throw new Error('unexpected end of data (truncated?)');
  };
  let p = 0;
  while (p < raw.length) {
    need(p, 4);
    const magic = raw.readUInt32LE(p);
    if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) {
      need(p, 8);
      const end = p + 8 + raw.readUInt32LE(p + 4);
      need(end, 0);
      frames.push({ start: p, end, skippable: true });
      p = end;
      continue;
    }
    if (magic !== 0xfd2fb528) throw new Error(`no zstd frame at byte ${p}`);
    need(p, 5);
    const fhd = raw[p + 4];
    const fcsFlag = fhd >> 6;
    const singleSegment = (fhd >> 5) & 1;
    const hasChecksum = (fhd >> 2) & 1;
    const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag];
    let q = p + 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][fhd & 3] + fcsBytes;
    for (;;) {
      need(q, 3);
      const h = raw[q] | (raw[q + 1] << 8) | (raw[q + 2] << 16);
      const type = (h >> 1) & 3;
      if (type === 3) throw new Error(`reserved block type at byte ${q}`);
      // An RLE block stores its one byte however many it stands for.
      q += 3 + (type === 1 ? 1 : h >>> 3);
      if (h & 1) break;
    }
    let checksum: number | undefined;
    if (hasChecksum) {
      need(q, 4);
      checksum = raw.readUInt32LE(q);
      q += 4;
    }
    need(q, 0);
    frames.push({ start: p, end: q, skippable: false, ...(checksum !== undefined ? { checksum } : {}) });
    p = q;
  }
  return frames;
}

/** xz-embedded's return codes (xz.h enum xz_ret), which xz-decompress reports only as numbers. */
const XZ_ERRORS: Record<string, string> = {
  '2': 'unsupported integrity check type',
  '3': 'out of memory',
  '4': 'needs a larger dictionary than this decoder allows',
  '5': 'not xz data (bad header)',
  '6': 'unsupported xz options (filters)',
  '7': 'corrupt data (a check failed)',
  '8': 'unexpected end of data (truncated?)',
};

function describeDecompressError(compression: ModuleCompression, e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (compression === 'xz') {
    const code = /error code (\d+)/.exec(msg)?.[1];
    if (code && XZ_ERRORS[code]) return XZ_ERRORS[code];
  }
  if (compression === 'zst' && /unexpected EOF/i.test(msg)) return 'unexpected end of data (truncated?)';
  return msg;
}

export interface ModuleIdentity {
  /** .modinfo's name=, else the name in .gnu.linkonce.this_module (struct module). */
  name?: string;
  /** The GNU build ID note, lower-case hex. */
  buildId?: string;
  srcversion?: string;
  vermagic?: string;
  /** The file has DWARF (.debug_info with contents); a distribution's /lib/modules copy is usually stripped of it. */
  hasDebugInfo: boolean;
}

const SHT_NOTE = 7;
const NT_GNU_BUILD_ID = 3;
/** offsetof(struct module, name) on 64-bit kernels: after `enum module_state state` (padded to 8) and `struct list_head list`. */
const THIS_MODULE_NAME_OFFSET = 24;
/** MODULE_NAME_LEN on 64-bit kernels: 64 - sizeof(unsigned long). */
const MODULE_NAME_LEN = 56;

/** Which module and which build `bytes` (a decompressed module file) are; `file` names it in errors. */
export function moduleIdentity(bytes: Buffer, file: string): ModuleIdentity {
  if (bytes.length < 4 || bytes.readUInt32BE(0) !== 0x7f454c46) throw new ModuleFileError(file, 'not an ELF file (no \\x7fELF magic), so not a kernel module');
  try {
    const elf = ElfFile.fromBuffer(file, bytes);
    const withData = (s: ElfSection | undefined): ElfSection | undefined => (s && s.type !== SHT_NOBITS && s.size > 0 ? s : undefined);
    const id: ModuleIdentity = { hasDebugInfo: withData(elf.section('.debug_info')) !== undefined };
    const buildId = findBuildId(elf);
    if (buildId) id.buildId = buildId;
    const modinfoSec = withData(elf.section('.modinfo'));
    const info = modinfoSec ? parseModinfo(elf.sectionData(modinfoSec)) : new Map<string, string>();
    const thisModule = withData(elf.section('.gnu.linkonce.this_module'));
    const name = info.get('name') ?? (thisModule ? structModuleName(elf.sectionData(thisModule)) : undefined);
    if (name) id.name = name;
    const srcversion = info.get('srcversion');
    if (srcversion) id.srcversion = srcversion;
    const vermagic = info.get('vermagic');
    if (vermagic) id.vermagic = vermagic;
    return id;
  } catch (e) {
    if (e instanceof ElfError) throw new ModuleFileError(file, `not a usable ELF module: ${e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message}`, { cause: e });
    // Corrupt headers can send the Buffer reads out of range; that is the file's fault, not ours.
    if (e instanceof RangeError) throw new ModuleFileError(file, `corrupt ELF module: ${e.message}`, { cause: e });
    throw e;
  }
}

function findBuildId(elf: ElfFile): string | undefined {
  // Every note section, not only .note.gnu.build-id: a linker script may have merged the notes.
  for (const s of elf.sections) {
    if (s.type !== SHT_NOTE || s.size === 0) continue;
    const d = elf.sectionData(s);
    for (let o = 0; o + 12 <= d.length; ) {
      const namesz = d.readUInt32LE(o);
      const descsz = d.readUInt32LE(o + 4);
      const type = d.readUInt32LE(o + 8);
      const nameAt = o + 12;
      const descAt = nameAt + align4(namesz);
      if (descAt + descsz > d.length) break;
      if (type === NT_GNU_BUILD_ID && namesz === 4 && d.toString('latin1', nameAt, nameAt + 4) === 'GNU\0' && descsz > 0) {
        return d.toString('hex', descAt, descAt + descsz);
      }
      o = descAt + align4(descsz);
    }
  }
  return undefined;
}

function align4(n: number): number {
  // Not `(n + 3) & ~3`: bit operators wrap a corrupt size near 2^32 to a negative step.
  return Math.ceil(n / 4) * 4;
}

/** .modinfo is NUL-separated key=value strings; the first of a key wins (only alias= and the like repeat). */
function parseModinfo(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of data.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    if (!out.has(key)) out.set(key, entry.slice(eq + 1));
  }
  return out;
}

function structModuleName(data: Buffer): string | undefined {
  if (data.length < THIS_MODULE_NAME_OFFSET + 1) return undefined;
  const field = data.subarray(THIS_MODULE_NAME_OFFSET, Math.min(data.length, THIS_MODULE_NAME_OFFSET + MODULE_NAME_LEN));
  const end = field.indexOf(0);
  const name = field.toString('latin1', 0, end < 0 ? field.length : end);
  // A 32-bit module or another layout would put other bytes here: trust only what looks like a module name.
  return /^[\w-]+$/.test(name) ? name : undefined;
}
