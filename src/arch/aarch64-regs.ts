/**
 * arm64 register groups and bit layouts, from the Arm ARM (DDI 0487, chapter D17: PSTATE/SPSR,
 * SCTLR_EL1, TCR_EL1, ESR_EL1, TTBRn_EL1, MDSCR_EL1, CPACR_EL1, FPSR/FPCR).
 *
 * Names are QEMU 7.2's: PSTATE is `cpsr` (org.gnu.gdb.aarch64.core), and the system registers
 * of org.qemu.gdb.arm.sys.regs carry QEMU's internal names, which for registers shared with
 * AArch32 are the AArch32 ones: SCTLR_EL1 is `SCTLR`, VBAR_EL1 `VBAR`, CPACR_EL1 `CPACR`.
 * Both spellings are listed so a QEMU that renames them keeps its decoders. QEMU lists no
 * register it cannot read raw, so CurrentEL, DAIF and NZCV are absent: cpsr's M field has the EL.
 */
import type { BitField, FieldLayout, RegisterViewSpec } from './regview';

const bit = (name: string, n: number, description: string): BitField => ({ name, lo: n, hi: n, description });
const fixed = (fields: BitField[]): FieldLayout => () => fields;

const MODES64: Record<number, string> = {
  0: 'EL0t: EL0',
  4: 'EL1t: EL1 on SP_EL0',
  5: 'EL1h: EL1 on SP_EL1',
  8: 'EL2t: EL2 on SP_EL0',
  9: 'EL2h: EL2 on SP_EL2',
  12: 'EL3t: EL3 on SP_EL0',
  13: 'EL3h: EL3 on SP_EL3',
};

const PSTATE64: BitField[] = [
  bit('N', 31, 'Negative'),
  bit('Z', 30, 'Zero'),
  bit('C', 29, 'Carry'),
  bit('V', 28, 'Overflow'),
  bit('TCO', 25, 'Tag check override (MTE)'),
  bit('DIT', 24, 'Data-independent timing'),
  bit('UAO', 23, 'User access override: unprivileged loads/stores act as privileged'),
  bit('PAN', 22, 'Privileged access never: EL1 faults on user memory (uaccess disabled)'),
  bit('SS', 21, 'Software step: the next instruction takes a step exception'),
  bit('IL', 20, 'Illegal execution state'),
  bit('ALLINT', 13, 'All interrupts masked (FEAT_NMI)'),
  bit('SSBS', 12, 'Speculative store bypass safe'),
  { name: 'BTYPE', lo: 10, hi: 11, description: 'Branch type of the last indirect branch (BTI)', show: 'number' },
  bit('D', 9, 'Debug exceptions masked'),
  bit('A', 8, 'SError interrupts masked'),
  bit('I', 7, 'IRQs masked'),
  bit('F', 6, 'FIQs masked'),
  { name: 'nRW', lo: 4, hi: 4, description: 'Execution state: 0 AArch64, 1 AArch32', show: { 0: 'AArch64', 1: 'AArch32' } },
  { name: 'M', lo: 0, hi: 3, description: 'Exception level and stack pointer: t uses SP_EL0, h the level\'s own SP', show: MODES64 },
];

/** An SPSR taken from AArch32 (a compat task) has the AArch32 CPSR layout. */
const PSTATE32: BitField[] = [
  bit('N', 31, 'Negative'),
  bit('Z', 30, 'Zero'),
  bit('C', 29, 'Carry'),
  bit('V', 28, 'Overflow'),
  bit('Q', 27, 'Saturation'),
  bit('SS', 21, 'Software step'),
  bit('IL', 20, 'Illegal execution state'),
  { name: 'GE', lo: 16, hi: 19, description: 'SIMD greater-than-or-equal flags', show: 'number' },
  bit('E', 9, 'Big-endian data'),
  bit('A', 8, 'SError interrupts masked'),
  bit('I', 7, 'IRQs masked'),
  bit('F', 6, 'FIQs masked'),
  bit('T', 5, 'Thumb state'),
  {
    name: 'M',
    lo: 0,
    hi: 4,
    description: 'AArch32 mode (bit 4 set: AArch32 state)',
    show: { 0x10: 'usr', 0x11: 'fiq', 0x12: 'irq', 0x13: 'svc', 0x16: 'mon', 0x17: 'abt', 0x1a: 'hyp', 0x1b: 'und', 0x1f: 'sys' },
  },
];

