/**
 * Range stepping with breakpoints: where execution can first land once it leaves a line's
 * address range, read off the line's instructions. A step over the line then costs one
 * continue instead of a single step (and a register read) per instruction executed, which
 * over a gdbstub is what a step costs.
 *
 * Every exit lies inside the function being stepped. A branch that leaves the function (a
 * tail call, the return thunk) and anything whose destination the bytes don't tell (ret,
 * an indirect jump, an exception) is itself the exit: execution stops on it and the stepper
 * single-steps it. So no temporary breakpoint sits in code that other functions run, such as
 * __x86_return_thunk, which every return in the kernel passes through.
 */
import { rangesContain } from '../symbols/dwarf/cu';
import type { Range } from '../symbols/dwarf/ranges';
import type { FlowStep } from './disasm';

/**
 * The addresses to stop at to catch execution leaving [start, end): targets outside the
 * range but inside `fn`, and the range's own instructions that leave for places unknown.
 * Undefined when the instructions don't cover the range exactly.
 */
export function rangeExits(insns: readonly FlowStep[], range: readonly [bigint, bigint], fn: readonly Range[]): bigint[] | undefined {
  const [start, end] = range;
  if (insns.length === 0 || insns[0].address !== start) return undefined;
  const exits = new Set<bigint>();
  const inRange = (a: bigint): boolean => a >= start && a < end;
  const land = (insn: FlowStep, to: bigint): void => {
    if (inRange(to)) return;
    // Out of the function: stop on the instruction that goes there instead.
    exits.add(rangesContain(fn, to) ? to : insn.address);
  };
  let expect = start;
  for (const insn of insns) {
    if (insn.address !== expect) return undefined;
    const next = insn.address + BigInt(insn.size);
    expect = next;
    switch (insn.flow) {
      case 'next':
      case 'call':
        land(insn, next);
        break;
      case 'branch':
        // Conditional or not, both ways: a spare exit is never wrong, a missing one is.
        if (insn.target === undefined) exits.add(insn.address);
        else land(insn, insn.target);
        land(insn, next);
        break;
      case 'leave':
        exits.add(insn.address);
        break;
    }
  }
  return expect === end ? [...exits] : undefined;
}

/** Lines this short, with no call, loop or rep, are cheaper to single-step than to plan. */
const SHORT = 4;

/**
 * Whether single steps from pc are cheaper than breakpoints: each breakpoint inserted or
 * removed makes QEMU's TCG flush all translated code, two flushes cost about what a few
 * single steps do, and a call, a backward branch (a loop) or a rep prefix can make the
 * steps unbounded.
 */
export function cheaperToSingleStep(insns: readonly FlowStep[], pc: bigint): boolean {
  const rest = insns.filter((i) => i.address >= pc);
  if (rest.length > SHORT) return false;
  return rest.every((i) => i.flow !== 'call' && !i.repeats && !(i.flow === 'branch' && i.target !== undefined && i.target <= i.address));
}
