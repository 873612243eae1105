/**
 * Program-wide names for expressions: global and file-static variables and named types.
 * The unit being debugged is searched first (its statics shadow other units' globals, as in
 * C); then the background index, which knows every unit's top-level names.
 */
import { DW_AT, DW_TAG } from '../../symbols/dwarf/constants';
import type { CompileUnit } from '../../symbols/dwarf/cu';
import type { Dwarf } from '../../symbols/dwarf/dwarf';
import type { DebugInfoOffset } from '../../symbols/dwarf/offsets';
import { TypeReader, syntheticId, type CType } from '../../symbols/dwarf/types';
import { attrFlag, type Die } from '../../symbols/dwarf/unit';
import { IDENTITY, type Relocation } from '../../symbols/relocation';
import { TYPE_PREFIX } from '../../symbols/dwarf/scan';
import { originOf, unitFunctions } from '../../symbols/dwarf/scopes';
import { unitDeclarations, unitVariables, type VariableDie } from '../../symbols/dwarf/variables';
import type { SymbolIndex } from '../../symbols/index/client';
import type { SymbolLookup } from '../../symbols/symtab';


/** C's builtin types on the LP64 kernels we debug; `char` signedness is the arch's. */
function builtins(charSigned: boolean): Map<string, CType> {
  const m = new Map<string, CType>();
  const base = (name: string, size: number, encoding: 'signed' | 'unsigned' | 'signed_char' | 'unsigned_char' | 'bool' | 'float'): void => {
    m.set(name, { kind: 'base', id: syntheticId(), name, size, encoding });
  };
  base('char', 1, charSigned ? 'signed_char' : 'unsigned_char');
  base('signed char', 1, 'signed_char');
  base('unsigned char', 1, 'unsigned_char');
  base('short', 2, 'signed');
  base('unsigned short', 2, 'unsigned');
  base('int', 4, 'signed');
  base('unsigned int', 4, 'unsigned');
  base('long', 8, 'signed');
  base('unsigned long', 8, 'unsigned');
  base('long long', 8, 'signed');
  base('unsigned long long', 8, 'unsigned');
  base('_Bool', 1, 'bool');
  base('float', 4, 'float');
  base('double', 8, 'float');
  m.set('void', { kind: 'void', id: syntheticId() });
  return m;
}

/** A unit's variables by name (the first of a name wins), listed once per unit. */
function byName(cache: WeakMap<CompileUnit, Map<string, VariableDie>>, cu: CompileUnit, list: () => VariableDie[]): Map<string, VariableDie> {
  let m = cache.get(cu);
  if (!m) {
    m = new Map();
    for (const v of list()) if (!m.has(v.name)) m.set(v.name, v);
    cache.set(cu, m);
  }
  return m;
}

export class Program {
  readonly types: TypeReader;
  readonly builtin: Map<string, CType>;
  private readonly globalsByUnit = new WeakMap<CompileUnit, Map<string, VariableDie>>();
  private readonly declsByUnit = new WeakMap<CompileUnit, Map<string, VariableDie>>();
  private readonly typesByUnit = new WeakMap<CompileUnit, Map<string, DebugInfoOffset>>();
  private readonly completed = new Map<string, CType | null>();
  private readonly enumeratorsByUnit = new WeakMap<CompileUnit, Map<string, { type: CType; value: bigint }>>();

  constructor(
    readonly dwarf: Dwarf,
    readonly symbols: SymbolLookup | undefined,
    readonly index: SymbolIndex | undefined,
    charSigned = true,
    /**
     * Look names up by reading every unit, for an image too small to need an index (a
     * module has a few units; vmlinux has thousands and an index).
     */
    private readonly scanUnits = false,
    /** vmlinux's relocation (KASLR): DWARF's addresses are link-time ones. */
    readonly rel: Relocation = IDENTITY,
  ) {
    this.types = new TypeReader(dwarf);
    this.builtin = builtins(charSigned);
    this.types.completer = (kind, name) => this.completed.get(`${kind} ${name}`) ?? undefined;
  }

  /**
   * The other loaded images' programs, asked when this one has no such name: a module's
   * frame sees vmlinux's globals and types, and vmlinux's frames see the modules'.
   */
  peers: () => readonly Program[] = () => [];

  private units(): CompileUnit[] {
    if (!this.scanUnits) return [];
    return this.dwarf.unitHeaders().map((h) => this.dwarf.unit(h.offset));
  }