/** PSTATE as QEMU's cpsr (and SPSR_ELx) hold it: the layout follows nRW. */
const pstate: FieldLayout = (value) => (((value >> 4n) & 1n) === 1n ? PSTATE32 : PSTATE64);

const CURRENT_EL: BitField[] = [{ name: 'EL', lo: 2, hi: 3, description: 'Current exception level', show: { 0: 'EL0', 1: 'EL1', 2: 'EL2', 3: 'EL3' } }];

const SCTLR: BitField[] = [
  bit('M', 0, 'MMU enabled for EL1&0 stage 1 translation'),
  bit('A', 1, 'Alignment checking'),
  bit('C', 2, 'Data accesses cacheable'),
  bit('SA', 3, 'SP alignment check at EL1'),
  bit('SA0', 4, 'SP alignment check at EL0'),
  bit('CP15BEN', 5, 'AArch32 EL0 CP15 barriers enabled'),
  bit('nAA', 6, 'Unaligned LDAPR/STLR and friends do not fault'),
  bit('ITD', 7, 'AArch32 EL0 IT instruction disabled'),
  bit('SED', 8, 'AArch32 EL0 SETEND disabled'),
  bit('UMA', 9, 'EL0 may access DAIF'),
  bit('EnRCTX', 10, 'EL0 may use the prediction restriction instructions'),
  bit('EOS', 11, 'Exception return is context synchronizing'),
  bit('I', 12, 'Instruction accesses cacheable'),
  bit('EnDB', 13, 'Pointer authentication with the DB key'),
  bit('DZE', 14, 'EL0 may use DC ZVA'),
  bit('UCT', 15, 'EL0 may read CTR_EL0'),
  bit('nTWI', 16, 'WFI at EL0 is not trapped'),
  bit('nTWE', 18, 'WFE at EL0 is not trapped'),
  bit('WXN', 19, 'Writable memory is never executable'),
  bit('TSCXT', 20, 'EL0 access to SCXTNUM_EL0 trapped'),
  bit('IESB', 21, 'Implicit error synchronization barrier on exceptions'),
  bit('EIS', 22, 'Exception entry is context synchronizing'),
  bit('SPAN', 23, 'PSTATE.PAN is left alone on exception entry (0: set on entry)'),
  bit('E0E', 24, 'EL0 data accesses big-endian'),
  bit('EE', 25, 'EL1 data accesses and translation walks big-endian'),
  bit('UCI', 26, 'EL0 may use cache maintenance instructions'),
  bit('EnDA', 27, 'Pointer authentication with the DA key'),
  bit('nTLSMD', 28, 'AArch32 LDM/STM to device memory not trapped'),
  bit('LSMAOE', 29, 'AArch32 LDM/STM atomicity and ordering'),
  bit('EnIB', 30, 'Pointer authentication with the IB key'),
  bit('EnIA', 31, 'Pointer authentication with the IA key (return addresses in the kernel)'),
  bit('BT0', 35, 'BTI guards pages at EL0'),
  bit('BT1', 36, 'BTI guards pages at EL1'),
  bit('ITFSB', 37, 'Tag check faults synchronized on exception entry'),
  { name: 'TCF0', lo: 38, hi: 39, description: 'MTE tag check faults at EL0', show: { 0: 'ignored', 1: 'synchronous', 2: 'asynchronous', 3: 'asymmetric' } },
  { name: 'TCF', lo: 40, hi: 41, description: 'MTE tag check faults at EL1', show: { 0: 'ignored', 1: 'synchronous', 2: 'asynchronous', 3: 'asymmetric' } },
  bit('ATA0', 42, 'EL0 may access allocation tags'),
  bit('ATA', 43, 'EL1 may access allocation tags'),
  bit('DSSBS', 44, 'PSTATE.SSBS on exception entry'),
  bit('EPAN', 57, 'PAN also covers execute-only user memory'),
];

