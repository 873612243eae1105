/**
 * Hand-made hostile DWARF, the cases random mutation rarely builds: lengths past the end,
 * 20-byte LEB128s, DW_AT_type cycles, self-referring abbreviations and DIEs, nesting deeper
 * than the JS stack, CIE pointers to themselves. Each is run through every parser (as the
 * fuzz cases are) and must end in a result or a DwarfError naming file, section and offset.
 */
import * as assert from 'node:assert/strict';
import { DW_AT, DW_FORM, DW_TAG } from '../../src/symbols/dwarf/constants';
import { Dwarf } from '../../src/symbols/dwarf/dwarf';
import { sizeOf, strip, TypeReader, typeName } from '../../src/symbols/dwarf/types';
import { frameVariables } from '../../src/symbols/dwarf/variables';
import { scopeChain, unitFunctions } from '../../src/symbols/dwarf/scopes';
import { ElfFile } from '../../src/symbols/elf';
import { buildElf, type Section } from './fuzzcorpus';
import { exerciseDwarf } from './fuzzdwarf';
import { BIG_CASE_MS, cstr, le, longLeb, record, Tally, timed, uleb } from './fuzzkit';

type Val = number | bigint | string | { ref: string } | number[];
interface AbbrevDef {
  code: number;
  tag: number;
  children: boolean;
  attrs: Array<[at: number, form: number]>;
}
interface DieDef {
  label?: string;
  code: number;
  vals: Val[];
  kids?: DieDef[];
}

const HEADER = 11; // v4, 32-bit: length, version, abbrev offset, address size

function encodeAbbrevs(defs: readonly AbbrevDef[]): number[] {
  const out: number[] = [];
  for (const a of defs) {
    out.push(...uleb(a.code), ...uleb(a.tag), a.children ? 1 : 0);
    for (const [at, form] of a.attrs) out.push(...uleb(at), ...uleb(form));
    out.push(0, 0);
  }
  out.push(0);
  return out;
}

/** A v4 unit at .debug_info offset 0 with its DIEs laid out in order; refs name labels. */
function encodeUnit(defs: readonly AbbrevDef[], dies: readonly DieDef[], abbrevOffset = 0): Buffer {
  const byCode = new Map(defs.map((a) => [a.code, a]));
  const labels = new Map<string, number>();
  const emit = (pass: number): number[] => {
    const out: number[] = [];
    const one = (d: DieDef): void => {
      if (d.label) labels.set(d.label, HEADER + out.length);
      out.push(...uleb(d.code));
      const a = byCode.get(d.code);
      d.vals.forEach((v, i) => {
        const form = a?.attrs[i]?.[1];
        if (Array.isArray(v)) out.push(...v);
        else if (typeof v === 'string') out.push(...cstr(v));
        else if (typeof v === 'object') out.push(...le(pass === 0 ? 0 : (labels.get(v.ref) ?? 0xdead), 4));
        else out.push(...le(v, form === DW_FORM.data1 ? 1 : form === DW_FORM.data2 ? 2 : form === DW_FORM.addr || form === DW_FORM.data8 ? 8 : 4));
      });
      if (d.kids) {
        for (const k of d.kids) one(k);
        out.push(0);
      }
    };
    for (const d of dies) one(d);
    return out;
  };
  emit(0);
  const body = emit(1);
  return Buffer.from([...le(7 + body.length, 4), ...le(4, 2), ...le(abbrevOffset, 4), 8, ...body]);
}

