/**
 * x86_64 register groups and bit layouts, from the Intel SDM vol. 3A §2.3–2.6 and the AMD
 * APM vol. 2 §3.1. QEMU's target.xml also describes some flags, but its CR3 layout puts
 * PWT/PCD at bits 2/1 (they are 3/4) and ignores CR4.PCIDE, so the tables here are ours.
 */
import type { BitField, FieldLayout, RegisterViewSpec } from './regview';

const bit = (name: string, n: number, description: string): BitField => ({ name, lo: n, hi: n, description });

const EFLAGS: BitField[] = [
  bit('CF', 0, 'Carry'),
  bit('PF', 2, 'Parity'),
  bit('AF', 4, 'Auxiliary carry'),
  bit('ZF', 6, 'Zero'),
  bit('SF', 7, 'Sign'),
  bit('TF', 8, 'Trap: single-step'),
  bit('IF', 9, 'Interrupts enabled'),
  bit('DF', 10, 'Direction: string ops count down'),
  bit('OF', 11, 'Overflow'),
  { name: 'IOPL', lo: 12, hi: 13, description: 'I/O privilege level', show: { 0: 'ring 0', 1: 'ring 1', 2: 'ring 2', 3: 'ring 3' } },
  bit('NT', 14, 'Nested task'),
  bit('RF', 16, 'Resume: suppress debug faults for one instruction'),
  bit('VM', 17, 'Virtual-8086 mode'),
  bit('AC', 18, 'Alignment check / SMAP access allowed (stac)'),
  bit('VIF', 19, 'Virtual interrupt flag'),
  bit('VIP', 20, 'Virtual interrupt pending'),
  bit('ID', 21, 'CPUID available'),
];

const CR0: BitField[] = [
  bit('PE', 0, 'Protection enabled'),
  bit('MP', 1, 'Monitor coprocessor'),
  bit('EM', 2, 'x87 emulation'),
  bit('TS', 3, 'Task switched: the next FPU/SSE use traps (lazy FPU)'),
  bit('ET', 4, 'Extension type'),
  bit('NE', 5, 'Native x87 error reporting'),
  bit('WP', 16, 'Write protect: the kernel honours read-only pages'),
  bit('AM', 18, 'Alignment mask'),
  bit('NW', 29, 'Not write-through'),
  bit('CD', 30, 'Cache disable'),
  bit('PG', 31, 'Paging enabled'),
];

const CR4: BitField[] = [
  bit('VME', 0, 'Virtual-8086 mode extensions'),
  bit('PVI', 1, 'Protected-mode virtual interrupts'),
  bit('TSD', 2, 'rdtsc is privileged'),
  bit('DE', 3, 'Debugging extensions'),
  bit('PSE', 4, 'Page size extensions'),
  bit('PAE', 5, 'Physical address extension'),
  bit('MCE', 6, 'Machine-check exceptions'),
  bit('PGE', 7, 'Global pages'),
  bit('PCE', 8, 'rdpmc allowed in user mode'),
  bit('OSFXSR', 9, 'OS supports fxsave/fxrstor'),
  bit('OSXMMEXCPT', 10, 'OS handles SIMD exceptions'),
  bit('UMIP', 11, 'User-mode instruction prevention'),
  bit('LA57', 12, '5-level paging'),
  bit('VMXE', 13, 'VMX enabled'),
  bit('SMXE', 14, 'SMX enabled'),
  bit('FSGSBASE', 16, 'rdfsbase/wrfsbase allowed'),
  bit('PCIDE', 17, 'Process-context identifiers: CR3 bits 0..11 are a PCID'),
  bit('OSXSAVE', 18, 'xsave and extended states enabled'),
  bit('KL', 19, 'Key Locker'),
  bit('SMEP', 20, 'Supervisor-mode execution prevention'),
  bit('SMAP', 21, 'Supervisor-mode access prevention'),
  bit('PKE', 22, 'Protection keys for user pages'),
  bit('CET', 23, 'Control-flow enforcement'),
  bit('PKS', 24, 'Protection keys for supervisor pages'),
];