const CACHE: Record<number, string> = { 0: 'non-cacheable', 1: 'write-back, write-allocate', 2: 'write-through', 3: 'write-back, no write-allocate' };
const SHARE: Record<number, string> = { 0: 'non-shareable', 2: 'outer shareable', 3: 'inner shareable' };

/** TnSZ as the size it gives the region. */
const vaSize = (name: string, lo: number, value: bigint, half: string): BitField => {
  const sz = Number((value >> BigInt(lo)) & 0x3fn);
  return { name, lo, hi: lo + 5, description: `Size offset of the ${half} region: 2^(64-${name}) bytes of VA`, show: { [sz]: `${64 - sz}-bit VA` } };
};

const tcr: FieldLayout = (value): BitField[] => [
  vaSize('T0SZ', 0, value, 'TTBR0 (user)'),
  bit('EPD0', 7, 'TTBR0 walks disabled (TLB miss faults)'),
  { name: 'IRGN0', lo: 8, hi: 9, description: 'Inner cacheability of TTBR0 walks', show: CACHE },
  { name: 'ORGN0', lo: 10, hi: 11, description: 'Outer cacheability of TTBR0 walks', show: CACHE },
  { name: 'SH0', lo: 12, hi: 13, description: 'Shareability of TTBR0 walks', show: SHARE },
  { name: 'TG0', lo: 14, hi: 15, description: 'TTBR0 translation granule', show: { 0: '4KB', 1: '64KB', 2: '16KB' } },
  vaSize('T1SZ', 16, value, 'TTBR1 (kernel)'),
  { name: 'A1', lo: 22, hi: 22, description: 'Which TTBR holds the ASID', show: { 0: 'TTBR0', 1: 'TTBR1' } },
  bit('EPD1', 23, 'TTBR1 walks disabled (TLB miss faults)'),
  { name: 'IRGN1', lo: 24, hi: 25, description: 'Inner cacheability of TTBR1 walks', show: CACHE },
  { name: 'ORGN1', lo: 26, hi: 27, description: 'Outer cacheability of TTBR1 walks', show: CACHE },
  { name: 'SH1', lo: 28, hi: 29, description: 'Shareability of TTBR1 walks', show: SHARE },
  // TG1 encodes the granules differently from TG0.
  { name: 'TG1', lo: 30, hi: 31, description: 'TTBR1 translation granule', show: { 1: '16KB', 2: '4KB', 3: '64KB' } },
  {
    name: 'IPS',
    lo: 32,
    hi: 34,
    description: 'Intermediate physical address size',
    show: { 0: '32 bits, 4GB', 1: '36 bits, 64GB', 2: '40 bits, 1TB', 3: '42 bits, 4TB', 4: '44 bits, 16TB', 5: '48 bits, 256TB', 6: '52 bits, 4PB' },
  },
  { name: 'AS', lo: 36, hi: 36, description: 'ASID size', show: { 0: '8 bits', 1: '16 bits' } },
  bit('TBI0', 37, 'Top byte ignored in TTBR0 addresses (tagged user pointers)'),
  bit('TBI1', 38, 'Top byte ignored in TTBR1 addresses'),
  bit('HA', 39, 'Hardware access flag update'),
  bit('HD', 40, 'Hardware dirty state management'),
  bit('HPD0', 41, 'Hierarchical permissions disabled for TTBR0'),
  bit('HPD1', 42, 'Hierarchical permissions disabled for TTBR1'),
  bit('TBID0', 51, 'TBI0 applies to data accesses only'),
  bit('TBID1', 52, 'TBI1 applies to data accesses only'),
  bit('NFD0', 53, 'Non-fault SVE accesses to TTBR0 fault'),
  bit('NFD1', 54, 'Non-fault SVE accesses to TTBR1 fault'),
  bit('E0PD0', 55, 'EL0 accesses to TTBR0 fault (kernel page-table isolation)'),
  bit('E0PD1', 56, 'EL0 accesses to TTBR1 fault (kernel page-table isolation)'),
  bit('TCMA0', 57, 'MTE: tag 0 accesses unchecked in TTBR0'),
  bit('TCMA1', 58, 'MTE: tag 0b1111 accesses unchecked in TTBR1'),
  bit('DS', 59, '52-bit addresses with 4KB/16KB granules'),
];

