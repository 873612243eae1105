/**
 * What a breakpoint does when it is hit: stop only if its condition holds, only from the Nth
 * hit on, or print a log message and go on. Hits are counted only when the condition holds,
 * as gdb counts them.
 */
import { errors } from '../util/errors';
import type { Inspector } from './inspect';
import { formatValue } from './values/format';
import { toInteger } from './values/value';

export interface BreakpointOptions {
  condition?: string;
  hitCondition?: string;
  logMessage?: string;
}

export type HitTest = (hits: number) => boolean;

/**
 * `5` or `>= 5` (from the 5th hit on), `== 5`, `> 5`, `< 5`, `<= 5`, `% 5` (every 5th).
 * A bare number means "from the Nth hit on", like gdb's ignore count plus one.
 */
export function parseHitCondition(text: string): HitTest {
  const m = /^\s*(>=|<=|==|=|>|<|%)?\s*(\d+)\s*$/.exec(text);
  if (!m) throw errors.badBreakpointOption('hitCondition', `'${text}' is not a hit count: use a number (stop from that hit on), or '== N', '> N', '% N'`);
  const n = Number(m[2]);
  switch (m[1]) {
    case '==':
    case '=':
      return (h) => h === n;
    case '>':
      return (h) => h > n;
    case '<':
      return (h) => h < n;
    case '<=':
      return (h) => h <= n;
    case '%':
      if (n === 0) throw errors.badBreakpointOption('hitCondition', "'% 0' would never stop: use '% N' with N > 0");
      return (h) => h % n === 0;
    default:
      return (h) => h >= n;
  }
}

/** A log message's parts: literal text and `{expression}`s (`{{` and `}}` are literal braces). */
export type MessagePart = { text: string } | { expr: string };

export function parseLogMessage(message: string): MessagePart[] {
  const parts: MessagePart[] = [];
  let text = '';
  for (let i = 0; i < message.length; i++) {
    const c = message[i];
    if ((c === '{' || c === '}') && message[i + 1] === c) {
      text += c;
      i++;
      continue;
    }
    if (c === '{') {
      const end = message.indexOf('}', i + 1);
      if (end < 0) throw errors.badBreakpointOption('logMessage', `'{' at column ${i + 1} has no closing '}' (write '{{' for a literal brace)`);
      if (text) parts.push({ text });
      text = '';
      const expr = message.slice(i + 1, end).trim();
      if (!expr) throw errors.badBreakpointOption('logMessage', `empty '{}' at column ${i + 1}`);
      parts.push({ expr });
      i = end;
      continue;
    }
    text += c;
  }
  if (text) parts.push({ text });
  return parts;
}

export class BreakpointBehaviour {
  hits = 0;
  readonly hitTest: HitTest | undefined;
  readonly message: MessagePart[] | undefined;

  constructor(readonly options: BreakpointOptions) {
    this.hitTest = options.hitCondition?.trim() ? parseHitCondition(options.hitCondition) : undefined;
    this.message = options.logMessage !== undefined && options.logMessage !== '' ? parseLogMessage(options.logMessage) : undefined;
  }

  get plain(): boolean {
    return !this.options.condition?.trim() && !this.hitTest && !this.message;
  }

  same(o: BreakpointOptions): boolean {
    return (o.condition ?? '') === (this.options.condition ?? '') && (o.hitCondition ?? '') === (this.options.hitCondition ?? '') && (o.logMessage ?? '') === (this.options.logMessage ?? '');
  }
}

/** The conditions, hit counts and log messages of breakpoints, by id (plain breakpoints have none). */
export class Behaviours {
  private readonly byId = new Map<number, BreakpointBehaviour>();

  get(id: number): BreakpointBehaviour | undefined {
    return this.byId.get(id);
  }

  /** Attach a condition, hit count or log message to a breakpoint; a bad one leaves it unverified with the reason, on the gutter. */
  attach<R extends { id: number; verified: boolean; message?: string }>(result: R, opts: BreakpointOptions): R {
    const prev = this.byId.get(result.id);
    if (prev?.same(opts)) return result;
    let b: BreakpointBehaviour;
    try {
      b = new BreakpointBehaviour(opts);
    } catch (e) {
      this.byId.set(result.id, new BreakpointBehaviour({ condition: '0' }));
      return { ...result, verified: false, message: (e as Error).message };
    }
    if (b.plain) this.byId.delete(result.id);
    else this.byId.set(result.id, b);
    return result;
  }
}

export interface HitHost {
  /** True when the C expression is non-zero in the stopped frame. */
  test(expr: string): Promise<boolean>;
  /** The expression's value as the Debug Console would show it. */
  show(expr: string): Promise<string>;
}

export interface HitDecision {
  stop: boolean;
  logs: string[];
  problems: string[];
}

/**
 * Decide for the breakpoints at one stop. Any plain or satisfied breakpoint stops; logpoints
 * print and don't; a condition that can't be evaluated stops, with the error, as gdb does.
 */
export async function decide(behaviours: BreakpointBehaviour[], host: HitHost): Promise<HitDecision> {
  const out: HitDecision = { stop: false, logs: [], problems: [] };
  for (const b of behaviours) {
    const cond = b.options.condition?.trim();
    if (cond) {
      let holds: boolean;
      try {
        holds = await host.test(cond);
      } catch (e) {
        out.problems.push(`Error in breakpoint condition '${cond}': ${(e as Error).message}`);
        out.stop = true;
        continue;
      }
      if (!holds) continue;
    }
    b.hits++;
    if (b.hitTest && !b.hitTest(b.hits)) continue;
    if (b.message) {
      let line = '';
      for (const p of b.message) {
        if ('text' in p) line += p.text;
        else line += await host.show(p.expr).catch((e: Error) => `<${e.message}>`);
      }
      out.logs.push(line);
      continue;
    }
    out.stop = true;
  }
  return out;
}

/** Conditions and log messages evaluated in the innermost frame of the stopped vCPU. */
export function expressionHost(insp: Inspector, tid: number): HitHost {
  const sel = { tid, physical: 0, inlineDepth: 0 };
  const env = insp.env(tid);
  return {
    test: async (expr) => (await toInteger(await insp.evaluate(expr, sel), env)) !== 0n,
    show: async (expr) => {
      // `{flags,x}` in a log message shows hex, as in a watch.
      const spec = /,\s*([xd])\s*$/i.exec(expr);
      const text = spec ? expr.slice(0, spec.index) : expr;
      return formatValue(await insp.evaluate(text, sel), { ...env, hex: spec?.[1].toLowerCase() === 'x' });
    },
  };
}
