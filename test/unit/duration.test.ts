/**
 * protocols/duration.ts: the one duration parser, and what each place that reads durations
 * makes of it (rule files, log.retention and a policy's retention, the CLI's --since/--until).
 */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseTime } from '../../gateway/cli/args.js';
import { validateConfig } from '../../gateway/config.js';
import { parseRetention } from '../../gateway/log/retention.js';
import { parseDuration } from '../../protocols/duration.js';
import { RuleError } from '../../rules/dsl/errors.js';
import { parseRuleFile } from '../../rules/dsl/parse.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

describe('parseDuration', () => {
  it('reads a number and a unit, forever, and a bare number as seconds', () => {
    expect(
      ['250ms', '5s', '1.5m', '2h', '30d', '2w', '1y', '3600 s', ' 7d ', 'forever', '90', 90, 0.25, '0s'].map(
        parseDuration,
      ),
    ).toEqual([
      250,
      5000,
      90_000,
      7_200_000,
      2_592_000_000,
      1_209_600_000,
      31_536_000_000,
      3_600_000,
      604_800_000,
      Infinity,
      90_000,
      90_000,
      250,
      0,
    ]);
  });

  it('anything else is undefined: other units, signs, words, non-strings, overlong text', () => {
    for (const v of ['5 parsecs', '-5s', '5sec', '1e3s', 's', '', '30 days', 'Forever', '5s5', '1'.repeat(40), -1, NaN])
      expect(parseDuration(v), String(v)).toBeUndefined();
    for (const v of [null, undefined, {}, [], true, Infinity]) expect(parseDuration(v)).toBeUndefined();
  });

  it('a number with any unit reads back as that many of the unit, in whole ms (property)', () => {
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.constantFrom(...(Object.keys(UNIT_MS) as (keyof typeof UNIT_MS)[])),
        (n, unit) => {
          expect(parseDuration(`${n}${unit}`)).toBe(n * UNIT_MS[unit]);
        },
      ),
    );
  });

  it('any input gives whole ms ≥ 0, Infinity or undefined, never a throw (property)', () => {
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.double(), fc.anything()), (v) => {
        const ms = parseDuration(v);
        expect(ms === undefined || ms === Infinity || (Number.isSafeInteger(ms) && ms >= 0)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('what each reader makes of a duration', () => {
  const rule = (forValue: string): string => `rules:
  - id: hot
    trigger: { names: [t] }
    when: "v.t > 30.0"
    for: ${forValue}
    then: [{ alert: "hot" }]
`;
  const forMs = (v: string): number | undefined => {
    const r = parseRuleFile('r.yaml', rule(v)).rules[0]!;
    return r.kind === 'condition' ? r.forMs : undefined;
  };

  it('rule files: units as written, a bare number is seconds, forever is refused', () => {
    expect([forMs('500ms'), forMs('1.5s'), forMs('2')]).toEqual([500, 1500, 2000]);
    expect(() => forMs('forever')).toThrow(RuleError);
  });

  it('retention (log.retention, a policy): above zero or forever; a bare number is seconds', () => {
    expect([parseRetention('12h'), parseRetention(3600), parseRetention('forever')]).toEqual([
      43_200_000,
      3_600_000,
      Infinity,
    ]);
    expect([parseRetention('0d'), parseRetention(0), parseRetention('soon')]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(() => validateConfig({ log: { retention: { default: '0d' } } })).toThrow(/log\.retention/);
    expect(validateConfig({ log: { retention: { default: '1y', hot: 3600 } } }).log.retention).toEqual({
      default: '1y',
      hot: 3600,
    });
  });

  it('CLI times: a duration with a unit is that long ago; digits alone are epoch ms; else a date', () => {
    const now = 1_800_000_000_000;
    expect(parseTime('15m', '--since', now)).toBe(now - 900_000);
    expect(parseTime('1.5h', '--since', now)).toBe(now - 5_400_000);
    expect(parseTime('1700000000000', '--since', now)).toBe(1_700_000_000_000);
    expect(parseTime('2026-01-02T00:00:00Z', '--since', now)).toBe(Date.parse('2026-01-02T00:00:00Z'));
    expect(() => parseTime('forever', '--since', now)).toThrow(/is not a time/);
  });
});