/** ESR_ELx.EC, D17.2.37. */
export const EXCEPTION_CLASSES: Readonly<Record<number, string>> = {
  0x00: 'Unknown reason',
  0x01: 'Trapped WFI/WFE',
  0x03: 'Trapped AArch32 MCR/MRC (coproc 15)',
  0x04: 'Trapped AArch32 MCRR/MRRC (coproc 15)',
  0x05: 'Trapped AArch32 MCR/MRC (coproc 14)',
  0x06: 'Trapped AArch32 LDC/STC',
  0x07: 'SVE/SIMD/FP access trapped',
  0x09: 'Trapped pointer authentication instruction',
  0x0a: 'Trapped LD64B/ST64B',
  0x0c: 'Trapped AArch32 MRRC (coproc 14)',
  0x0d: 'Branch target exception (BTI)',
  0x0e: 'Illegal execution state',
  0x11: 'SVC in AArch32',
  0x15: 'SVC in AArch64 (system call)',
  0x16: 'HVC in AArch64',
  0x17: 'SMC in AArch64',
  0x18: 'Trapped MSR/MRS/system instruction',
  0x19: 'SVE access trapped',
  0x1c: 'Pointer authentication failure',
  0x1d: 'SME access trapped',
  0x20: 'Instruction abort from a lower EL',
  0x21: 'Instruction abort at the same EL',
  0x22: 'PC alignment fault',
  0x24: 'Data abort from a lower EL',
  0x25: 'Data abort at the same EL',
  0x26: 'SP alignment fault',
  0x27: 'Memory operation exception (MOPS)',
  0x28: 'Trapped AArch32 floating-point exception',
  0x2c: 'Trapped AArch64 floating-point exception',
  0x2f: 'SError interrupt',
  0x30: 'Breakpoint from a lower EL',
  0x31: 'Breakpoint at the same EL',
  0x32: 'Software step from a lower EL',
  0x33: 'Software step at the same EL',
  0x34: 'Watchpoint from a lower EL',
  0x35: 'Watchpoint at the same EL',
  0x38: 'AArch32 BKPT',
  0x3c: 'BRK instruction',
};

/** DFSC/IFSC: the fault status of an abort. */
function faultStatus(): Record<number, string> {
  const out: Record<number, string> = {};
  const kinds: Array<[number, string]> = [
    [0x00, 'address size fault'],
    [0x04, 'translation fault'],
    [0x08, 'access flag fault'],
    [0x0c, 'permission fault'],
  ];
  for (const [base, kind] of kinds) for (let level = 0; level < 4; level++) out[base + level] = `${kind}, level ${level}`;
  Object.assign(out, {
    0x10: 'synchronous external abort',
    0x11: 'synchronous tag check fault',
    0x21: 'alignment fault',
    0x30: 'TLB conflict abort',
    0x31: 'unsupported atomic hardware update',
  });
  return out;
}
const FAULT_STATUS = faultStatus();

