/**
 * Loads rule files by path: YAML (`.yaml`, `.yml`) or modules (`.ts`, `.js`, `.mjs`) whose
 * default export is a rule from `defineRule`, a list of them, or `{ rules, interlocks }`.
 */
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RuleError } from './errors.js';
import { parseRuleFile } from './parse.js';
import type { CustomRule, InterlockSpec, RuleSet, RuleSpec } from './types.js';

export async function loadRuleFile(path: string): Promise<RuleSet> {
  const file = resolve(path);
  const ext = extname(file);
  if (ext === '.yaml' || ext === '.yml') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new RuleError('rules/load', { file: path }, (e as Error).message);
    }
    return parseRuleFile(path, text);
  }
  if (!['.ts', '.js', '.mjs'].includes(ext))
    throw new RuleError('rules/load', { file: path }, 'a rule file is .yaml, .yml, .ts, .js or .mjs');
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (e) {
    throw new RuleError('rules/load', { file: path }, `cannot import: ${(e as Error).message.split('\n')[0]}`);
  }
  const d = mod.default;
  const isRule = (x: unknown): x is CustomRule =>
    typeof x === 'object' && x !== null && (x as CustomRule).kind === 'custom';
  const list = Array.isArray(d)
    ? d
    : isRule(d)
      ? [d]
      : typeof d === 'object' && d !== null && Array.isArray((d as RuleSet).rules)
        ? (d as RuleSet).rules
        : undefined;
  if (!list?.every(isRule))
    throw new RuleError(
      'rules/load',
      { file: path },
      'the default export must be defineRule(…), a list of them, or { rules, interlocks }',
    );
  const interlocks = (typeof d === 'object' && d !== null && !Array.isArray(d) && (d as RuleSet).interlocks) || [];
  return {
    rules: list.map((r) => ({ ...r, file: path })),
    interlocks: interlocks.map((i: InterlockSpec) => ({ ...i, file: path })),
  };
}

/** All files, merged; a rule or interlock id used twice (in any files) is an error naming both. */
export async function loadRuleFiles(paths: readonly string[]): Promise<RuleSet> {
  const rules: RuleSpec[] = [];
  const interlocks: InterlockSpec[] = [];
  const seen = new Map<string, string>();
  for (const p of paths) {
    const set = await loadRuleFile(p);
    for (const r of set.rules) {
      const other = seen.get(`rule:${r.id}`);
      if (other !== undefined)
        throw new RuleError('rules/duplicate', { file: p, rule: r.id, field: 'id' }, `rule id also used in ${other}`);
      seen.set(`rule:${r.id}`, p);
      rules.push(r);
    }
    for (const i of set.interlocks) {
      const other = seen.get(`interlock:${i.id}`);
      if (other !== undefined)
        throw new RuleError(
          'rules/duplicate',
          { file: p, rule: i.id, field: 'id' },
          `interlock id also used in ${other}`,
        );
      seen.set(`interlock:${i.id}`, p);
      interlocks.push(i);
    }
  }
  return { rules, interlocks };
}
