/**
 * The CEL fast path (rules/dsl/cel-fast.ts) against cel-js: on generated expressions of its
 * grammar and generated contexts (missing keys, bools, strings, NaN, ±Infinity, -0), a condition
 * evaluates to exactly what the interpreter alone gives, errors included.
 */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CelContext, type Condition, compileCondition } from '../../rules/dsl/cel.js';
import { compileFast } from '../../rules/dsl/cel-fast.js';

const compiled = (src: string, interpretOnly = false): Condition => {
  const c = compileCondition(src, { interpretOnly });
  if (typeof c === 'string') throw new Error(`${src}: ${c}`);
  return c;
};

const digits = (max: number): fc.Arbitrary<string> => fc.integer({ min: 0, max }).map(String);
const literal = fc
  .tuple(
    fc.boolean(),
    fc.oneof(
      digits(200),
      fc.tuple(digits(200), digits(999)).map(([a, b]) => `${a}.${b}`),
      fc.tuple(digits(9), digits(99), fc.integer({ min: -4, max: 4 })).map(([a, b, e]) => `${a}.${b}e${e}`),
      fc.tuple(digits(9), fc.integer({ min: 0, max: 4 })).map(([a, e]) => `${a}e${e}`),
    ),
  )
  .map(([neg, x]) => (neg ? `-${x}` : x));
const field = fc.constantFrom('v.a', 'v.b', 'agg.a', 'agg.m', 'now', 'dwell');
const operand = fc.oneof(field, literal);
const op = fc.constantFrom('>', '>=', '<', '<=', '==', '!=');
const sp = fc.constantFrom('', ' ', '  ', '\n');
const expr = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    // at least one side a field: cel-js refuses literal-to-literal comparisons at compile time
    fc.tuple(field, sp, op, sp, operand).map((p) => p.join('')),
    fc.tuple(literal, sp, op, sp, field).map((p) => p.join('')),
    fc.constantFrom('has(v.a)', 'has(agg.m)', 'has(v.b)'),
    tie('e').map((x) => `!(${x})`),
    tie('e').map((x) => `(${x})`),
    fc.tuple(tie('e'), sp, tie('e')).map(([a, s, b]) => `${a}${s}&&${s}${b}`),
    fc.tuple(tie('e'), sp, tie('e')).map(([a, s, b]) => `${a}${s}||${s}${b}`),
  ),
})).e;

const num = fc.oneof(
  fc.double(),
  fc.integer({ min: -200, max: 200 }),
  fc.constantFrom(0, -0, 68, 30, 1.5, Number.NaN, Infinity, -Infinity),
);
const value = fc.oneof(num, num, num, fc.boolean(), fc.string({ maxLength: 3 }));
const context = fc
  .record({
    v: fc.record({ a: value, b: value }, { requiredKeys: [] }),
    agg: fc.record({ a: num, m: num }, { requiredKeys: [] }),
    now: num,
    dwell: num,
  })
  .map(
    (c): CelContext => ({
      device: 'd',
      model: '',
      site: '',
      last: {},
      state: '',
      latch: {},
      silent: [],
      ...c,
    }),
  );

const outcome = (r: boolean | Error): unknown => (r instanceof Error ? `error: ${r.message}` : r);

describe('CEL fast path', () => {
  it('gives what cel-js gives, errors included, on generated expressions and inputs (property)', () => {
    let answered = 0;
    let asked = 0;
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(expr, fc.array(context, { minLength: 1, maxLength: 8 }), (src, ctxs) => {
        const fast = compileFast(src);
        expect(fast, src).toBeDefined();
        // what cel-js refuses to compile (`now == 1`: no double == int overload) is no condition at all
        fc.pre(typeof compileCondition(src) !== 'string');
        const both = compiled(src);
        const interpreted = compiled(src, true);
        for (const ctx of ctxs) {
          asked++;
          if (fast!(ctx) !== undefined) answered++;
          expect(outcome(both.eval(ctx)), `${src} on ${JSON.stringify(ctx)}`).toEqual(outcome(interpreted.eval(ctx)));
        }
      }),
      { numRuns: 1500 },
    );
    // not vacuous: the fast path answered a good share by itself
    expect(answered / asked).toBeGreaterThan(0.2);
  });

  it('answers the common shapes, and leaves what is outside its grammar to cel-js', () => {
    for (const src of [
      'agg.a > 1000.0 || agg.m > 2000.0',
      'v.temp < 800.0',
      'agg.n > 0.0 && agg.r > 50.0',
      'has(agg.m) && agg.m > 68.0',
      '!(v.x >= -1.5e3) || (now <= 5)',
    ])
      expect(compileFast(src), src).toBeDefined();
    for (const src of [
      '!v.t > 1.0',
      'now - 5.0 > dwell',
      'device == "press-01"',
      'v.t > 1u',
      'v.t > 0x10',
      "v['t'] > 1.0",
      'last.d.t > 1.0',
      'v.t > 1234567890123456',
      'v.t > 1.0 ? true : false',
      'v.t > 1.0 // why',
    ])
      expect(compileFast(src), src).toBeUndefined();
    const c = compiled('agg.m > 68.0 && has(agg.m)');
    expect(c.eval({ ...ctxOf(), agg: { m: 70 } })).toBe(true);
    expect(c.eval({ ...ctxOf(), agg: {} })).toBe(false); // has() false: cel-js decides
    const missing = compiled('v.t > 1.0').eval(ctxOf());
    expect(missing).toBeInstanceOf(Error); // a missing key is still cel-js's error
  });
});

function ctxOf(): CelContext {
  return {
    device: 'd',
    model: '',
    site: '',
    now: 0,
    v: {},
    agg: {},
    last: {},
    state: '',
    dwell: 0,
    latch: {},
    silent: [],
  };
}
