/** The `settings` rule action: parsed and checked at load (as a settings block checks them), filled per decision. */
import { map } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { defineRule } from '../../rules/dsl/define.js';
import { RuleError } from '../../rules/dsl/errors.js';
import { parseRuleFile } from '../../rules/dsl/parse.js';
import { actuationBody, decodeActuationBody } from '../../protocols/actuation.js';
import type { CborValue } from '../../protocols/index.js';
import { rulesHarness, T0 } from '../helpers/rules.js';

const rule = (settings: string): string => `rules:
  - id: eco
    trigger: { names: [bat] }
    when: "v.bat < 20.0"
    then:
      - settings: ${settings}
`;

function errorOf(text: string): RuleError {
  try {
    parseRuleFile('plant.yaml', text);
  } catch (e) {
    if (e instanceof RuleError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('settings action', () => {
  it('parses a templated device and values sorted by key, scalars kept as typed', () => {
    const set = parseRuleFile(
      'plant.yaml',
      rule('{ device: "{{device}}", values: { mode: eco, interval: 30, led: false, gain: -0.5 } }'),
    );
    const r = set.rules[0]!;
    expect(r.kind === 'condition' && r.then).toEqual([
      {
        kind: 'settings',
        device: '{{device}}',
        values: [
          ['gain', -0.5],
          ['interval', 30],
          ['led', false],
          ['mode', 'eco'],
        ],
      },
    ]);
  });

  it('a decision carries the device filled from the frame and the values as written', () => {
    const h = rulesHarness(rule('{ device: "{{device}}", values: { interval: 30, mode: eco } }'));
    h.frame(0, 'node-7', { bat: 50 });
    h.frame(1000, 'node-7', { bat: 15 });
    expect(h.decisions.map((d) => [d.at - T0, d.rule, d.action])).toEqual([
      [
        1000,
        'eco',
        {
          kind: 'settings',
          device: 'node-7',
          values: [
            ['interval', 30],
            ['mode', 'eco'],
          ],
        },
      ],
    ]);
    // The audit carries it as action kind 4 and reads it back the same.
    const d = h.decisions[0]!;
    const body = actuationBody([
      {
        type: 'decision',
        at: d.at,
        rule: d.rule,
        ruleVersion: d.ruleVersion,
        inputs: d.inputs,
        reason: d.reason,
        action: d.action,
      },
    ]) as unknown as [Map<number, unknown>];
    expect(body[0].get(14)).toEqual([
      4,
      'node-7',
      [
        ['interval', 30],
        ['mode', 'eco'],
      ],
    ]);
    const back = decodeActuationBody(body as unknown as CborValue);
    expect(back.ok && back.value[0]).toMatchObject({ type: 'decision', action: d.action });
  });

  it("a TypeScript rule's settings may come in any order: the decision holds them sorted, as the audit does", () => {
    const r = defineRule({
      id: 'ts-eco',
      trigger: { names: ['bat'] },
      operator: () =>
        map((f) => ({
          inputs: [f],
          reason: 'low',
          action: {
            kind: 'settings',
            device: f.device,
            values: [
              ['mode', 'eco'],
              ['interval', 30],
            ],
          },
        })),
    });
    const h = rulesHarness({ rules: [r], interlocks: [] });
    h.frame(0, 'n1', { bat: 10 });
    expect(h.decisions.map((d) => d.action)).toEqual([
      {
        kind: 'settings',
        device: 'n1',
        values: [
          ['interval', 30],
          ['mode', 'eco'],
        ],
      },
    ]);
  });

  it('load errors name the rule and the field: bad keys, values, devices and shapes', () => {
    const cases: [string, string, RegExp][] = [
      [
        '{ device: n1, values: { 9lives: 1 } }',
        'then[0].settings.values.9lives',
        /setting key "9lives" must be a letter/,
      ],
      ['{ device: n1, values: { "a b": 1 } }', 'then[0].settings.values.a b', /setting key/],
      [
        '{ device: n1, values: { mode: [1, 2] } }',
        'then[0].settings.values.mode',
        /a setting is a number, a boolean or text/,
      ],
      ['{ device: n1, values: { mode: ~ } }', 'then[0].settings.values.mode', /must have a value/],
      [
        `{ device: n1, values: { mode: "${'x'.repeat(65)}" } }`,
        'then[0].settings.values.mode',
        /at most 64 characters/,
      ],
      ['{ device: n1, values: { big: 1e300 } }', 'then[0].settings.values.big', /within ±2\^53/],
      ['{ device: n1, values: {} }', 'then[0].settings.values', /1\.\.16 settings/],
      ['{ device: n1, values: [a, b] }', 'then[0].settings.values', /must be a mapping/],
      ['{ device: n1 }', 'then[0].settings.values', /must be a mapping/],
      ['{ device: "no such device!", values: { a: 1 } }', 'then[0].settings.device', /is not a device id/],
      ['{ values: { a: 1 } }', 'then[0].settings.device', /non-empty string/],
      ['{ device: n1, values: { a: 1 }, ttl: 5s }', 'then[0].settings.ttl', /unknown key "ttl"/],
    ];
    for (const [settings, field, detail] of cases) {
      const e = errorOf(rule(settings));
      expect(e.at, settings).toMatchObject({ file: 'plant.yaml', rule: 'eco', field });
      expect(e.detail, settings).toMatch(detail);
      expect(e.message).toMatch(/^plant\.yaml:6:\d+: rule "eco", field "then\[0\]\.settings/);
    }
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i]));
    expect(errorOf(rule(`{ device: n1, values: ${JSON.stringify(many)} }`)).detail).toMatch(/1\.\.16 settings/);
    const two = errorOf(rule('{ device: n1, values: { a: 1 } }\n        alert: both'));
    expect(two.detail).toMatch(/exactly one of command, publish, alert, settings/);
  });
});
