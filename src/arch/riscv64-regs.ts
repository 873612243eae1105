/**
 * riscv64 register groups and bit layouts, from the RISC-V privileged spec (20211203, v1.12:
 * §3.1 mstatus, misa, mip/mie, mcause; §4.1 sstatus, sip/sie, scause, satp) and the F
 * extension's fcsr (unprivileged spec §11.2).
 *
 * Names are QEMU 7.2's: the integer registers by ABI name with x8 as `fp`, FP registers by ABI
 * name (ft0…, fs0…, fa0…), `priv` (org.gnu.gdb.riscv.virtual) for the current privilege level,
 * and CSRs (org.gnu.gdb.riscv.csr) by their spec names. QEMU 7.2 lists only the CSRs whose
 * predicate passes when the vCPU is created, so fflags/frm/fcsr (FS is Off at reset) and the
 * unprivileged counters are absent; their rules and layouts are here for a QEMU that lists them.
 */
import type { BitField, FieldLayout, RegisterViewSpec } from './regview';

const bit = (name: string, n: number, description: string): BitField => ({ name, lo: n, hi: n, description });
const fixed = (fields: BitField[]): FieldLayout => () => fields;

/** x0-x31 by the names QEMU's target.xml gives them (x8 is `fp`). */
export const XREG_NAMES = ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 'fp', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6'];
/** f0-f31 by ABI name. */
export const FREG_NAMES = ['ft0', 'ft1', 'ft2', 'ft3', 'ft4', 'ft5', 'ft6', 'ft7', 'fs0', 'fs1', 'fa0', 'fa1', 'fa2', 'fa3', 'fa4', 'fa5', 'fa6', 'fa7', 'fs2', 'fs3', 'fs4', 'fs5', 'fs6', 'fs7', 'fs8', 'fs9', 'fs10', 'fs11', 'ft8', 'ft9', 'ft10', 'ft11'];

const EXT_STATE = { 0: 'Off', 1: 'Initial', 2: 'Clean', 3: 'Dirty' };
const XLEN = { 1: '32-bit', 2: '64-bit', 3: '128-bit' };
const PRIV = { 0: 'user', 1: 'supervisor', 3: 'machine' };

/** The sstatus view of mstatus: the bits S-mode can see. */
const SSTATUS: BitField[] = [
  bit('SIE', 1, 'Supervisor interrupts enabled'),
  bit('SPIE', 5, 'SIE before the trap into S-mode'),
  bit('UBE', 6, 'U-mode data accesses big-endian'),
  { name: 'SPP', lo: 8, hi: 8, description: 'Privilege before the trap into S-mode (sret returns there)', show: { 0: 'user', 1: 'supervisor' } },
  { name: 'VS', lo: 9, hi: 10, description: 'Vector unit state', show: EXT_STATE },
  { name: 'FS', lo: 13, hi: 14, description: 'FPU state (Off: FP instructions trap; Dirty: must be saved on switch)', show: EXT_STATE },
  { name: 'XS', lo: 15, hi: 16, description: 'Other extensions\' state', show: EXT_STATE },
  bit('SUM', 18, 'Supervisor may access user memory (uaccess enabled)'),
  bit('MXR', 19, 'Loads from execute-only pages allowed'),
  { name: 'UXL', lo: 32, hi: 33, description: 'U-mode XLEN', show: XLEN },
  bit('SD', 63, 'Some of FS/VS/XS is Dirty'),
];

const MSTATUS: BitField[] = [
  bit('SIE', 1, 'Supervisor interrupts enabled'),
  bit('MIE', 3, 'Machine interrupts enabled'),
  bit('SPIE', 5, 'SIE before the trap into S-mode'),
  bit('UBE', 6, 'U-mode data accesses big-endian'),
  bit('MPIE', 7, 'MIE before the trap into M-mode'),
  { name: 'SPP', lo: 8, hi: 8, description: 'Privilege before the trap into S-mode', show: { 0: 'user', 1: 'supervisor' } },
  { name: 'VS', lo: 9, hi: 10, description: 'Vector unit state', show: EXT_STATE },
  { name: 'MPP', lo: 11, hi: 12, description: 'Privilege before the trap into M-mode (mret returns there)', show: PRIV },
  { name: 'FS', lo: 13, hi: 14, description: 'FPU state', show: EXT_STATE },
  { name: 'XS', lo: 15, hi: 16, description: 'Other extensions\' state', show: EXT_STATE },
  bit('MPRV', 17, 'Loads and stores use MPP\'s privilege'),
  bit('SUM', 18, 'Supervisor may access user memory'),
  bit('MXR', 19, 'Loads from execute-only pages allowed'),
  bit('TVM', 20, 'satp and sfence.vma trap in S-mode'),
  bit('TW', 21, 'wfi traps'),
  bit('TSR', 22, 'sret traps in S-mode'),
  { name: 'UXL', lo: 32, hi: 33, description: 'U-mode XLEN', show: XLEN },
  { name: 'SXL', lo: 34, hi: 35, description: 'S-mode XLEN', show: XLEN },
  bit('SBE', 36, 'S-mode data accesses big-endian'),
  bit('MBE', 37, 'M-mode data accesses big-endian'),
  bit('GVA', 38, 'mtval holds a guest virtual address'),
  bit('MPV', 39, 'Virtualisation mode before the trap into M-mode'),
  bit('SD', 63, 'Some of FS/VS/XS is Dirty'),
];

