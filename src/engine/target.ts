/**
 * The debugged machine as the engine sees it: vCPUs (threads), registers described by
 * target.xml, and memory, with reads cached until the next resume.
 */
import { ArchInfo } from '../arch';
import { RspClient, RspTarget, RspClientOptions } from '../rsp/client';
import * as P from '../rsp/packets';
import { StopReply } from '../rsp/stop';
import { parseTargetDescription, RegisterInfo, splitRegisterBlock } from '../rsp/targetxml';
import { errors } from '../util/errors';
import { MemoryCache } from './memcache';
import { RamView, type GuestRam } from './ramview';

export interface RegisterValue {
  info: RegisterInfo;
  bytes: Buffer;
}

export class KernelTarget {
  /** Registers per thread, valid until the guest runs again. */
  private regCache = new Map<number, Map<number, Buffer>>();
  private dwarfCache = new Map<number, Map<number, bigint>>();
  private selectedG?: number;
  private threadCache?: number[];
  /** Memory per vCPU for this stop: user-half addresses differ between address spaces. */
  private memCaches = new Map<number, MemoryCache>();
  /** Whether the stub's software breakpoints are bytes in guest memory (KVM: true, TCG: false); undefined when unknown (attach). */
  breakpointsInMemory: boolean | undefined;

  private constructor(
    readonly rsp: RspClient,
    readonly arch: ArchInfo,
    readonly stub: P.StubFeatures,
    readonly registers: RegisterInfo[],
    readonly vcont: boolean,
  ) {
    // Every resume goes through the client, so no cache can outlive the stop it was read in.
    rsp.on('resumed', () => this.invalidate());
    // Every stop is followed by a read of the stopped vCPU's registers: ask for them with the
    // stop's ack, unless the stop is another vCPU's than the one `g` reads (Hg).
    rsp.prefetchOnStop = (stop) => {
      // QEMU makes the vCPU that stopped the one `g`, `p` and `m` address (gdb_set_stop_cpu),
      // whatever Hg chose before: a read meant for the thread selected earlier would get
      // another vCPU's registers and page tables.
      if (stop.kind === 'signal' && stop.thread !== undefined) this.selectedG = stop.thread;
      return stop.kind === 'signal' && this.selectedG !== undefined && (stop.thread ?? this.selectedG) === this.selectedG ? 'g' : undefined;
    };
  }

  static async connect(where: RspTarget, arch: ArchInfo, opts: RspClientOptions = {}): Promise<KernelTarget> {
    const rsp = await RspClient.connect(where, opts);
    try {
      const stub = await P.querySupported(rsp);
      if (stub.features.get('qXfer:features:read') !== true) throw new Error('the gdbstub does not offer target descriptions (qXfer:features:read)');
      const desc = await parseTargetDescription('target.xml', (annex) => P.readFeatureDocument(rsp, annex));
      // `pc` names the PC on arm64 and riscv64 alike, so the description's own arch decides first.
      if (desc.architecture !== undefined && desc.architecture !== arch.tdescArchitecture)
        throw new Error(`the gdbstub's guest is '${desc.architecture}', not ${arch.name} ('${arch.tdescArchitecture}'): set "arch" to match the QEMU it runs in`);
      if (!desc.registers.some((r) => r.name === arch.pcRegister))
        throw new Error(`the gdbstub describes no '${arch.pcRegister}' register: is it a ${arch.name} guest? (architecture '${desc.architecture ?? 'unknown'}')`);
      const actions = await P.queryVCont(rsp).catch(() => new Set<string>());
      return new KernelTarget(rsp, arch, stub, desc.registers, actions.has('c') && actions.has('s'));
    } catch (e) {
      rsp.close();
      throw e;
    }
  }

  /** The largest `m` read the stub accepts: QEMU refuses more than PacketSize/2 bytes. */
  get maxReadChunk(): number {
    return Math.floor(this.stub.packetSize / 2);
  }

  private byName?: Map<string, RegisterInfo>;

  register(name: string): RegisterInfo | undefined {
    this.byName ??= new Map(this.registers.map((r) => [r.name, r]));
    return this.byName.get(name);
  }