const A = {
  cu: { code: 1, tag: DW_TAG.compile_unit, children: true, attrs: [[DW_AT.name, DW_FORM.string]] },
  base: { code: 2, tag: DW_TAG.base_type, children: false, attrs: [[DW_AT.name, DW_FORM.string], [DW_AT.byte_size, DW_FORM.data1]] },
  typedef: { code: 3, tag: DW_TAG.typedef, children: false, attrs: [[DW_AT.name, DW_FORM.string], [DW_AT.type, DW_FORM.ref4]] },
  pointer: { code: 4, tag: DW_TAG.pointer_type, children: false, attrs: [[DW_AT.type, DW_FORM.ref4]] },
  konst: { code: 5, tag: DW_TAG.const_type, children: false, attrs: [[DW_AT.type, DW_FORM.ref4]] },
  volat: { code: 6, tag: DW_TAG.volatile_type, children: false, attrs: [[DW_AT.type, DW_FORM.ref4]] },
  array: { code: 7, tag: DW_TAG.array_type, children: true, attrs: [[DW_AT.type, DW_FORM.ref4]] },
  subrange: { code: 8, tag: DW_TAG.subrange_type, children: false, attrs: [[DW_AT.upper_bound, DW_FORM.data1]] },
  enumt: { code: 9, tag: DW_TAG.enumeration_type, children: false, attrs: [[DW_AT.name, DW_FORM.string], [DW_AT.type, DW_FORM.ref4]] },
  variable: { code: 10, tag: DW_TAG.variable, children: false, attrs: [[DW_AT.name, DW_FORM.string], [DW_AT.type, DW_FORM.ref4]] },
  subprogram: { code: 11, tag: DW_TAG.subprogram, children: true, attrs: [[DW_AT.name, DW_FORM.string], [DW_AT.abstract_origin, DW_FORM.ref4], [DW_AT.low_pc, DW_FORM.addr], [DW_AT.high_pc, DW_FORM.data4]] },
  struct: { code: 12, tag: DW_TAG.structure_type, children: true, attrs: [[DW_AT.name, DW_FORM.string], [DW_AT.byte_size, DW_FORM.data1]] },
  member: { code: 13, tag: DW_TAG.member, children: false, attrs: [[DW_AT.name, DW_FORM.string], [DW_AT.type, DW_FORM.ref4]] },
  block: { code: 14, tag: DW_TAG.lexical_block, children: true, attrs: [[DW_AT.low_pc, DW_FORM.addr], [DW_AT.high_pc, DW_FORM.data4]] },
  subroutine: { code: 15, tag: DW_TAG.subroutine_type, children: false, attrs: [[DW_AT.type, DW_FORM.ref4]] },
  spec: { code: 16, tag: DW_TAG.subprogram, children: false, attrs: [[DW_AT.specification, DW_FORM.ref4], [DW_AT.low_pc, DW_FORM.addr], [DW_AT.high_pc, DW_FORM.data4]] },
  nest: { code: 17, tag: 0x39 /* DW_TAG_namespace */, children: true, attrs: [] },
  local: { code: 18, tag: DW_TAG.variable, children: false, attrs: [[DW_AT.name, DW_FORM.string], [DW_AT.type, DW_FORM.ref4], [DW_AT.location, DW_FORM.exprloc]] },
} satisfies Record<string, AbbrevDef>;
const ALL: AbbrevDef[] = Object.values(A);

function image(info: Buffer, abbrev: Buffer | number[], extra: Array<[string, Buffer]> = []): ElfFile {
  const sec = (name: string, data: Buffer): Section => ({ name, type: 1, flags: 0n, addr: 0n, link: undefined, data, size: data.length });
  const secs = [sec('.debug_info', info), sec('.debug_abbrev', Buffer.from(abbrev)), ...extra.map(([n, d]) => sec(n, d))];
  return ElfFile.fromBuffer('hostile.elf', buildElf(62, secs));
}

const cu = (kids: DieDef[]): DieDef[] => [{ code: 1, vals: ['h.c'], kids }];
const int: DieDef = { label: 'int', code: 2, vals: ['int', 4] };
const v = (type: string): DieDef => ({ code: 10, vals: ['v', { ref: type }] });