/** Exception codes (cause with the interrupt bit clear), privileged spec table 3.6. */
export const EXCEPTION_CODES: Readonly<Record<number, string>> = {
  0: 'Instruction address misaligned',
  1: 'Instruction access fault',
  2: 'Illegal instruction',
  3: 'Breakpoint',
  4: 'Load address misaligned',
  5: 'Load access fault',
  6: 'Store/AMO address misaligned',
  7: 'Store/AMO access fault',
  8: 'Environment call from U-mode (system call)',
  9: 'Environment call from S-mode (SBI call)',
  10: 'Environment call from VS-mode',
  11: 'Environment call from M-mode',
  12: 'Instruction page fault',
  13: 'Load page fault',
  15: 'Store/AMO page fault',
  20: 'Instruction guest-page fault',
  21: 'Load guest-page fault',
  22: 'Virtual instruction',
  23: 'Store/AMO guest-page fault',
};

/** Interrupt codes (cause with the interrupt bit set); also the bit numbers of mip/mie. */
export const INTERRUPT_CODES: Readonly<Record<number, string>> = {
  1: 'Supervisor software interrupt',
  2: 'Virtual supervisor software interrupt',
  3: 'Machine software interrupt',
  5: 'Supervisor timer interrupt',
  6: 'Virtual supervisor timer interrupt',
  7: 'Machine timer interrupt',
  9: 'Supervisor external interrupt',
  10: 'Virtual supervisor external interrupt',
  11: 'Machine external interrupt',
  12: 'Supervisor guest external interrupt',
  13: 'Counter overflow interrupt',
};

/** scause/mcause: bit 63 says which table the code is in. */
const cause: FieldLayout = (value) => {
  const interrupt = value >> 63n === 1n;
  return [
    { name: 'Interrupt', lo: 63, hi: 63, description: 'Set for an interrupt, clear for an exception', show: { 0: 'exception', 1: 'interrupt' } },
    {
      name: interrupt ? 'Interrupt code' : 'Exception code',
      lo: 0,
      hi: 62,
      description: interrupt ? 'Which interrupt was taken' : 'Which exception was taken',
      show: interrupt ? INTERRUPT_CODES : EXCEPTION_CODES,
    },
  ];
};

/** satp: the root page table's physical page number, shown as the address it is. */
const satp: FieldLayout = (value) => {
  const ppn = value & ((1n << 44n) - 1n);
  return [
    { name: 'MODE', lo: 60, hi: 63, description: 'Address translation scheme', show: { 0: 'Bare: no translation', 8: 'Sv39', 9: 'Sv48', 10: 'Sv57', 11: 'Sv64' } },
    { name: 'ASID', lo: 44, hi: 59, description: 'Address space identifier', show: 'number' },
    { name: 'PPN', lo: 0, hi: 43, description: 'Physical page number of the root page table', show: { [Number(ppn)]: `root table at 0x${(ppn << 12n).toString(16)}` } },
  ];
};

/** sie/sip: the S-mode view of mie/mip. */
const SUPERVISOR_INTERRUPTS: BitField[] = [
  bit('SSI', 1, INTERRUPT_CODES[1]),
  bit('STI', 5, INTERRUPT_CODES[5]),
  bit('SEI', 9, INTERRUPT_CODES[9]),
  bit('LCOFI', 13, INTERRUPT_CODES[13]),
];

const MACHINE_INTERRUPTS: BitField[] = [
  bit('SSI', 1, INTERRUPT_CODES[1]),
  bit('VSSI', 2, INTERRUPT_CODES[2]),
  bit('MSI', 3, INTERRUPT_CODES[3]),
  bit('STI', 5, INTERRUPT_CODES[5]),
  bit('VSTI', 6, INTERRUPT_CODES[6]),
  bit('MTI', 7, INTERRUPT_CODES[7]),
  bit('SEI', 9, INTERRUPT_CODES[9]),
  bit('VSEI', 10, INTERRUPT_CODES[10]),
  bit('MEI', 11, INTERRUPT_CODES[11]),
  bit('SGEI', 12, INTERRUPT_CODES[12]),
  bit('LCOFI', 13, INTERRUPT_CODES[13]),
];

/** medeleg: one bit per exception code, set when S-mode handles it. */
const EXCEPTION_DELEGATION: BitField[] = Object.entries(EXCEPTION_CODES).map(([code, name]) => bit(`E${code}`, Number(code), `Delegated to S-mode: ${name}`));