  unitGlobals(cu: CompileUnit): Map<string, VariableDie> {
    return byName(this.globalsByUnit, cu, () => unitVariables(this.dwarf, cu));
  }

  private unitTypes(cu: CompileUnit): Map<string, DebugInfoOffset> {
    let m = this.typesByUnit.get(cu);
    if (!m) {
      m = new Map();
      for (const c of cu.dies().children) {
        const prefix = TYPE_PREFIX.get(c.tag);
        if (prefix === undefined || attrFlag(c, DW_AT.declaration)) continue;
        const name = cu.string(c, DW_AT.name);
        if (name && !m.has(prefix + name)) m.set(prefix + name, c.offset);
      }
      this.typesByUnit.set(cu, m);
    }
    return m;
  }

  /** An enumeration constant (`SYSTEM_RUNNING`, `PIDTYPE_PID`) the unit's enum types define. */
  enumerator(name: string, cu: CompileUnit | undefined): { type: CType; value: bigint } | undefined {
    if (!cu) return undefined;
    let m = this.enumeratorsByUnit.get(cu);
    if (!m) {
      m = new Map();
      const visit = (d: Die): void => {
        for (const c of d.children) {
          if (c.tag === DW_TAG.enumeration_type) {
            const t = this.types.read(cu, c);
            if (t.kind === 'enum') for (const e of t.enumerators) if (!m?.has(e.name)) m?.set(e.name, { type: t, value: e.value });
          } else if (c.tag === DW_TAG.typedef || c.tag === DW_TAG.structure_type || c.tag === DW_TAG.union_type) {
            // Enums declared inside a struct are still file-scope names in C.
            if (c.hasChildren) visit(c);
          }
        }
      };
      visit(cu.dies());
      this.enumeratorsByUnit.set(cu, m);
    }
    return m.get(name);
  }

  /** An enumeration constant from this unit, else from any unit the index knows. */
  async findEnumerator(name: string, cu: CompileUnit | undefined): Promise<{ type: CType; value: bigint } | undefined> {
    const here = await this.findEnumeratorHere(name, cu);
    if (here) return here;
    for (const p of this.peers()) {
      const e = await p.findEnumeratorHere(name, undefined);
      if (e) return e;
    }
    return undefined;
  }

  private async findEnumeratorHere(name: string, cu: CompileUnit | undefined): Promise<{ type: CType; value: bigint } | undefined> {
    const local = this.enumerator(name, cu);
    if (local) return local;
    for (const u of this.units()) {
      const e = this.enumerator(name, u);
      if (e) return e;
    }
    const off = await this.index?.typeDie(`enumerator ${name}`).catch(() => undefined);
    const ucu = off !== undefined ? this.dwarf.unitContaining(off) : undefined;
    if (off === undefined || !ucu) return undefined;
    const t = this.types.at(ucu, off);
    const e = t.kind === 'enum' ? t.enumerators.find((x) => x.name === name) : undefined;
    return e ? { type: t, value: e.value } : undefined;
  }

  /**
   * A global or file-static variable: this unit's first, then any unit's. A name DWARF only
   * declares (`extern unsigned long init_stack[]`, placed by the linker script) takes its
   * address from the ELF symbol table and its type from the declaration, as gdb joins them.
   */
  async findGlobal(name: string, cu?: CompileUnit): Promise<VariableDie & { program: Program } | undefined> {
    for (const p of [this, ...this.peers()]) {
      const v = await p.findGlobalHere(name, p === this ? cu : undefined);
      if (v) return { ...v, program: p };
    }
    return undefined;
  }

  private async findGlobalHere(name: string, cu?: CompileUnit): Promise<VariableDie | undefined> {
    const local = cu && this.unitGlobals(cu).get(name);
    if (local) return local;
    for (const u of this.units()) {
      const v = this.unitGlobals(u).get(name);
      if (v) return v;
    }
    const dies = (await this.index?.variableDies(name).catch(() => [])) ?? [];
    for (const off of dies) {
      const ucu = this.dwarf.unitContaining(off);
      const v = ucu && this.unitGlobals(ucu).get(name);
      if (v) return v;
    }
    const address = this.dataSymbol(name);
    if (address === undefined) return undefined;
    const decl = (cu && this.unitDeclarations(cu).get(name)) ?? dies.map((off) => this.dwarf.unitContaining(off)).map((u) => u && this.unitDeclarations(u).get(name)).find((d) => d);
    return decl ? { ...decl, address } : undefined;
  }

