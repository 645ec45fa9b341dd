/** Rule files: validation errors name file, rule, field and line; versions; defineRule; isolation. */
import { map, mergeMap } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { defineRule } from '../../rules/dsl/define.js';
import { RuleError } from '../../rules/dsl/errors.js';
import { parseRuleFile } from '../../rules/dsl/parse.js';
import { rulesHarness } from '../helpers/rules.js';

function errorOf(text: string): RuleError {
  try {
    parseRuleFile('plant.yaml', text);
  } catch (e) {
    if (e instanceof RuleError) return e;
    throw e;
  }
  throw new Error('no error');
}

const good = `rules:
  - id: hot
    trigger: { names: [t] }
    when: "v.t > 30.0"
    then: [{ alert: "hot" }]
`;

describe('rules DSL validation', () => {
  it('errors name the file, the rule, the field and the line', () => {
    const e = errorOf(`rules:
  - id: hot
    trigger: { names: [t] }
    window: { sliding: 5 parsecs }
    when: "v.t > 30.0"
    then: [{ alert: "hot" }]
`);
    expect(e.code).toBe('rules/shape');
    expect(e.at).toMatchObject({ file: 'plant.yaml', rule: 'hot', field: 'window.sliding', line: 4 });
    expect(e.message).toMatch(/^plant\.yaml:4:\d+: rule "hot", field "window\.sliding": must be a duration/);
  });

  it('a CEL error (unknown variable) is caught at load time, with its line', () => {
    const e = errorOf(good.replace('v.t > 30.0', 'vib > 3'));
    expect(e.code).toBe('rules/cel');
    expect(e.at).toMatchObject({ rule: 'hot', field: 'when', line: 4 });
    expect(e.detail).toMatch(/Unknown variable: vib/);
    expect(errorOf(good.replace('v.t > 30.0', 'v.t >')).code).toBe('rules/cel');
    expect(errorOf(good.replace('v.t > 30.0', '1 + 2')).detail).toMatch(/boolean/);
  });

  it('unknown keys, bad actions, unknown states and duplicate ids are named', () => {
    expect(errorOf(good.replace('when:', 'whne:')).message).toMatch(/rule "hot".*unknown key "whne"/);
    const a = errorOf(good.replace('{ alert: "hot" }', '{ command: { device: c, actuator: s, value: 1 } }'));
    expect(a.at).toMatchObject({ rule: 'hot', field: 'then[0].command.ttl' });
    const m = errorOf(`rules:
  - id: m
    machine:
      initial: a
      states: { a: {}, b: {} }
      transitions:
        - { from: a, to: c, after: 1s }
`);
    expect(m.at).toMatchObject({ rule: 'm', field: 'machine.transitions[0].to', line: 7 });
    expect(m.code).toBe('rules/reference');
    expect(errorOf(good + good.replace('rules:\n', '')).code).toBe('rules/duplicate');
    expect(errorOf('rules:\n  - id: "bad id"\n').at).toMatchObject({ rule: 'rules[0]', field: 'id' });
    expect(errorOf('rules: [\n').code).toBe('rules/yaml');
  });

  it('the version is a content hash: same definition, same version; any change, a new one', () => {
    const v1 = parseRuleFile('a.yaml', good).rules[0]!.version;
    expect(parseRuleFile('b.yaml', good.replace('    ', '    ')).rules[0]!.version).toBe(v1);
    expect(parseRuleFile('a.yaml', good.replace('30.0', '31.0')).rules[0]!.version).not.toBe(v1);
    expect(v1).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe('defineRule and isolation', () => {
  it('a rule that throws is logged, counted and restarted; the other rules keep running', () => {
    const yaml = parseRuleFile('t.yaml', good);
    const bomb = defineRule({
      id: 'bomb',
      trigger: { names: ['t'] },
      operator: () =>
        map((f) => {
          if (f.records[0]!.value === 13) throw new Error('unlucky');
          return {
            inputs: [f],
            reason: 'seen',
            action: { kind: 'alert', message: `bomb ${String(f.records[0]!.value)}` },
          };
        }),
    });
    const errors: string[] = [];
    const h = rulesHarness({ rules: [bomb, ...yaml.rules], interlocks: [] });
    (h.engine as unknown as { opts: { log: unknown } }).opts.log = {
      warn() {},
      error: (o: { err: string }) => errors.push(o.err),
    };
    h.frame(0, 'd', { t: 13 });
    h.frame(1, 'd', { t: 31 });
    h.frame(2, 'd', { t: 12 });
    expect(h.log()).toEqual(['1 alert bomb 31', '1 alert hot', '2 alert bomb 12']);
    const s = h.engine.stats().find((x) => x.id === 'bomb')!;
    expect(s).toMatchObject({ errors: 1, disabled: false, lastError: 'unlucky' });
    expect(errors).toEqual(['unlucky']);
  });

  it('a rule that keeps throwing is disabled after maxRestarts; a throwing sink is counted', () => {
    const always = defineRule({
      id: 'always',
      operator: () =>
        mergeMap(() => {
          throw new Error('no');
        }),
    });
    const yaml = parseRuleFile('t.yaml', good);
    const h = rulesHarness({ rules: [always, ...yaml.rules], interlocks: [] }, { maxRestarts: 2 });
    for (let i = 0; i < 5; i++) h.frame(i, 'd', { t: i % 2 ? 31 : 1 });
    expect(h.engine.stats()[0]).toMatchObject({ errors: 3, disabled: true });
    expect(h.log()).toEqual(['1 alert hot', '3 alert hot']);
    expect(
      defineRule({
        id: 'x',
        operator: () => map(() => ({ inputs: [], reason: '', action: { kind: 'alert', message: '' } })),
      }).version,
    ).toMatch(/^[0-9a-f]{12}$/);
    expect(() => defineRule({ id: 'bad id', operator: () => map((x) => x as never) })).toThrow(RuleError);
  });
});

describe('rule files by path', () => {
  it('YAML and TypeScript rule files load together; a clash of ids names both files', async () => {
    const { loadRuleFiles } = await import('../../rules/dsl/load.js');
    const set = await loadRuleFiles(['rules/examples/intersection/rules.yaml', 'test/fixtures/rules/door-open.ts']);
    expect(set.rules.map((r) => `${r.id}:${r.kind}:${r.file}`)).toEqual([
      'intersection:machine:rules/examples/intersection/rules.yaml',
      'door-open:custom:test/fixtures/rules/door-open.ts',
    ]);
    const h = rulesHarness({ rules: set.rules.filter((r) => r.kind === 'custom'), interlocks: [] });
    h.frame(0, 'door-7', { door: true }, { model: 'door-1' });
    h.frame(1, 'door-7', { door: false }, { model: 'door-1' });
    expect(h.log()).toEqual(['0 alert door-7 open']);
    await expect(
      loadRuleFiles(['test/fixtures/rules/door-open.ts', 'test/fixtures/rules/door-open.ts']),
    ).rejects.toThrow(/rule "door-open".*also used in test\/fixtures\/rules\/door-open\.ts/);
    await expect(loadRuleFiles(['nope.yaml'])).rejects.toMatchObject({ code: 'rules/load' });
    await expect(loadRuleFiles(['rules/README.md'])).rejects.toMatchObject({ code: 'rules/load' });
  });
});
