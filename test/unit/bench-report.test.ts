/**
 * The benchmark report's own logic (one report of every figure, each with its goal
 * and pass/fail; a chart). No bench is run here: timings belong in bench/, never in tests.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { capabilityOf, discover } from '../../bench/lib/discover.js';
import { goalScore, type ReportRow, renderSvg } from '../../bench/lib/report-svg.js';

const row = (r: Partial<ReportRow>): ReportRow => ({
  capability: 'c',
  bench: 'b',
  figure: 'f',
  value: 1,
  unit: '',
  ...r,
});

describe('bench discovery', () => {
  const files: Record<string, string> = {
    'ingest.ts': "writeFileSync(new URL('./results/ingest.json', import.meta.url), …)",
    'rules.ts': "writeFileSync(join(import.meta.dirname, 'results', 'rules.json'), …)",
    'zeta.ts': "writeFileSync('bench/results/zeta.json')",
    'sync.ts': "writeFileSync(new URL('./results/sync.json'))",
    'load-generator.ts': "writeFileSync('results')", // a helper, even if it mentions results
    'report.ts': "writeFileSync('results/report.json')",
    'helper.ts': 'export const x = 1;', // writes no results: not a bench
    'scratch.tmp.ts': "writeFileSync('results/x.json')",
    'README.md': 'results writeFileSync',
  };
  it('finds every bench that writes under results, skips helpers, known ones first in report order', () => {
    expect(discover(Object.keys(files), (f) => files[f]!)).toEqual(['ingest', 'sync', 'rules', 'zeta']);
  });
  it('names the capability from the file name, new benches by their own name', () => {
    expect(capabilityOf('sync')).toBe('sibling sync');
    expect(capabilityOf('policy-crypto')).toBe('policy');
    expect(capabilityOf('rules-replay')).toBe('rules');
    expect(capabilityOf('brand-new')).toBe('brand-new');
  });
});

describe('goal score (how far a goal is met, > 1 is better)', () => {
  it('≥ goals divide the value by the goal, ≤ goals the goal by the value', () => {
    expect(goalScore(row({ value: 300, goal: '>= 100x', unit: 'x line' }))).toBe(3);
    expect(goalScore(row({ value: 400, unit: 'MB', goal: '<= 200 MB' }))).toBe(0.5);
    expect(goalScore(row({ value: 1.0011, unit: 'x', goal: '<= 1.05' }))).toBeCloseTo(1.05 / 1.0011, 9);
    expect(goalScore(row({ value: 98, unit: '%', goal: '>= 95%' }))).toBeCloseTo(98 / 95, 9);
  });
  it('a goal written as a multiple ("≥ 1.5x") is read against the ratio to the baseline', () => {
    expect(goalScore(row({ value: 6000, unit: 'frames/s', ratio: 0.75, goal: '>= 1.5x' }))).toBe(0.5);
  });
  it('a goal that is not a number has no score', () => {
    expect(goalScore(row({ goal: 'runs' }))).toBeUndefined();
    expect(goalScore(row({ goal: undefined }))).toBeUndefined();
    expect(goalScore(row({ value: undefined, goal: '<= 2' }))).toBeUndefined();
  });
  it('the score agrees with pass/fail at the goal for any value (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-3, max: 1e6, noNaN: true }),
        fc.double({ min: 1e-3, max: 1e6, noNaN: true }),
        fc.boolean(),
        (value, goal, upper) => {
          const s = goalScore(row({ value, unit: 'ms', goal: `${upper ? '<=' : '>='} ${goal}` }))!;
          const pass = upper ? value <= Number(String(goal)) : value >= Number(String(goal));
          // Scores within rounding of 1 may sit either side.
          if (Math.abs(s - 1) > 1e-9) expect(s >= 1).toBe(pass);
        },
      ),
    );
  });
});

describe('report chart', () => {
  it('one bar per row with a goal, coloured by pass/fail, text escaped', () => {
    const svg = renderSvg(
      [
        row({ figure: 'a <b> & c', goal: '<= 2 ms', value: 1, pass: true }),
        row({ figure: 'fails', goal: '>= 10', value: 1, pass: false }),
        row({ figure: 'no goal', value: 5 }),
        row({ figure: 'x bench run: exit 1', value: undefined, goal: 'runs', pass: false }),
      ],
      't',
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('a &lt;b&gt; &amp; c');
    expect(svg).not.toContain('no goal');
    expect(svg.match(/<rect x="\d/g)).toHaveLength(3);
    expect(svg.match(/fill="#c62828"\/>/g)).toHaveLength(2);
  });
});