const esr: FieldLayout = (value): BitField[] => {
  const ec = Number((value >> 26n) & 0x3fn);
  const common: BitField[] = [
    { name: 'EC', lo: 26, hi: 31, description: 'Exception class: why the exception was taken', show: EXCEPTION_CLASSES },
    { name: 'IL', lo: 25, hi: 25, description: 'Length of the trapped instruction', show: { 0: '16-bit', 1: '32-bit' } },
  ];
  if (ec === 0x24 || ec === 0x25) {
    return [
      ...common,
      bit('ISV', 24, 'The syndrome (SAS, SSE, SRT, SF, AR) is valid'),
      { name: 'SAS', lo: 22, hi: 23, description: 'Access size', show: { 0: 'byte', 1: 'halfword', 2: 'word', 3: 'doubleword' } },
      bit('SSE', 21, 'Sign-extended load'),
      { name: 'SRT', lo: 16, hi: 20, description: 'Register transferred', show: 'number' },
      bit('SF', 15, '64-bit register'),
      bit('AR', 14, 'Acquire/release'),
      bit('FnV', 10, 'FAR is not valid'),
      bit('EA', 9, 'External abort'),
      bit('CM', 8, 'Cache maintenance instruction'),
      bit('S1PTW', 7, 'Fault on a stage 2 walk for stage 1'),
      { name: 'WnR', lo: 6, hi: 6, description: 'Write, not read', show: { 0: 'read', 1: 'write' } },
      { name: 'DFSC', lo: 0, hi: 5, description: 'Data fault status', show: FAULT_STATUS },
    ];
  }
  if (ec === 0x20 || ec === 0x21) {
    return [
      ...common,
      bit('FnV', 10, 'FAR is not valid'),
      bit('EA', 9, 'External abort'),
      bit('S1PTW', 7, 'Fault on a stage 2 walk for stage 1'),
      { name: 'IFSC', lo: 0, hi: 5, description: 'Instruction fault status', show: FAULT_STATUS },
    ];
  }
  if (ec === 0x15 || ec === 0x16 || ec === 0x17 || ec === 0x3c) return [...common, { name: 'imm16', lo: 0, hi: 15, description: 'The instruction\'s immediate', show: 'number' }];
  return [...common, { name: 'ISS', lo: 0, hi: 24, description: 'Instruction-specific syndrome', show: 'number' }];
};

const TTBR: BitField[] = [
  { name: 'ASID', lo: 48, hi: 63, description: 'Address space identifier (when TCR_EL1.A1 selects this TTBR)', show: 'number' },
  { name: 'BADDR', lo: 1, hi: 47, description: 'Physical address of the translation table', show: 'address' },
  bit('CnP', 0, 'Common not private'),
];

const MDSCR: BitField[] = [
  bit('SS', 0, 'Software step enabled'),
  bit('TDCC', 12, 'EL0 access to the debug comms channel trapped'),
  bit('KDE', 13, 'Debug exceptions enabled at the kernel\'s EL'),
  bit('MDE', 15, 'Breakpoint and watchpoint exceptions enabled'),
];

const CPACR: BitField[] = [
  { name: 'ZEN', lo: 16, hi: 17, description: 'SVE trapping', show: { 0: 'trapped at EL0 and EL1', 1: 'trapped at EL0', 2: 'trapped at EL0 and EL1', 3: 'not trapped' } },
  { name: 'FPEN', lo: 20, hi: 21, description: 'FP/SIMD trapping', show: { 0: 'trapped at EL0 and EL1', 1: 'trapped at EL0', 2: 'trapped at EL0 and EL1', 3: 'not trapped' } },
  { name: 'SMEN', lo: 24, hi: 25, description: 'SME trapping', show: { 0: 'trapped at EL0 and EL1', 1: 'trapped at EL0', 2: 'trapped at EL0 and EL1', 3: 'not trapped' } },
  bit('TTA', 28, 'Trace register access trapped'),
];

const FPSR: BitField[] = [
  bit('IOC', 0, 'Invalid operation (cumulative)'),
  bit('DZC', 1, 'Division by zero (cumulative)'),
  bit('OFC', 2, 'Overflow (cumulative)'),
  bit('UFC', 3, 'Underflow (cumulative)'),
  bit('IXC', 4, 'Inexact (cumulative)'),
  bit('IDC', 7, 'Input denormal (cumulative)'),
  bit('QC', 27, 'Saturation (cumulative)'),
];

