/**
 * `gateway devices set ID key=value…` and `gateway devices settings ID`: desired settings of a
 * device (gateway/settings/README.md). `set` hands the request to the running gateway through
 * `<dataDir>/settings-pending` (gateway/settings/inbox.ts), which logs it as a signed settings
 * block; `settings` reads the log: desired (last writer across siblings), reported (the
 * device's latest reading, whichever gateway heard it) and the keys still pending.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ID_PATTERN, ProtocolUsageError } from '../../protocols/index.js';
import { MAX_SETTINGS, type SettingValue, settingKeyProblem, settingValueProblem } from '../../protocols/settings.js';
import { queueSettings } from '../settings/inbox.js';
import { desiredFromLog, latestReported, settingsView } from '../settings/log.js';
import { DiskLowError } from '../store/free-space.js';
import { CliError, dataDirSpace, parseWait, reportQueued, resolveConfig, UsageError } from './args.js';
import { toJson } from './json.js';
import { openFrames } from './log-reader.js';

/** `key=value …` as `gateway devices set` takes them (text quoted, so `"5"` reads back as text). */
export const settingsText = (pairs: readonly (readonly [string, SettingValue])[]): string =>
  pairs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/** `true`/`false` → boolean, a JSON number → number, `"…"` → that text (so `"5"` stays text), else the text as is. */
export function parseSettingValue(text: string): SettingValue {
  if (text === 'true' || text === 'false') return text === 'true';
  if (NUMBER.test(text)) return Number(text);
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) {
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v === 'string') return v;
    } catch {
      /* not JSON text: taken as written */
    }
  }
  return text;
}

/** key=value arguments as sorted pairs; a UsageError names the first bad one. */
export function parseAssignments(args: readonly string[]): [string, SettingValue][] {
  if (args.length === 0) throw new UsageError('set needs at least one key=value');
  if (args.length > MAX_SETTINGS) throw new UsageError(`at most ${MAX_SETTINGS} settings at a time`);
  const out = new Map<string, SettingValue>();
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new UsageError(`"${a}" is not key=value`);
    const key = a.slice(0, eq);
    const value = parseSettingValue(a.slice(eq + 1));
    const problem = settingKeyProblem(key) ?? settingValueProblem(value);
    if (problem !== undefined) throw new UsageError(`${a}: ${problem}`);
    if (out.has(key)) throw new UsageError(`setting "${key}" given twice`);
    out.set(key, value);
  }
  return [...out].sort(([a], [b]) => (a < b ? -1 : 1));
}

export async function setSettings(
  values: { config?: string | undefined; data?: string | undefined; wait?: string | undefined },
  positionals: readonly string[],
): Promise<number> {
  const [device, ...assignments] = positionals;
  if (device === undefined || !ID_PATTERN.test(device)) throw new UsageError('set needs a device id, then key=value…');
  const pairs = parseAssignments(assignments);
  const wait = parseWait(values.wait);
  const cfg = resolveConfig(values);
  const dataDir = resolve(cfg.gateway.dataDir);
  if (existsSync(resolve(dataDir, 'outpost.lmdb'))) {
    // A device neither enrolled here nor known through a sibling's enrolment is a typo, most likely.
    const f = openFrames(values);
    try {
      const known =
        cfg.devices.some((d) => d.id === device) ||
        f.store.devices.get(device) !== undefined ||
        f.log.loggedKeys(device).length > 0;
      if (!known) throw new CliError(`no device "${device}" is enrolled here or by a sibling`);
    } finally {
      await f.close();
    }
  }
  let file: string;
  try {
    file = queueSettings(dataDir, { device, values: pairs, at: Date.now(), by: 'cli' }, dataDirSpace(cfg));
  } catch (e) {
    if (e instanceof ProtocolUsageError || e instanceof DiskLowError) throw new CliError(e.message);
    throw e;
  }
  const text = settingsText(pairs);
  return reportQueued(file, wait, {
    queued: `queued for ${device}: ${text} (the running gateway logs it within a second)`,
    logged: `logged for ${device}: ${text}`,
    dataDir,
  });
}

export async function showSettings(
  values: { config?: string | undefined; data?: string | undefined; json?: boolean | undefined },
  positionals: readonly string[],
): Promise<number> {
  const [device] = positionals;
  if (device === undefined || positionals.length !== 1 || !ID_PATTERN.test(device))
    throw new UsageError('settings needs one device id');
  const f = openFrames(values);
  try {
    const desired = desiredFromLog(f.log);
    const view = settingsView(desired, latestReported(f.log, device), device, (h) => f.authors.name(h));
    if (values.json) {
      console.log(toJson({ device, ...view }));
      return 0;
    }
    const keys = Object.keys(view.desired);
    if (keys.length === 0) console.log(`${device}: no desired settings`);
    const pending = new Set(view.pending.map((p) => p.key));
    for (const k of keys) {
      const d = view.desired[k]!;
      const got = view.reported && Object.hasOwn(view.reported, k) ? JSON.stringify(view.reported[k]) : '-';
      console.log(
        `${k.padEnd(24)} desired ${JSON.stringify(d.value).padEnd(16)} reported ${got.padEnd(16)} ${pending.has(k) ? 'PENDING' : 'in sync'}  (${d.author}, lamport ${d.lamport}, ${d.at})`,
      );
    }
    console.log(
      view.reportedAt ? `reported in the reading of ${view.reportedAt}` : `${device} has not reported settings yet`,
    );
    return 0;
  } finally {
    await f.close();
  }
}
