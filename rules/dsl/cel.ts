/**
 * CEL conditions, compiled once per rule. The variables a condition may use are declared, so
 * a typo (`vib > 4` for `v.vib > 4`) is a load-time error, not a silent false at run time.
 */
import { Environment } from '@marcbachmann/cel-js';
import { compileFast } from './cel-fast.js';

/** Variables every condition sees (see rules/README.md "Conditions"). */
const env = new Environment({ limits: { maxAstNodes: 2000, maxDepth: 50 } })
  .registerVariable('device', 'string')
  .registerVariable('model', 'string')
  .registerVariable('site', 'string')
  .registerVariable('now', 'double')
  .registerVariable('v', 'map')
  .registerVariable('agg', 'map')
  .registerVariable('last', 'map')
  .registerVariable('state', 'string')
  .registerVariable('dwell', 'double')
  .registerVariable('latch', 'map')
  .registerVariable('silent', 'list');

export interface CelContext {
  device: string;
  model: string;
  site: string;
  now: number;
  v: Record<string, unknown>;
  agg: Record<string, number>;
  last: Record<string, Record<string, unknown>>;
  state: string;
  dwell: number;
  latch: Record<string, boolean>;
  silent: string[];
}

export interface Condition {
  readonly source: string;
  /** True, false, or an evaluation error (a missing key, a bad overload): never throws. */
  eval(ctx: CelContext): boolean | Error;
}

/**
 * Compiles an expression, or returns why it cannot be used as a condition. `interpretOnly`
 * leaves out the fast path (its property test compares the two).
 */
export function compileCondition(source: string, opts: { interpretOnly?: boolean } = {}): Condition | string {
  let fn: ReturnType<typeof env.parse>;
  try {
    fn = env.parse(source);
  } catch (e) {
    return firstLine(e);
  }
  const check = fn.check();
  if (!check.valid) return firstLine(check.error);
  if (check.type !== 'bool' && check.type !== 'dyn') return `must be a boolean expression (it is ${check.type})`;
  // simple comparisons answered without the interpreter when their fields are numbers (cel-fast.ts)
  const fast = opts.interpretOnly ? undefined : compileFast(source);
  return {
    source,
    eval(ctx) {
      if (fast) {
        const r = fast(ctx);
        if (r !== undefined) return r;
      }
      try {
        const r: unknown = fn(ctx);
        return r === true;
      } catch (e) {
        return e instanceof Error ? e : new Error(String(e));
      }
    },
  };
}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