const TVEC: BitField[] = [
  { name: 'BASE', lo: 2, hi: 63, description: 'Trap vector base address', show: 'address' },
  { name: 'MODE', lo: 0, hi: 1, description: 'Vectoring', show: { 0: 'Direct: every trap to BASE', 1: 'Vectored: interrupts to BASE+4*cause' } },
];

const MISA_EXTENSIONS: Record<string, string> = {
  A: 'Atomics',
  B: 'Bit manipulation',
  C: 'Compressed instructions',
  D: 'Double-precision FP',
  E: 'RV32E base',
  F: 'Single-precision FP',
  H: 'Hypervisor',
  I: 'Integer base ISA',
  M: 'Integer multiply/divide',
  Q: 'Quad-precision FP',
  S: 'Supervisor mode',
  U: 'User mode',
  V: 'Vector',
};

const MISA: BitField[] = [
  { name: 'MXL', lo: 62, hi: 63, description: 'Machine XLEN', show: XLEN },
  ...Object.entries(MISA_EXTENSIONS).map(([letter, what]) => bit(letter, letter.charCodeAt(0) - 65, what)),
];

const FFLAGS: BitField[] = [bit('NX', 0, 'Inexact'), bit('UF', 1, 'Underflow'), bit('OF', 2, 'Overflow'), bit('DZ', 3, 'Divide by zero'), bit('NV', 4, 'Invalid operation')];
const ROUNDING = { 0: 'RNE: nearest, ties to even', 1: 'RTZ: toward zero', 2: 'RDN: down', 3: 'RUP: up', 4: 'RMM: nearest, ties to max magnitude', 7: 'DYN: per instruction' };
const FRM: BitField[] = [{ name: 'FRM', lo: 0, hi: 2, description: 'Rounding mode', show: ROUNDING }];
const FCSR: BitField[] = [...FFLAGS, { name: 'FRM', lo: 5, hi: 7, description: 'Rounding mode', show: ROUNDING }];

/** QEMU's `priv`: the privilege level the hart is in (gdb's virtual register). */
const PRIV_LAYOUT: BitField[] = [{ name: 'PRV', lo: 0, hi: 1, description: 'Current privilege level', show: PRIV }];

export const riscv64RegisterView: RegisterViewSpec = {
  groups: [
    { name: 'General', members: [...XREG_NAMES.slice(0, 8), 's0', ...XREG_NAMES.slice(8), 'pc'] },
    { name: 'FPU', members: [...FREG_NAMES, /^f\d+$/, 'fflags', 'frm', 'fcsr'] },
    {
      name: 'Supervisor CSRs',
      members: ['priv', 'sstatus', 'sie', 'sip', 'stvec', 'sepc', 'scause', 'stval', 'satp', 'sscratch', 'scounteren', 'senvcfg', 'stimecmp'],
    },
    {
      name: 'Machine CSRs',
      members: ['mstatus', 'misa', 'medeleg', 'mideleg', 'mie', 'mip', 'mtvec', 'mepc', 'mcause', 'mtval', 'mtval2', 'mtinst', 'mscratch', 'mcounteren', 'menvcfg', 'mseccfg', 'mvendorid', 'marchid', 'mimpid', 'mhartid', 'mconfigptr'],
    },
    { name: 'Hypervisor CSRs', members: [/^h/, /^vs/] },
    { name: 'Counters', members: ['cycle', 'time', 'instret', 'mcycle', 'minstret', 'mcountinhibit', /^m?hpmcounter\d+h?$/, /^mhpmevent\d+$/] },
    { name: 'PMP', members: [/^pmp/] },
    { name: 'Debug triggers', members: ['tselect', /^tdata\d$/, 'tinfo', 'tcontrol', 'mcontext', 'scontext', 'dcsr', 'dpc', /^dscratch/] },
    // Any CSR a newer QEMU adds (Smstateen, AIA, vector…): still shown, among the CSRs.
    { name: 'Other CSRs', members: [/./] },
  ],
  layouts: {
    priv: fixed(PRIV_LAYOUT),
    sstatus: fixed(SSTATUS),
    vsstatus: fixed(SSTATUS),
    mstatus: fixed(MSTATUS),
    scause: cause,
    mcause: cause,
    vscause: cause,
    satp,
    vsatp: satp,
    sie: fixed(SUPERVISOR_INTERRUPTS),
    sip: fixed(SUPERVISOR_INTERRUPTS),
    mie: fixed(MACHINE_INTERRUPTS),
    mip: fixed(MACHINE_INTERRUPTS),
    mideleg: fixed(MACHINE_INTERRUPTS.map((f) => ({ ...f, description: `Delegated to S-mode: ${f.description}` }))),
    medeleg: fixed(EXCEPTION_DELEGATION),
    stvec: fixed(TVEC),
    mtvec: fixed(TVEC),
    misa: fixed(MISA),
    fflags: fixed(FFLAGS),
    frm: fixed(FRM),
    fcsr: fixed(FCSR),
  },
};