const EFER: BitField[] = [
  bit('SCE', 0, 'syscall/sysret enabled'),
  bit('LME', 8, 'Long mode enabled'),
  bit('LMA', 10, 'Long mode active'),
  bit('NXE', 11, 'No-execute page bit enabled'),
  bit('SVME', 12, 'SVM enabled'),
  bit('LMSLE', 13, 'Long mode segment limits'),
  bit('FFXSR', 14, 'Fast fxsave/fxrstor'),
  bit('TCE', 15, 'Translation cache extension'),
];

const MXCSR: BitField[] = [
  bit('IE', 0, 'Invalid operation flag'),
  bit('DE', 1, 'Denormal flag'),
  bit('ZE', 2, 'Divide-by-zero flag'),
  bit('OE', 3, 'Overflow flag'),
  bit('UE', 4, 'Underflow flag'),
  bit('PE', 5, 'Precision flag'),
  bit('DAZ', 6, 'Denormals are zeros'),
  bit('IM', 7, 'Invalid operation masked'),
  bit('DM', 8, 'Denormal masked'),
  bit('ZM', 9, 'Divide-by-zero masked'),
  bit('OM', 10, 'Overflow masked'),
  bit('UM', 11, 'Underflow masked'),
  bit('PM', 12, 'Precision masked'),
  { name: 'RC', lo: 13, hi: 14, description: 'Rounding control', show: { 0: 'nearest', 1: 'down', 2: 'up', 3: 'toward zero' } },
  bit('FZ', 15, 'Flush to zero'),
];

const SELECTOR: BitField[] = [
  { name: 'RPL', lo: 0, hi: 1, description: 'Requested privilege level', show: { 0: 'kernel', 3: 'user' } },
  { name: 'TI', lo: 2, hi: 2, description: 'Table: 0 GDT, 1 LDT', show: { 0: 'GDT', 1: 'LDT' } },
  { name: 'index', lo: 3, hi: 15, description: 'Descriptor index in the table', show: 'number' },
];

/** With CR4.PCIDE the low 12 bits are the address space's PCID; without it, bits 3 and 4 are cache controls. */
const cr3: FieldLayout = (_value, other) => {
  const pcide = (((other('cr4') ?? 0n) >> 17n) & 1n) === 1n;
  const la57 = (((other('cr4') ?? 0n) >> 12n) & 1n) === 1n;
  const base: BitField = { name: 'PDBR', lo: 12, hi: 51, description: `Physical address of the top-level page table (${la57 ? 'PML5' : 'PML4'})`, show: 'address' };
  if (pcide) return [{ name: 'PCID', lo: 0, hi: 11, description: 'Process-context identifier (CR4.PCIDE is set)', show: 'number' }, base];
  return [bit('PWT', 3, 'Page-level write-through for the top-level table'), bit('PCD', 4, 'Page-level cache disable for the top-level table'), base];
};

const fixed = (fields: BitField[]): FieldLayout => () => fields;

export const x86_64RegisterView: RegisterViewSpec = {
  groups: [
    { name: 'General', members: ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', /^r\d+$/, 'rip'] },
    { name: 'Flags', members: ['eflags'] },
    { name: 'Segment', members: ['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'fs_base', 'gs_base', 'k_gs_base', /_base$/] },
    { name: 'Control', members: ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer'] },
    { name: 'FPU', members: [/^st\d$/, /^f(ctrl|stat|tag|iseg|ioff|oseg|ooff|op)$/] },
    { name: 'SSE', members: [/^xmm\d+$/, 'mxcsr', /^ymm/] },
  ],
  layouts: {
    eflags: fixed(EFLAGS),
    cr0: fixed(CR0),
    cr3,
    cr4: fixed(CR4),
    efer: fixed(EFER),
    mxcsr: fixed(MXCSR),
    cs: fixed(SELECTOR),
    ss: fixed(SELECTOR),
    ds: fixed(SELECTOR),
    es: fixed(SELECTOR),
    fs: fixed(SELECTOR),
    gs: fixed(SELECTOR),
  },
};
