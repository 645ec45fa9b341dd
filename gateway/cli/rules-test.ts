/**
 * `gateway rules test`: the dry run. Stored frames in receive-time order through a rule set on
 * a virtual clock (rules/replay), the decisions printed as a table or JSON, optionally diffed
 * against the decisions actually taken (the log's actuation blocks, or a JSONL file).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { RESENT_REASON, readDecisions } from '../../rules/actuation/index.js';
import type { Decision } from '../../rules/decision.js';
import { loadRuleFiles } from '../../rules/dsl/load.js';
import { RuleError } from '../../rules/dsl/errors.js';
import type { RuleSet } from '../../rules/dsl/types.js';
import { type DecisionDiff, diffDecisions } from '../../rules/replay/diff.js';
import { decisionToJson, parseDecisionsJsonl } from '../../rules/replay/jsonl.js';
import { type LazyFrame, replay } from '../../rules/replay/replay.js';
import { storedToRuleFrame } from '../../rules/replay/stored.js';
import { actuationBlocks } from '../actuation/journal.js';
import type { BlockLog } from '../log/block-log.js';
import { settingsText } from './device-settings.js';
import { openFrames } from './log-reader.js';
import { CliError, commonOptions, parseTime, resolveConfig, UsageError } from './args.js';

export const rulesTestHelp = `gateway rules test [FILE]... [--since T] [--until T] [--json | --jsonl] [--diff | --against FILE] [--tolerance MS]
  Dry run: replays the site's frames (every frame this gateway holds, whichever gateway heard
  it, once) in time order through the rule files (default: the config's
  rules.files) on a virtual clock and prints the decisions they would have made: a table, a
  JSON report (--json) or one decision per line (--jsonl). T is 15m, 2h, 7d, an ISO date or
  epoch ms (default: all stored frames). --diff compares with the decisions actually taken
  (the log's actuation blocks), --against with a decisions JSONL file; exit 1 if they differ.`;

interface Options {
  since?: string | undefined;
  until?: string | undefined;
  json?: boolean | undefined;
  jsonl?: boolean | undefined;
  diff?: boolean | undefined;
  against?: string | undefined;
  tolerance?: string | undefined;
  config?: string | undefined;
  data?: string | undefined;
}

export async function rulesTest(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...commonOptions,
      since: { type: 'string' },
      until: { type: 'string' },
      json: { type: 'boolean' },
      jsonl: { type: 'boolean' },
      diff: { type: 'boolean' },
      against: { type: 'string' },
      tolerance: { type: 'string' },
    },
  });
  if (values.help) {
    console.log(rulesTestHelp);
    return 0;
  }
  const o: Options = values;
  if (o.json && o.jsonl) throw new UsageError('give --json or --jsonl, not both');
  if (o.diff && o.against !== undefined) throw new UsageError('give --diff or --against, not both');
  const tolerance = o.tolerance === undefined ? 1000 : Number(o.tolerance);
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new UsageError('--tolerance must be milliseconds ≥ 0');
  const now = Date.now();
  const since = o.since !== undefined ? parseTime(o.since, '--since', now) : undefined;
  const until = o.until !== undefined ? parseTime(o.until, '--until', now) : undefined;
  const cfg = resolveConfig(o);
  const files = positionals.length > 0 ? positionals : cfg.rules.files;
  if (files.length === 0) throw new UsageError('no rule files: name them, or set rules.files in the config');
  let ruleSet: RuleSet;
  try {
    ruleSet = await loadRuleFiles(files);
  } catch (e) {
    if (e instanceof RuleError) throw new CliError(e.message);
    throw e;
  }
  const taken = o.against !== undefined ? readAgainst(o.against) : undefined;
  const dataDir = resolve(cfg.gateway.dataDir);
  if (!existsSync(join(dataDir, 'outpost.lmdb'))) throw new CliError(`no store in ${dataDir}`);
  const cli = openFrames(o);
  const store = cli.store;
  try {
    const info = new Map<string, { model?: string | undefined; site?: string | undefined }>();
    // lazily decoded: frames of devices no rule listens to only move the clock
    const frames = function* (): Generator<LazyFrame> {
      for (const f of cli.frames.query({
        ...(since !== undefined && { since }),
        ...(until !== undefined && { until }),
      })) {
        let i = info.get(f.device);
        if (!i) {
          const d = store.devices.get(f.device);
          i = { model: d?.model, site: d?.site };
          info.set(f.device, i);
        }
        const sender = i;
        yield {
          device: f.device,
          model: sender.model,
          site: sender.site,
          time: f.rxTime,
          decode: () => storedToRuleFrame(f, sender),
        };
      }
    };
    const t0 = performance.now();
    const result = replay(ruleSet, frames(), {
      ...(since !== undefined && { since }),
      ...(until !== undefined && { until }),
    });
    const ms = performance.now() - t0;
    let against = taken;
    if (o.diff) against = loggedDecisions(cli.log);
    const ids = new Set(ruleSet.rules.map((r) => r.id));
    const inRange = (d: Decision): boolean =>
      ids.has(d.rule) && d.at >= result.from - tolerance && d.at <= result.to + tolerance;
    const diff = against
      ? diffDecisions(against.filter(inRange), result.decisions, { toleranceMs: tolerance })
      : undefined;
    if (o.jsonl) for (const d of result.decisions) console.log(decisionToJson(d));
    else if (o.json)
      console.log(
        JSON.stringify(
          {
            from: result.from,
            to: result.to,
            frames: result.frames,
            decoded: result.decoded,
            ms: Math.round(ms),
            rules: result.stats,
            decisions: result.decisions,
            ...(diff && { diff: diffJson(diff) }),
          },
          null,
          2,
        ),
      );
    else printTable(result.decisions, result.frames, result.from, result.to, ms, diff);
    return diff && !diff.same ? 1 : 0;
  } finally {
    await cli.close();
  }
}

function readAgainst(file: string): Decision[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`--against ${file}: ${(e as Error).message}`);
  }
  const { decisions, errors } = parseDecisionsJsonl(text);
  if (errors.length > 0)
    throw new CliError(
      `--against ${file}:${errors[0]!.line}: ${errors[0]!.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`,
    );
  return decisions;
}

/**
 * Decisions this gateway's rules recorded in the log's actuation blocks (siblings decided on the
 * frames they ingested, not these; a desired state re-sent when its device was heard is the
 * actuation's, not a rule's, so a replay does not make it).
 */