  private regnumOf(name: string): number | undefined {
    return this.register(name)?.regnum;
  }

  /** Guest RAM read without the gdbstub (a launch's memory backend), while attached. */
  private ramView?: RamView;

  /** Read guest RAM from `ram` from now on wherever the vCPU's page tables lead there. */
  useRam(ram: GuestRam): void {
    this.ramView = new RamView(ram, this.arch.name, (tid, n) => (this.register(n) ? this.readRegister(tid, n).catch(() => undefined) : Promise.resolve(undefined)));
    this.memCaches.clear();
  }

  get directRam(): GuestRam | undefined {
    return this.ramView?.ram;
  }

  /** Forget everything read during the last stop. */
  invalidate(): void {
    this.ramView?.clear();
    this.regCache.clear();
    this.dwarfCache.clear();
    this.threadCache = undefined;
    this.memCaches.clear();
  }

  /**
   * Thread ids that are no vCPU (a sleeping task shown as a thread) and the vCPU whose view of
   * memory they read through; undefined for a vCPU's own id. Their registers are not a
   * vCPU's: the engine gives their frames the registers the task's switch saved.
   */
  aliasThread?: (tid: number) => number | undefined;

  /**
   * Kernel memory a vCPU in user mode can't see through its own page tables (PTI, KPTI), read
   * through the kernel's (engine/kview.ts); undefined when that fails too.
   */
  kernelFallback?: (tid: number, addr: bigint, length: number) => Promise<Buffer | undefined>;

  /** A virtual read, or for a kernel address its own tables don't map, the kernel's view of it. */
  private async readVirtual(tid: number | undefined, addr: bigint, length: number): Promise<Buffer> {
    try {
      return await P.readMemory(this.rsp, addr, length, this.maxReadChunk);
    } catch (e) {
      const other = tid !== undefined || this.selectedG !== undefined ? await this.kernelFallback?.(tid ?? (this.selectedG as number), addr, length) : undefined;
      if (other) return other;
      throw e;
    }
  }

  private memoryThread(tid: number): number {
    return this.aliasThread?.(tid) ?? tid;
  }

  /** Memory as `tid` sees it, cached in blocks until the guest runs again. */
  memory(tid: number): MemoryCache {
    tid = this.memoryThread(tid);
    let c = this.memCaches.get(tid);
    if (!c) {
      const vcpu = tid;
      const ram = this.ramView;
      c = new MemoryCache(
        async (addr, length) => {
          await this.select(vcpu);
          return this.readVirtual(vcpu, addr, length);
        },
        this.maxReadChunk,
        async (ranges) => {
          await this.select(vcpu);
          return P.readMemoryMany(this.rsp, ranges, this.maxReadChunk);
        },
        ram ? (addr, length) => ram.read(vcpu, addr, length) : undefined,
      );
      this.memCaches.set(tid, c);
    }
    return c;
  }

  /** Counts memory and register writes, so work derived from them at a stop (a planned step) can tell it is stale. */
  writes = 0;

  async writeMemory(addr: bigint, data: Buffer, tid: number): Promise<void> {
    tid = this.memoryThread(tid);
    this.writes++;
    await this.select(tid);
    await P.writeMemory(this.rsp, addr, data, this.stub.packetSize);
    for (const c of this.memCaches.values()) c.invalidate(addr, data.length);
    // It may have been a page table.
    this.ramView?.clear();
  }

  /** Write guest-physical memory. Any virtual view of it may have changed, so every cache goes. */
  async writePhysicalMemory(addr: bigint, data: Buffer): Promise<void> {
    this.writes++;
    await P.withPhysicalMemory(this.rsp, () => P.writeMemory(this.rsp, addr, data, this.stub.packetSize));
    for (const c of this.memCaches.values()) c.clear();
    this.ramView?.clear();
  }

