/** rules/replay: decisions JSONL codec (property tests), diff, and the dry run's clock. */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../rules/decision.js';
import { parseRuleFile } from '../../rules/dsl/parse.js';
import { diffDecisions } from '../../rules/replay/diff.js';
import { decisionFromJson, decisionToJson, parseDecisionsJsonl } from '../../rules/replay/jsonl.js';
import { replay } from '../../rules/replay/replay.js';
import type { RuleFrame } from '../../rules/frame.js';

const scalar = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Object.is(x, -0)),
  fc.boolean(),
  fc.string(),
);
const action = fc.oneof(
  fc.record({
    kind: fc.constant('command' as const),
    command: fc.record({ device: fc.string(), actuator: fc.string(), value: scalar, ttlMs: fc.nat() }),
  }),
  fc.record({ kind: fc.constant('publish' as const), topic: fc.string(), payload: fc.string() }),
  fc.record({ kind: fc.constant('alert' as const), message: fc.string() }),
  fc.record({
    kind: fc.constant('settings' as const),
    device: fc.string(),
    values: fc.array(fc.tuple(fc.string(), scalar), { maxLength: 4 }),
  }),
);
const decision: fc.Arbitrary<Decision> = fc.record({
  rule: fc.string(),
  ruleVersion: fc.string(),
  at: fc.integer({ min: 0, max: 2 ** 45 }),
  inputs: fc.array(fc.record({ device: fc.string(), boot: fc.nat(), seq: fc.nat() }), { maxLength: 5 }),
  reason: fc.string(),
  action,
});

describe('decisions JSONL', () => {
  it('round-trips any decision (property)', () => {
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(fc.array(decision, { maxLength: 8 }), (ds) => {
        const r = parseDecisionsJsonl(ds.map(decisionToJson).join('\n') + '\n');
        expect(r.errors).toEqual([]);
        expect(r.decisions).toEqual(ds);
      }),
      { numRuns: 300 },
    );
  });

  it('bad lines are reported with their line number, never thrown (property)', () => {
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string(), fc.json(), decision.map(decisionToJson)), { maxLength: 10 }),
        (lines) => {
          const r = parseDecisionsJsonl(lines.join('\n'));
          expect(r.decisions.length + r.errors.length).toBeLessThanOrEqual(lines.length);
          for (const e of r.errors) expect(e.line).toBeGreaterThanOrEqual(1);
        },
      ),
      { numRuns: 300 },
    );
    expect(parseDecisionsJsonl('{"rule":"a"}\nnot json\n').errors.map((e) => e.line)).toEqual([1, 2]);
    expect(
      decisionFromJson({ rule: 'r', ruleVersion: 'v', at: 1, reason: '', inputs: [], action: { kind: 'launch' } }),
    ).toMatch(/action.kind/);
  });
});

describe('diffDecisions', () => {
  it('a set agrees with itself in any order and within the time tolerance; a dropped decision is named (property)', () => {
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(
        fc.array(decision, { minLength: 1, maxLength: 10 }),
        fc.integer({ min: -900, max: 900 }),
        fc.nat(),
        (ds, shift, drop) => {
          const moved = ds.map((d) => ({ ...d, at: d.at + shift })).reverse();
          expect(diffDecisions(ds, moved).same).toBe(true);
          const i = drop % ds.length;
          const fewer = ds.filter((_, j) => j !== i);
          const d = diffDecisions(fewer, ds);
          expect(d.extra).toEqual([ds[i]]);
          expect(d.missing).toEqual([]);
          expect(diffDecisions(ds, fewer).missing).toEqual([ds[i]]);
        },
      ),
      { numRuns: 200 },
    );
    const [a] = fc.sample(decision, 1) as [Decision];
    expect(diffDecisions([a], [{ ...a, at: a.at + 1001 }]).same).toBe(false);
    expect(diffDecisions([a], [{ ...a, ruleVersion: `${a.ruleVersion}x` }]).versionChanged).toBe(1);
  });
});

describe('replay', () => {
  const set = parseRuleFile(
    'r.yaml',
    `
rules:
  - id: wd
    trigger: { devices: [a] }
    watchdog: { silence: 5s, then: [{ alert: "silent" }] }
`,
  );
  const f = (t: number, seq: number): RuleFrame => ({
    device: 'a',
    boot: 1,
    seq,
    time: t,
    records: [{ name: 'x', value: 1, time: t }],
  });

  it('runs timers on the virtual clock between frames and up to until', () => {
    const r = replay(set, [f(1000, 0), f(2000, 1), f(20_000, 2)], { since: 0, until: 30_000 });
    expect(r.decisions.map((d) => d.at)).toEqual([7000, 25_000]);
    expect(r).toMatchObject({ frames: 3, late: 0, from: 0, to: 30_000 });
  });

  it('lazy frames: only senders some rule listens to are decoded; the others still move the clock', () => {
    let decoded = 0;
    const lazy = (device: string, t: number, seq: number) => ({
      device,
      time: t,
      decode: () => (decoded++, { ...f(t, seq), device }),
    });
    const r = replay(set, [lazy('a', 1000, 0), lazy('zz', 3000, 0), lazy('zz', 9000, 1), lazy('a', 9500, 1)], {
      since: 0,
    });
    expect(decoded).toBe(2);
    expect(r).toMatchObject({ frames: 4, decoded: 2 });
    expect(r.decisions.map((d) => d.at)).toEqual([6000]); // a silent from 1 s: fired on the way to 9 s
  });

  it('a frame older than the clock is counted late and handled at the clock time', () => {
    const r = replay(set, [f(1000, 0), f(500, 1)]);
    expect(r).toMatchObject({ frames: 2, late: 1, from: 1000, to: 1000 });
  });
});