  /** The address of a global symbol that is not a function, when exactly one is defined. */
  private dataSymbol(name: string): bigint | undefined {
    // Per-CPU symbols sit at 0 and up (`__per_cpu_start`, D 0): address 0 is a real answer.
    const syms = (this.symbols?.lookup(name) ?? []).filter((s) => s.type !== 'func');
    const addrs = new Set(syms.map((s) => s.value));
    return addrs.size === 1 ? syms[0].value : undefined;
  }

  private unitDeclarations(cu: CompileUnit): Map<string, VariableDie> {
    return byName(this.declsByUnit, cu, () => unitDeclarations(this.dwarf, cu));
  }

  /** `struct task_struct`, `u64`, `unsigned long` as a type, or undefined when no unit defines it. */
  async findType(key: string, cu?: CompileUnit): Promise<CType | undefined> {
    const b = this.builtin.get(key);
    if (b) return b;
    for (const p of [this, ...this.peers()]) {
      const t = await p.findTypeHere(key, p === this ? cu : undefined);
      if (t) return t;
    }
    return undefined;
  }

  private async findTypeHere(key: string, cu?: CompileUnit): Promise<CType | undefined> {
    const local = cu && this.unitTypes(cu).get(key);
    if (local !== undefined && cu) return this.types.at(cu, local);
    for (const u of this.units()) {
      const off = this.unitTypes(u).get(key);
      if (off !== undefined) return this.types.at(u, off);
    }
    const off = await this.index?.typeDie(key).catch(() => undefined);
    if (off === undefined) return undefined;
    const ucu = this.dwarf.unitContaining(off);
    return ucu ? this.types.at(ucu, off) : undefined;
  }

  /**
   * A type as the unit holding the code at `address` defines it, without the index: the
   * kernel layer reads `struct module` in a module-load hook, which must not wait for the
   * index (it may be held back while the guest boots).
   */
  typeNear(key: string, address: bigint): CType | undefined {
    try {
      const link = this.rel.toLink(address);
      const cu = link === undefined ? undefined : this.dwarf.unitForAddress(link);
      const off = cu && this.unitTypes(cu).get(key);
      return cu && off !== undefined ? this.types.at(cu, off) : undefined;
    } catch {
      return undefined;
    }
  }

  async isTypedef(name: string, cu?: CompileUnit): Promise<boolean> {
    for (const p of [this, ...this.peers()]) if (await p.isTypedefHere(name, p === this ? cu : undefined)) return true;
    return false;
  }

  private async isTypedefHere(name: string, cu?: CompileUnit): Promise<boolean> {
    if (cu && this.unitTypes(cu).has(name)) return true;
    if (this.units().some((u) => this.unitTypes(u).has(name))) return true;
    return (await this.index?.typeDie(name).catch(() => undefined)) !== undefined;
  }

  /**
   * Find the definition of a struct a unit only declares, so the synchronous formatter can
   * expand it. Looked up once per name.
   */
  async prepare(t: CType, cu?: CompileUnit): Promise<void> {
    if ((t.kind !== 'struct' && t.kind !== 'union' && t.kind !== 'enum') || !t.declaration || !t.name) return;
    const key = `${t.kind} ${t.name}`;
    if (this.completed.has(key)) return;
    const full = await this.findType(key, cu);
    this.completed.set(key, full && !(full.kind === t.kind && full.declaration) ? full : null);
  }

  /** The C type of the function whose code starts at addr (`int (void *)` for kernel_init). */
  functionTypeAt(addr: bigint): CType | undefined {
    for (const p of [this, ...this.peers()]) {
      const t = p.functionTypeHere(addr);
      if (t) return t;
    }
    return undefined;
  }

  private functionTypeHere(runtime: bigint): CType | undefined {
    try {
      const addr = this.rel.toLink(runtime);
      const cu = addr === undefined ? undefined : this.dwarf.unitForAddress(addr);
      const fn = cu && unitFunctions(cu).find((f) => f.low === addr);
      if (!cu || !fn) return undefined;
      const o = originOf(this.dwarf, cu, fn.die);
      return this.types.functionType(o.cu, o.die);
    } catch {
      return undefined;
    }
  }

  /** `kernel_init` or `init_task+0x10` for an address inside a symbol. */
  symbolize(addr: bigint): string | undefined {
    const loc = this.symbols?.locate(addr) ?? this.symbols?.locateData(addr);
    if (!loc) return undefined;
    return loc.offset === 0n ? loc.symbol.name : `${loc.symbol.name}+${loc.offset}`;
  }
}