function loggedDecisions(log: BlockLog): Decision[] {
  return readDecisions(actuationBlocks(log)).decisions.filter(
    (d) => d.author === log.author && !d.reason.startsWith(RESENT_REASON),
  );
}

const iso = (t: number): string => new Date(t).toISOString();

function describe(d: Decision): string {
  const a = d.action;
  if (a.kind === 'command')
    return `command ${a.command.device}.${a.command.actuator}=${String(a.command.value)} (ttl ${a.command.ttlMs} ms)`;
  if (a.kind === 'publish') return `publish ${a.topic} ${a.payload}`;
  if (a.kind === 'settings') return `settings ${a.device} ${settingsText(a.values)}`;
  return `alert ${a.message}`;
}

const inputs = (d: Decision): string =>
  d.inputs
    .map((i) => `${i.device}/${i.boot}/${i.seq}`)
    .slice(-3)
    .join(' ') + (d.inputs.length > 3 ? ` (+${d.inputs.length - 3})` : '');

function printTable(
  ds: readonly Decision[],
  frames: number,
  from: number,
  to: number,
  ms: number,
  diff?: DecisionDiff,
): void {
  console.log(
    `${frames} frames from ${iso(from)} to ${iso(to)} replayed in ${Math.round(ms)} ms: ${ds.length} decisions`,
  );
  const rows = ds.map((d) => [iso(d.at), `${d.rule}@${d.ruleVersion}`, describe(d), inputs(d), d.reason]);
  if (rows.length > 0) {
    const head = ['time', 'rule', 'action', 'inputs', 'why'];
    const w = head.map((h, c) => Math.min(60, Math.max(h.length, ...rows.map((r) => r[c]!.length))));
    for (const r of [head, ...rows])
      console.log(r.map((x, c) => (c === r.length - 1 ? x : x.padEnd(w[c]!))).join('  '));
  }
  if (diff) {
    console.log(
      `diff against the decisions taken: ${diff.matched.length} same, ${diff.missing.length} taken but not in the dry run, ${diff.extra.length} only in the dry run${diff.versionChanged ? `, ${diff.versionChanged} by a changed rule version` : ''}`,
    );
    for (const d of diff.missing) console.log(`- ${iso(d.at)} ${d.rule}@${d.ruleVersion} ${describe(d)}`);
    for (const d of diff.extra) console.log(`+ ${iso(d.at)} ${d.rule}@${d.ruleVersion} ${describe(d)}`);
  }
}

const diffJson = (d: DecisionDiff): object => ({
  same: d.same,
  matched: d.matched.length,
  versionChanged: d.versionChanged,
  missing: d.missing,
  extra: d.extra,
});

export const rulesCheckHelp = `gateway rules check [FILE]... [--json]
  Loads rule files (default: the config's rules.files) and lists each rule's id, kind and
  version (content hash); an error names file:line, rule and field. Exit 1 on an error.`;

export async function rulesCheck(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...commonOptions, json: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(rulesCheckHelp);
    return 0;
  }
  const files = positionals.length > 0 ? positionals : resolveConfig(values).rules.files;
  if (files.length === 0) throw new UsageError('no rule files: name them, or set rules.files in the config');
  let set: RuleSet;
  try {
    set = await loadRuleFiles(files);
  } catch (e) {
    if (e instanceof RuleError) throw new CliError(e.message);
    throw e;
  }
  const rules = set.rules.map((r) => ({ id: r.id, kind: r.kind, version: r.version, file: r.file }));
  const interlocks = set.interlocks.map((i) => ({ id: i.id, file: i.file, never: i.never.length }));
  if (values.json) console.log(JSON.stringify({ rules, interlocks }, null, 2));
  else {
    for (const r of rules) console.log(`${r.id}  ${r.kind}  ${r.version}  ${r.file}`);
    for (const i of interlocks) console.log(`interlock ${i.id}  (${i.never} states)  ${i.file}`);
    console.log(`${rules.length} rules, ${interlocks.length} interlocks: ok`);
  }
  return 0;
}
