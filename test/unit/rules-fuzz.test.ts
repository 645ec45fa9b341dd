/**
 * Rule files from anywhere: any YAML document either loads or fails with a RuleError naming
 * the file (never another exception), and every rule that loads compiles and runs.
 */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { RuleError } from '../../rules/dsl/errors.js';
import { parseRuleFile } from '../../rules/dsl/parse.js';
import type { RuleSet } from '../../rules/dsl/types.js';
import { toRuleFrame } from '../../rules/frame.js';
import { rulesHarness } from '../helpers/rules.js';

const valid = {
  id: 'r',
  trigger: { devices: ['a'], names: ['t'] },
  window: { sliding: '5s' },
  aggregate: { m: 'max(t)' },
  when: 'has(agg.m) && agg.m > 3.0',
  clear: 'has(agg.m) && agg.m < 1.0',
  for: '1s',
  debounce: '500ms',
  cooldown: '2s',
  rateLimit: { max: 2, per: '10s' },
  // biome-ignore lint/suspicious/noThenProperty: a rule document; `then` is the rule language's action list
  then: [{ command: { device: 'x', actuator: 'y', value: 1, ttl: '5s' } }, { alert: 'm {{agg.m}}' }],
  onClear: [
    { publish: { topic: 't', payload: 'p' } },
    { settings: { device: '{{device}}', values: { mode: 'eco', interval: 30 } } },
  ],
  // biome-ignore lint/suspicious/noThenProperty: a rule document; `then` is the rule language's action list
  watchdog: { silence: '3s', then: [{ alert: 'quiet' }] },
};
const machine = {
  id: 'm',
  machine: {
    initial: 'a',
    latches: { l: { set: 'has(v.t) && v.t > 1.0', clearOnEnter: ['b'] } },
    states: { a: { minDwell: '1s', onEnter: [{ alert: 'a' }] }, b: { onEnter: [{ alert: 'b' }] } },
    transitions: [
      { from: 'a', to: 'b', when: 'latch.l' },
      { from: 'b', to: 'a', after: '2s' },
    ],
    watchdog: { silence: '4s', devices: ['a'], state: 'b' },
  },
};

/** A valid rule with one field replaced by anything (or deleted). */
const mutated = fc
  .tuple(
    fc.constantFrom(valid, machine),
    fc.nat(),
    fc.oneof(
      { weight: 4, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.anything() },
      { weight: 1, arbitrary: fc.string() },
      { weight: 1, arbitrary: fc.integer() },
    ),
  )
  .map(([base, i, v]) => {
    const copy = structuredClone(base) as Record<string, unknown>;
    const paths: string[][] = [];
    const walk = (o: unknown, p: string[]): void => {
      if (o && typeof o === 'object')
        for (const k of Object.keys(o)) paths.push([...p, k]), walk((o as Record<string, unknown>)[k], [...p, k]);
    };
    walk(copy, []);
    const path = paths[i % paths.length]!;
    let o = copy as Record<string, unknown>;
    for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
    if (v === undefined) delete o[path.at(-1)!];
    else o[path.at(-1)!] = v;
    return copy;
  });

describe('rule files from anywhere', () => {
  it('any document loads or fails with a RuleError; what loads runs (property)', () => {
    let loaded = 0;
    let refused = 0;
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.array(mutated, { minLength: 1, maxLength: 2 }).map((rules) => ({ rules })),
        ),
        fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { maxLength: 20 }),
        (doc, values) => {
          let set: RuleSet;
          try {
            set = parseRuleFile('fuzz.yaml', (stringify(doc) as string | undefined) ?? '');
          } catch (e) {
            expect(e).toBeInstanceOf(RuleError);
            expect((e as RuleError).at.file).toBe('fuzz.yaml');
            refused++;
            return;
          }
          if (set.rules.length > 0) loaded++;
          if (new Set(set.rules.map((r) => r.id)).size !== set.rules.length) return;
          const h = rulesHarness(set);
          for (const [i, t] of values.entries()) h.frame(i * 700, 'a', { t });
          h.advance(values.length * 700 + 10_000);
          for (const s of h.engine.stats()) expect(s.errors, s.lastError).toBe(0);
        },
      ),
      { numRuns: 400 },
    );
    // both sides were exercised: mutations that still load (and run), and refusals. About 6.5 %
    // of runs load (15 to 41 of 400 over 40 seeds), so the floor sits far below that spread.
    expect(loaded).toBeGreaterThan(5);
    expect(refused).toBeGreaterThan(100);
  });

  it('toRuleFrame: prefix stripped, relative times resolved, non-readings and bad packs are undefined', () => {
    const f = toRuleFrame({ device: 'd1', rxTime: 1_000_000, model: 'm' }, {
      type: 'reading',
      boot: 2,
      seq: 5,
      records: [
        { bn: 'd1:', n: 'a', v: 1, t: -2 },
        { n: 'b', vb: true },
        { n: 'c', vs: 'x', t: 1.7e9 },
        { n: 'd', s: 3 },
      ],
    } as never);
    expect(f).toEqual({
      device: 'd1',
      boot: 2,
      seq: 5,
      time: 1_000_000,
      model: 'm',
      records: [
        { name: 'a', value: 1, time: 998_000 },
        { name: 'b', value: true, time: 1_000_000 },
        { name: 'c', value: 'x', time: 1.7e12 },
        { name: 'd', value: 3, time: 1_000_000 },
      ],
    });
    expect(toRuleFrame({ device: 'd1', rxTime: 0 }, { type: 'command-ack' })).toBeUndefined();
    expect(
      toRuleFrame({ device: 'd1', rxTime: 0 }, {
        type: 'reading',
        boot: 1,
        seq: 1,
        records: [{ n: 'a', v: 1, vb: true }],
      } as never),
    ).toBeUndefined();
    // another device's base name is kept whole
    expect(
      toRuleFrame({ device: 'd1', rxTime: 0 }, {
        type: 'reading',
        boot: 1,
        seq: 1,
        records: [{ bn: 'd2:', n: 'a', v: 1 }],
      } as never)!.records[0]!.name,
    ).toBe('d2:a');
  });
});