/** Units whose types loop back on themselves, each read through a variable of that type. */
const TYPE_CYCLES: Array<[string, DieDef[]]> = [
  ['typedef naming itself', [{ label: 't', code: 3, vals: ['t', { ref: 't' }] }, v('t')]],
  ['const -> volatile -> const', [{ label: 'c', code: 5, vals: [{ ref: 'w' }] }, { label: 'w', code: 6, vals: [{ ref: 'c' }] }, v('c')]],
  ['pointer to itself', [{ label: 'p', code: 4, vals: [{ ref: 'p' }] }, v('p')]],
  ['array of itself', [{ label: 'a', code: 7, vals: [{ ref: 'a' }], kids: [{ code: 8, vals: [3] }] }, v('a')]],
  ['array of a typedef of the array', [{ label: 'a', code: 7, vals: [{ ref: 't' }], kids: [{ code: 8, vals: [3] }] }, { label: 't', code: 3, vals: ['t', { ref: 'a' }] }, v('a')]],
  ['enum whose underlying type is itself', [{ label: 'e', code: 9, vals: ['e', { ref: 'e' }] }, v('e')]],
  ['struct holding itself by value', [{ label: 's', code: 12, vals: ['s', 8], kids: [{ code: 13, vals: ['self', { ref: 's' }] }] }, v('s')]],
  ['function type returning itself', [{ label: 'f', code: 15, vals: [{ ref: 'f' }] }, { label: 'fp', code: 4, vals: [{ ref: 'f' }] }, v('fp')]],
  ['a 70-long typedef ring', [...Array.from({ length: 70 }, (_, i): DieDef => ({ label: `t${i}`, code: 3, vals: [`t${i}`, { ref: `t${(i + 1) % 70}` }] })), v('t0')]],
  ['type reference past the unit', [{ code: 10, vals: ['v', [0xf0, 0xff, 0xff, 0x7f]] }]],
  ['type reference into the unit header', [{ code: 10, vals: ['v', le(2, 4)] }]],
  ['typedef of int (a control: no cycle)', [int, { label: 't', code: 3, vals: ['t', { ref: 'int' }] }, v('t')]],
];