  /** Write one register of `tid` (P packet) and drop the cached register block. */
  async writeRegister(tid: number, name: string, value: bigint): Promise<void> {
    const info = this.register(name);
    if (!info) throw errors.unsupported(`The target has no register named '${name}'.`);
    await this.select(tid);
    const bytes = leBytes(BigInt.asUintN(info.bitsize, value), Math.ceil(info.bitsize / 8));
    this.writes++;
    await P.writeRegister(this.rsp, info.regnum, bytes);
    this.regCache.delete(tid);
    this.dwarfCache.delete(tid);
    this.ramView?.clear();
  }

  /** Where a problem the user should hear of, but that stops nothing, goes (the adapter's log). */
  warn?: (message: string) => void;
  /** Off once the stub refused a PC write: NOPs run in the guest from then on. */
  private nopSkips = true;

  /**
   * Step `tid` over the NOP from `from` to `to` by moving its PC: a NOP's whole effect, with no
   * trip through the stub's resume and stop (the ftrace site at each function's entry, where
   * a function breakpoint stops, is one). The cached registers change now; the `P` write goes
   * out at the end of this turn, behind the messages of the stop but ahead of any other packet,
   * so nothing reads the old PC. False, and nothing done, when the step must run in the guest:
   * the arch has no trace flag to check, the guest set it (it would trap after the NOP), the
   * registers aren't read, `g` reads another vCPU, or the PC isn't `from`.
   */
  skipNop(tid: number, from: bigint, to: bigint): boolean {
    const flag = this.arch.traceFlag;
    const regs = this.regCache.get(tid);
    const pcInfo = this.register(this.arch.pcRegister);
    const flagsInfo = flag && this.register(flag.register);
    if (!this.nopSkips || !flag || !regs || !pcInfo || !flagsInfo || this.selectedG !== tid) return false;
    const flags = regs.get(flagsInfo.regnum);
    const pc = regs.get(pcInfo.regnum);
    if (!flags?.length || !pc?.length || (leToBigInt(flags) >> BigInt(flag.bit)) & 1n || leToBigInt(pc) !== from) return false;
    const bytes = leBytes(to, pc.length);
    regs.set(pcInfo.regnum, bytes);
    this.dwarfCache.delete(tid);
    this.writes++;
    this.rsp.holdWritesThisTurn();
    P.writeRegister(this.rsp, pcInfo.regnum, bytes).catch((e: Error) => {
      // The guest is still before the NOP: forget what was shown, so the next read says so.
      this.nopSkips = false;
      this.invalidate();
      this.warn?.(`Stepping over a NOP by moving the PC failed (${e.message}); NOPs are stepped in the guest from now on.`);
    });
    return true;
  }

  async threads(): Promise<number[]> {
    this.threadCache ??= await P.listThreads(this.rsp);
    return this.threadCache;
  }

  private async select(tid: number): Promise<void> {
    if (this.selectedG === tid) return;
    const known = await this.threads();
    if (!known.includes(tid)) throw errors.unknownThread(tid);
    await P.selectThread(this.rsp, 'g', tid);
    this.selectedG = tid;
  }

  /** Every register of one vCPU: the `g` block, then `p` for those past its end. */
  async readRegisters(tid: number): Promise<RegisterValue[]> {
    const values = await this.registerBlock(tid);
    const out: RegisterValue[] = [];
    for (const info of this.registers) {
      let bytes = values.get(info.regnum);
      if (!bytes) {
        await this.select(tid);
        bytes = await P.readRegister(this.rsp, info.regnum).catch(() => Buffer.alloc(0));
        values.set(info.regnum, bytes);
      }
      if (bytes.length) out.push({ info, bytes });
    }
    return out;
  }

  /**
   * The registers of the `g` block by name. That is every register on x86; on arm64 and riscv64
   * only the core ones, the FP/SIMD and system registers costing a `p` packet each, which the
   * unwinder and the stepper, reading at every stop, do without.
   */
  async readCoreRegisters(tid: number): Promise<Map<string, bigint>> {
    const values = await this.registerBlock(tid);
    const out = new Map<string, bigint>();
    for (const info of this.registers) {
      const bytes = values.get(info.regnum);
      if (bytes?.length) out.set(info.name, leToBigInt(bytes));
    }
    return out;
  }

