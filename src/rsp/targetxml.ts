/**
 * Target descriptions (`target.xml` and its `xi:include`s) turned into a register table.
 * Only the parts gdb uses for registers are read; type definitions are kept by name.
 */

export interface RegisterInfo {
  name: string;
  bitsize: number;
  /** The number used in `p`/`P` packets. */
  regnum: number;
  type: string;
  group?: string;
  feature: string;
}

export interface TargetDescription {
  architecture?: string;
  registers: RegisterInfo[];
}

interface XmlElement {
  name: string;
  attrs: Map<string, string>;
}

/** Yield the start (and self-closing) tags of a small XML document; text and end tags are skipped. */
export function* xmlStartTags(text: string): Generator<XmlElement & { text?: string }> {
  const tag = /<!--[\s\S]*?-->|<!DOCTYPE[^>]*>|<\?[\s\S]*?\?>|<\/[^>]*>|<([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  let m: RegExpExecArray | null;
  while ((m = tag.exec(text))) {
    if (!m[1]) continue;
    const attrs = new Map<string, string>();
    const attr = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
    let a: RegExpExecArray | null;
    while ((a = attr.exec(m[2]))) attrs.set(a[1], decodeEntities(a[2] ?? a[3] ?? ''));
    let inner: string | undefined;
    if (!m[3]) {
      const close = text.indexOf('<', tag.lastIndex);
      if (close > tag.lastIndex) inner = text.slice(tag.lastIndex, close).trim();
    }
    yield { name: m[1], attrs, text: inner };
  }
}

function decodeEntities(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[e] ?? _);
}

/**
 * Parse a description, fetching includes through `fetch` (which reads an annex from the stub).
 * Register numbers follow gdb's rule: `regnum` if given, else one more than the previous register.
 */
export async function parseTargetDescription(rootAnnex: string, fetch: (annex: string) => Promise<string>): Promise<TargetDescription> {
  const registers: RegisterInfo[] = [];
  let architecture: string | undefined;
  let next = 0;
  const seen = new Set<string>();

  const walk = async (annex: string): Promise<void> => {
    if (seen.has(annex)) return;
    seen.add(annex);
    const doc = await fetch(annex);
    let feature = '';
    for (const el of xmlStartTags(doc)) {
      switch (el.name) {
        case 'architecture':
          architecture = el.text;
          break;
        case 'feature':
          feature = el.attrs.get('name') ?? '';
          break;
        case 'xi:include': {
          const href = el.attrs.get('href');
          if (href) await walk(href);
          break;
        }
        case 'reg': {
          const name = el.attrs.get('name');
          const bits = Number(el.attrs.get('bitsize'));
          if (!name || !Number.isInteger(bits) || bits <= 0) throw new Error(`${annex}: <reg> needs name and bitsize`);
          const rn = el.attrs.get('regnum');
          const regnum = rn !== undefined ? Number(rn) : next;
          next = regnum + 1;
          registers.push({ name, bitsize: bits, regnum, type: el.attrs.get('type') ?? 'int', group: el.attrs.get('group'), feature });
          break;
        }
      }
    }
  };
  await walk(rootAnnex);
  registers.sort((a, b) => a.regnum - b.regnum);
  return { architecture, registers };
}

/**
 * Split a `g` reply into registers. The block holds registers in regnum order until it runs out;
 * registers past its end must be read with `p`.
 */
export function splitRegisterBlock(regs: RegisterInfo[], block: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let offset = 0;
  for (const r of regs) {
    const size = r.bitsize / 8;
    if (offset + size > block.length) break;
    out.set(r.regnum, block.subarray(offset, offset + size));
    offset += size;
  }
  return out;
}