const FPCR: BitField[] = [
  bit('IOE', 8, 'Invalid operation trapped'),
  bit('DZE', 9, 'Division by zero trapped'),
  bit('OFE', 10, 'Overflow trapped'),
  bit('UFE', 11, 'Underflow trapped'),
  bit('IXE', 12, 'Inexact trapped'),
  bit('IDE', 15, 'Input denormal trapped'),
  bit('FZ16', 19, 'Flush half-precision denormals to zero'),
  { name: 'RMode', lo: 22, hi: 23, description: 'Rounding mode', show: { 0: 'nearest', 1: 'toward +inf', 2: 'toward -inf', 3: 'toward zero' } },
  bit('FZ', 24, 'Flush denormals to zero'),
  bit('DN', 25, 'Default NaN'),
  bit('AHP', 26, 'Alternative half-precision format'),
];

/** The system registers worth seeing first, in the order a kernel developer reads them. */
const SYSTEM_FIRST = [
  'CurrentEL',
  'CURRENTEL',
  'SCTLR',
  'SCTLR_EL1',
  'TCR_EL1',
  'TTBR0_EL1',
  'TTBR1_EL1',
  'MAIR_EL1',
  'VBAR',
  'VBAR_EL1',
  'ESR_EL1',
  'FAR_EL1',
  'ELR_EL1',
  'SPSR_EL1',
  'SP_EL0',
  'SP_EL1',
  'TPIDR_EL1',
  'TPIDR_EL0',
  'TPIDRRO_EL0',
  'CONTEXTIDR_EL1',
  'CPACR',
  'CPACR_EL1',
  'MDSCR_EL1',
  'PAR_EL1',
  'AMAIR0',
  'AFSR0_EL1',
  'AFSR1_EL1',
  'ACTLR_EL1',
];

export const aarch64RegisterView: RegisterViewSpec = {
  groups: [
    { name: 'General', members: [/^x\d+$/, 'sp', 'pc'] },
    { name: 'PSTATE', members: ['cpsr'] },
    { name: 'FP/SIMD', members: [/^v\d+$/, 'fpsr', 'fpcr'] },
    // -cpu max replaces the FP/SIMD feature with SVE's: z0-z31 (v0-v31 are their low halves), p0-p15, ffr, vg.
    { name: 'SVE', members: [/^z\d+$/, /^p\d+$/, 'ffr', 'vg'] },
    { name: 'System', members: SYSTEM_FIRST },
    { name: 'Timers', members: [/^CNT/] },
    { name: 'Debug', members: [/^DBG/, /^MD/, /^OS/] },
    { name: 'Performance monitors', members: [/^PM/] },
    { name: 'Pointer authentication keys', members: [/^AP[A-Z]+KEY/] },
    { name: 'ID', members: [/^ID_/, /^MIDR/, /^MPIDR/, /^REVIDR/, /^MVFR/, 'CTR_EL0', 'DCZID_EL0', 'CLIDR', 'CCSIDR', 'CSSELR', 'AIDR', 'CBAR_EL1', 'RVBAR_EL1', /^RES_0_/, /^ERRIDR/, /^LORID/, /^SMIDR/] },
    // Whatever else QEMU lists: AArch32 banked SPSRs, EL2/EL3 leftovers, Cortex IMPDEF registers.
    { name: 'Other system', members: [/^[A-Z][A-Z0-9_]*$/] },
  ],
  layouts: {
    cpsr: pstate,
    SPSR_EL1: pstate,
    CurrentEL: fixed(CURRENT_EL),
    CURRENTEL: fixed(CURRENT_EL),
    SCTLR: fixed(SCTLR),
    SCTLR_EL1: fixed(SCTLR),
    TCR_EL1: tcr,
    ESR_EL1: esr,
    TTBR0_EL1: fixed(TTBR),
    TTBR1_EL1: fixed(TTBR),
    MDSCR_EL1: fixed(MDSCR),
    CPACR: fixed(CPACR),
    CPACR_EL1: fixed(CPACR),
    fpsr: fixed(FPSR),
    fpcr: fixed(FPCR),
    FPSR: fixed(FPSR),
    FPCR: fixed(FPCR),
  },
};
