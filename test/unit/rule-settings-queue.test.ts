/** A rule's settings decisions become requests in the real settings pending folder; the same values again from the same rule and device do not. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RuleSettingsQueue, type RuleSettingsDecision } from '../../gateway/actuation/rule-settings.js';
import { queueSettings } from '../../gateway/settings/inbox.js';
import type { SettingsRecord } from '../../protocols/settings.js';
import { memoryLogger, tempDir } from '../helpers/env.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const decision = (
  rule: string,
  device: string,
  values: [string, number | boolean | string][],
  at: number,
): RuleSettingsDecision => ({
  rule,
  ruleVersion: 'v1',
  at,
  inputs: [{ device, boot: 1, seq: at }],
  reason: 'test',
  action: { kind: 'settings', device, values },
});

describe('rule settings queue', () => {
  it('queues each change once per rule and device, as rule:<id> at the decision time; a bad record is a warning', () => {
    const t = tempDir('outpost-rule-settings-');
    cleanups.push(t.cleanup);
    const { log, lines } = memoryLogger();
    const q = new RuleSettingsQueue((r) => queueSettings(t.dir, r), log);
    const eco: [string, number | string][] = [
      ['interval', 30],
      ['mode', 'eco'],
    ];
    const normal: [string, number | string][] = [
      ['interval', 5],
      ['mode', 'normal'],
    ];
    expect([
      q.decide(decision('eco', 'n1', eco, 1000)),
      q.decide(decision('eco', 'n1', eco, 2000)), // fired again: nothing new
      q.decide(decision('eco', 'n1', normal, 3000)), // its onClear
      q.decide(decision('eco', 'n1', eco, 4000)), // on again: queued again
      q.decide(decision('eco', 'n2', eco, 5000)), // another device
      q.decide(decision('other', 'n1', eco, 6000)), // another rule
      q.decide(decision('eco', 'n1!', eco, 7000)), // a template that filled badly
      q.decide(decision('eco', 'n3', [['9lives', 1]], 8000)), // a custom rule's bad key
      q.decide(decision('eco', 'n3', [['a', 1]], 9000)), // still going
    ]).toEqual(['queued', 'unchanged', 'queued', 'queued', 'queued', 'queued', 'refused', 'refused', 'queued']);
    const dir = join(t.dir, 'settings-pending');
    const queued = readdirSync(dir)
      .sort()
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as SettingsRecord);
    expect(queued.map((r) => [r.at, r.by, r.device, r.values])).toEqual([
      [1000, 'rule:eco', 'n1', eco],
      [3000, 'rule:eco', 'n1', normal],
      [4000, 'rule:eco', 'n1', eco],
      [5000, 'rule:eco', 'n2', eco],
      [6000, 'rule:other', 'n1', eco],
      [9000, 'rule:eco', 'n3', [['a', 1]]],
    ]);
    const warned = lines.filter((l) => l.msg === 'settings action not queued');
    expect(warned.map((l) => [l.rule, l.device])).toEqual([
      ['eco', 'n1!'],
      ['eco', 'n3'],
    ]);
    expect(String(warned[0]!.err)).toMatch(/device id/);
    expect(String(warned[1]!.err)).toMatch(/setting key "9lives"/);
  });

  it('a refused record is not remembered: the same values queue once the disk takes them; no settings part drops with a warning', () => {
    const { log, lines } = memoryLogger();
    let full = true;
    const got: SettingsRecord[] = [];
    const q = new RuleSettingsQueue((r) => {
      if (full) throw new Error('disk-low');
      got.push(r);
    }, log);
    const d = decision('eco', 'n1', [['mode', 'eco']], 1000);
    expect(q.decide(d)).toBe('refused');
    full = false;
    expect(q.decide(d)).toBe('queued');
    expect(q.decide(d)).toBe('unchanged');
    expect(got).toHaveLength(1);
    expect(new RuleSettingsQueue(undefined, log).decide(d)).toBe('dropped');
    expect(lines.map((l) => l.msg)).toEqual([
      'settings action not queued',
      'settings action without the settings part: dropped',
    ]);
  });
});