  /**
   * The core registers by DWARF number, for CFI and the expression evaluator; cached for the
   * stop, since a step asks for them at every landing. A copy, so callers may change it.
   */
  async readDwarfRegisters(tid: number): Promise<Map<number, bigint>> {
    let regs = this.dwarfCache.get(tid);
    if (!regs) {
      const block = await this.registerBlock(tid);
      regs = new Map<number, bigint>();
      for (const [i, name] of this.arch.dwarfRegisters.entries()) {
        const bytes = name ? block.get(this.regnumOf(name) ?? -1) : undefined;
        if (bytes?.length) regs.set(i, leToBigInt(bytes));
      }
      this.dwarfCache.set(tid, regs);
    }
    return new Map(regs);
  }

  async readRegister(tid: number, name: string): Promise<bigint> {
    const info = this.register(name);
    if (!info) throw errors.unsupported(`The target has no register named '${name}'.`);
    const values = await this.registerBlock(tid);
    let bytes = values.get(info.regnum);
    if (!bytes) {
      // The block may have come from the cache, with another vCPU selected since.
      await this.select(tid);
      bytes = await P.readRegister(this.rsp, info.regnum);
      values.set(info.regnum, bytes);
    }
    return leToBigInt(bytes);
  }

  async pc(tid: number): Promise<bigint> {
    return this.readRegister(tid, this.arch.pcRegister);
  }

  private async registerBlock(tid: number): Promise<Map<number, Buffer>> {
    if (this.aliasThread?.(tid) !== undefined) throw errors.unsupported(`thread ${tid} is a task that is not running on a CPU: it has only the registers its switch saved, which its frames show`);
    let values = this.regCache.get(tid);
    if (!values) {
      await this.select(tid);
      values = splitRegisterBlock(this.registers, await P.readRegisterBlock(this.rsp));
      this.regCache.set(tid, values);
    }
    return values;
  }

  /** Read guest virtual memory as `tid` sees it (QEMU uses that vCPU's page tables). */
  async readMemory(addr: bigint, length: number, tid?: number): Promise<Buffer> {
    const vcpu = tid !== undefined ? this.memoryThread(tid) : this.selectedG;
    const fast = vcpu !== undefined ? await this.ramView?.read(vcpu, addr, length) : undefined;
    if (fast) return fast;
    if (tid !== undefined) await this.select(this.memoryThread(tid));
    return this.readVirtual(tid === undefined ? undefined : this.memoryThread(tid), addr, length);
  }

  /**
   * Read as much as is readable from the start of a range; stop at the first unreadable chunk.
   * `physical` reads guest-physical addresses (QEMU's PhyMemMode) instead of virtual ones.
   */
  async readMemoryPartial(addr: bigint, length: number, tid?: number, physical = false): Promise<Buffer> {
    if (tid !== undefined) tid = this.memoryThread(tid);
    const vcpu = tid ?? this.selectedG;
    const fast = physical ? this.ramView?.ram.read(addr, length) : vcpu !== undefined ? await this.ramView?.read(vcpu, addr, length) : undefined;
    if (fast) return fast;
    if (physical) return P.withPhysicalMemory(this.rsp, () => this.readMemoryPartial(addr, length, undefined, false));
    if (tid !== undefined) await this.select(tid);
    return P.readMemoryPrefix(this.rsp, addr, length, this.maxReadChunk);
  }

  async haltReason(): Promise<StopReply> {
    return P.queryHaltReason(this.rsp);
  }

  close(): void {
    this.rsp.close();
  }
}

function leBytes(value: bigint, size: number): Buffer {
  const bytes = Buffer.alloc(size);
  let v = value;
  for (let i = 0; i < size; i++) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return bytes;
}

export function leToBigInt(bytes: Buffer): bigint {
  // Most registers are 8 bytes: one native read instead of eight BigInt shifts.
  if (bytes.length === 8) return bytes.readBigUInt64LE(0);
  if (bytes.length === 4) return BigInt(bytes.readUInt32LE(0));
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}