describe('fuzz: hand-made hostile DWARF', function () {
  this.timeout(120_000);
  const tally = new Tally();
  let cases = 0;
  after(() => record('dwarf (hand-made)', 'hostile cases', cases, tally, 0));

  /** Every parser over the image, as a fuzz case; plus `extra` checks of its own. */
  const run = (what: string, elf: ElfFile, extra?: (d: Dwarf) => void): void => {
    cases++;
    timed(what, () => exerciseDwarf(elf, tally, undefined, extra), BIG_CASE_MS);
  };

  it('DW_AT_type cycles: a DwarfError or a bounded type, never a stack overflow', () => {
    for (const [what, dies] of TYPE_CYCLES) {
      run(`type cycle: ${what}`, image(encodeUnit(ALL, cu(dies)), encodeAbbrevs(ALL)), (d) => {
        const unit = d.unit(d.unitHeaders()[0].offset);
        const types = new TypeReader(d);
        for (const die of unit.dies().children.filter((c) => c.tag === DW_TAG.variable)) {
          const t = types.typeOf(unit, die);
          typeName(t);
          sizeOf(t);
          strip(t);
          // Follow the type as a value formatter would, a bounded number of steps.
          let cur = t;
          for (let i = 0; i < 200; i++) {
            const s = strip(cur);
            if (s.kind === 'pointer') cur = s.target;
            else if (s.kind === 'array') cur = s.element;
            else if (s.kind === 'struct' && s.members[0]) cur = s.members[0].type;
            else if (s.kind === 'function') cur = s.returns;
            else break;
            typeName(cur);
            sizeOf(cur);
          }
        }
      });
    }
  });

  it('abbreviations and DIEs that refer to themselves', () => {
    const indirect: AbbrevDef = { code: 20, tag: DW_TAG.variable, children: false, attrs: [[DW_AT.name, DW_FORM.indirect]] };
    const withIndirect = [...ALL, indirect];
    run('DW_FORM_indirect naming DW_FORM_indirect', image(encodeUnit(withIndirect, cu([{ code: 20, vals: [[DW_FORM.indirect, DW_FORM.indirect, 0]] }])), encodeAbbrevs(withIndirect)));
    run('DW_FORM_indirect naming an unknown form', image(encodeUnit(withIndirect, cu([{ code: 20, vals: [[0x7f]] }])), encodeAbbrevs(withIndirect)));
    run('a duplicated abbreviation code', image(encodeUnit(ALL, cu([int])), [...encodeAbbrevs(ALL).slice(0, -1), ...encodeAbbrevs([A.base])]));
    run('abbreviation table with no terminator', image(encodeUnit(ALL, cu([int])), encodeAbbrevs(ALL).slice(0, -1)));
    run('unit abbreviation offset past the section', image(encodeUnit(ALL, cu([int]), 0x7ffffff0), encodeAbbrevs(ALL)));
    run('unit abbreviation offset into the middle of an abbreviation', image(encodeUnit(ALL, cu([int]), 3), encodeAbbrevs(ALL)));
    run('DIE with an abbreviation code the table lacks', image(encodeUnit(ALL, cu([{ code: 99, vals: [] }])), encodeAbbrevs(ALL)));
    const origin = (label: string, ref: string): DieDef => ({ label, code: 11, vals: [label, { ref }, 0x1000n, 0x10], kids: [] });
    run('subprogram whose abstract_origin is itself', image(encodeUnit(ALL, cu([origin('f', 'f')])), encodeAbbrevs(ALL)));
    run('abstract_origin ring of two', image(encodeUnit(ALL, cu([origin('f', 'g'), origin('g', 'f')])), encodeAbbrevs(ALL)));
    run('specification ring of two (the scan for the function index)', image(encodeUnit(ALL, cu([{ label: 'a', code: 16, vals: [{ ref: 'b' }, 0x1000n, 0x10] }, { label: 'b', code: 16, vals: [{ ref: 'a' }, 0x2000n, 0x10] }])), encodeAbbrevs(ALL)));
    const sibling: AbbrevDef = { code: 21, tag: DW_TAG.variable, children: false, attrs: [[DW_AT.sibling, DW_FORM.ref4]] };
    run('DW_AT_sibling pointing at its own DIE', image(encodeUnit([...ALL, sibling], cu([{ label: 's', code: 21, vals: [{ ref: 's' }] }])), encodeAbbrevs([...ALL, sibling])));
  });

  it('nesting deeper than the JS stack (50,000 levels), in DIEs and in lexical blocks', () => {
    // Written out flat: the recursive encoder above would itself run out of stack.
    const unitOf = (body: Buffer): Buffer => {
      const root = Buffer.from([1, ...cstr('h.c')]);
      const rest = Buffer.concat([Buffer.from(le(4, 2)), Buffer.from(le(0, 4)), Buffer.from([8]), root, body, Buffer.from([0])]);
      return Buffer.concat([Buffer.from(le(rest.length, 4)), rest]);
    };
    const nested = (n: number, open: number[]): Buffer => Buffer.concat([Buffer.from(Array(n).fill(open).flat()), Buffer.alloc(n)]);
    run('50,000 nested namespaces', image(unitOf(nested(50_000, [17])), encodeAbbrevs(ALL)));
    // Blocks all cover pc 0x1001 and each holds a local, so a frame's variable walk goes all the way down.
    const fn = [11, ...cstr('f'), ...le(0, 4), ...le(0x1000, 8), ...le(0x10, 4)];
    const level = [14, ...le(0x1000, 8), ...le(0x10, 4), 18, ...cstr('x'), ...le(0, 4), 1, 0x50];
    const blocks = unitOf(Buffer.concat([Buffer.from(fn), nested(20_000, level), Buffer.from([0])]));
    run('20,000 nested lexical blocks around pc', image(blocks, encodeAbbrevs(ALL)), (d) => {
      const unit = d.unit(d.unitHeaders()[0].offset);
      const fn = unitFunctions(unit)[0];
      assert.ok(fn);
      scopeChain(unit, 0x1001n);
      frameVariables(d, unit, fn.die, 0x1001n);
    });
    run('unit that opens children and never closes them', image(unitOf(Buffer.from(Array(1000).fill(17))), encodeAbbrevs(ALL)));
  });

  it('unit lengths past the end, and 20-byte LEB128s, in every section', () => {
    const unit = encodeUnit(ALL, cu([int, v('int')]));
    const lengths: Array<[string, Buffer]> = [
      ['unit length 0x7ffffff0', Buffer.concat([Buffer.from(le(0x7ffffff0, 4)), unit.subarray(4)])],
      ['reserved unit length 0xfffffff5', Buffer.concat([Buffer.from(le(0xfffffff5, 4)), unit.subarray(4)])],
      ['64-bit unit length 2^62', Buffer.concat([Buffer.from([...le(0xffffffff, 4), ...le(1n << 62n, 8)]), unit.subarray(4)])],
      ['unit length 0', Buffer.concat([Buffer.from(le(0, 4)), unit.subarray(4)])],
      ['a good unit then a length past the end', Buffer.concat([unit, Buffer.from(le(0x1000, 4)), unit.subarray(4, 11)])],
    ];
    for (const [what, info] of lengths) run(`.debug_info ${what}`, image(info, encodeAbbrevs(ALL)));
    const leb = longLeb(20);
    run('20-byte LEB128 abbreviation code in .debug_abbrev', image(unit, [...leb, ...encodeAbbrevs(ALL)]));
    run('20-byte LEB128 abbreviation code of a DIE', image(Buffer.concat([unit.subarray(0, 11), Buffer.from(leb), unit.subarray(11)]), encodeAbbrevs(ALL)));
    const udata: AbbrevDef = { code: 22, tag: DW_TAG.variable, children: false, attrs: [[DW_AT.byte_size, DW_FORM.udata], [DW_AT.location, DW_FORM.exprloc]] };
    run('20-byte LEB128 DW_FORM_udata value', image(encodeUnit([...ALL, udata], cu([{ code: 22, vals: [leb, [1, 0x50]] }])), encodeAbbrevs([...ALL, udata])));
    run('20-byte LEB128 exprloc length', image(encodeUnit([...ALL, udata], cu([{ code: 22, vals: [[1], leb] }])), encodeAbbrevs([...ALL, udata])));
    run('exprloc of 2^32 bytes', image(encodeUnit([...ALL, udata], cu([{ code: 22, vals: [[1], uleb(2 ** 32)] }])), encodeAbbrevs([...ALL, udata])));

    // .debug_line: a v4 unit whose header is fine and whose program carries the hostile part.
    const lineUnit = (program: number[], unitLength?: number, headerLength?: number): Buffer => {
      const header = [1, 1, 1, 0xfb, 14, 13, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, ...cstr('dir'), 0, ...cstr('h.c'), 1, 0, 0, 0];
      const body = [...le(headerLength ?? header.length, 4), ...header, ...program];
      return Buffer.from([...le(unitLength ?? 2 + body.length, 4), ...le(4, 2), ...body]);
    };
    const stmt: AbbrevDef = { code: 23, tag: DW_TAG.compile_unit, children: false, attrs: [[DW_AT.name, DW_FORM.string], [DW_AT.stmt_list, DW_FORM.data4]] };
    const withLine = (line: Buffer): ElfFile => image(encodeUnit([stmt], [{ code: 23, vals: ['h.c', 0] }]), encodeAbbrevs([stmt]), [['.debug_line', line]]);
    const endSeq = [0, 9, 2, ...le(0x1000, 8), 1, 0, 1, 1];
    run('.debug_line unit length past the end', withLine(lineUnit(endSeq, 0x7ffffff0)));
    run('.debug_line header_length past the unit', withLine(lineUnit(endSeq, undefined, 0x7ffffff0)));
    run('.debug_line advance_pc with a 20-byte LEB128', withLine(lineUnit([0, 9, 2, ...le(0x1000, 8), 2, ...leb, 1, 0, 1, 1])));
    run('.debug_line advance_line with a 20-byte LEB128', withLine(lineUnit([0, 9, 2, ...le(0x1000, 8), 3, ...leb, 1, 0, 1, 1])));
    run('.debug_line extended opcode of length 2^40', withLine(lineUnit([0, ...uleb(2 ** 40), 1])));
    run('.debug_line extended opcode with a 20-byte length', withLine(lineUnit([0, ...leb, 1])));
    run('.debug_line advance_pc by 2^56 units', withLine(lineUnit([0, 9, 2, ...le(0x1000, 8), 2, ...uleb(2n ** 56n), 1, 0, 1, 1])));
  });

  it('CIEs and FDEs that point at themselves or at nothing', () => {
    const leb = longLeb(20);
    // A .debug_frame CIE (version 1, no augmentation, code 1, data -8, RA 16, def_cfa rsp+8).
    const cieBody = [...le(0xffffffff, 4), 1, 0, 1, 0x78, 16, 0x0c, 7, 8];
    const cie = [...le(cieBody.length, 4), ...cieBody];
    const fde = (ciePointer: number, extra: number[] = []): number[] => {
      const body = [...le(ciePointer, 4), ...le(0x1000, 8), ...le(0x20, 8), ...extra];
      return [...le(body.length, 4), ...body];
    };
    const frame = (bytes: number[]): ElfFile => image(encodeUnit(ALL, cu([int])), encodeAbbrevs(ALL), [['.debug_frame', Buffer.from(bytes)]]);
    run('FDE whose CIE pointer is its own offset', frame([...cie, ...fde(cie.length)]));
    run('FDE whose CIE pointer is the next FDE', frame([...cie, ...fde(cie.length + 32), ...fde(0)]));
    run('FDE whose CIE pointer is past the section', frame([...cie, ...fde(0x7fffffff)]));
    run('FDE whose CIE pointer is inside the CIE', frame([...cie, ...fde(2)]));
    run('entry length past the section', frame([...cie, ...le(0x7ffffff0, 4), ...fde(0).slice(4)]));
    run('64-bit entry length 2^62', frame([...le(0xffffffff, 4), ...le(1n << 62n, 8), ...cieBody]));
    run('2,000 nested DW_CFA_remember_state', frame([...cie, ...fde(0, Array(2000).fill(0x0a))]));
    run('DW_CFA_restore_state with nothing remembered', frame([...cie, ...fde(0, [0x41, 0x0b])]));
    run('DW_CFA_offset_extended with 20-byte LEB128s', frame([...cie, ...fde(0, [0x05, ...leb, ...leb])]));
    run('DW_CFA_def_cfa_expression with a 2^40-byte block', frame([...cie, ...fde(0, [0x0f, ...uleb(2 ** 40)])]));
    run('DW_CFA_advance_loc4 past the FDE, twice', frame([...cie, ...fde(0, [0x04, ...le(0xffffffff, 4), 0x04, ...le(0xffffffff, 4)])]));
    // .eh_frame: the CIE pointer is a distance back from the pointer itself, so 4 points at the FDE's own start.
    const ehCie = [...le(0, 4), 1, ...cstr('zR'), 1, 0x78, 16, 1, 0x1b, 0x0c, 7, 8];
    const ehFde = (distance: number): number[] => {
      const body = [...le(distance, 4), ...le(0x100, 4), ...le(0x20, 4), 0];
      return [...le(body.length, 4), ...body];
    };
    const eh = (bytes: number[]): ElfFile => image(encodeUnit(ALL, cu([int])), encodeAbbrevs(ALL), [['.eh_frame', Buffer.from(bytes)]]);
    const ehCieEntry = [...le(ehCie.length, 4), ...ehCie];
    run('.eh_frame FDE whose CIE pointer is itself', eh([...ehCieEntry, ...ehFde(4)]));
    run('.eh_frame FDE whose CIE pointer is before the section', eh([...ehCieEntry, ...ehFde(0x7fffffff)]));
    run('.eh_frame CIE whose augmentation data runs past its end', eh([...le(ehCie.length, 4), ...ehCie.slice(0, 9), 0x7f, ...ehCie.slice(10)]));
  });

  it('every hand-made case ended within the bound, as a result or a typed error', () => {
    assert.ok(cases > 40, `${cases} cases`);
    assert.equal(tally.ok + tally.typed, cases);
  });
});


