/**
 * Settings in the log and in frames: the `settings` blocks held (at start, and in the CLI on a
 * stopped or running gateway's store), and the settings a device reports in its readings
 * (SenML records `set.<key>`, protocols/settings.ts).
 */
import {
  type Block,
  type CborValue,
  decodeBody,
  decodeSign1,
  decodeSignedBlock,
  type SignedBlock,
  toHex,
} from '../../protocols/index.js';
import {
  decodeSettingsBody,
  SETTING_KEY,
  SETTING_RECORD_PREFIX,
  type SettingValue,
  type SettingVersion,
  type SettingsRecord,
} from '../../protocols/settings.js';
import { toRuleFrame } from '../../rules/frame.js';
import type { BlockLog } from '../log/block-log.js';
import type { FrameRow } from '../log/frames-index.js';
import { DesiredSettings } from './desired.js';

export interface SettingsBlock {
  readonly record: SettingsRecord;
  readonly version: SettingVersion;
  readonly hash: string;
}

/** The settings record of a block, with its version; undefined for another kind or a body that does not decode. */
export function settingsOf(sb: { readonly block: Block; readonly hash: Uint8Array }): SettingsBlock | undefined {
  if (sb.block.kind !== 'settings') return undefined;
  const r = decodeSettingsBody(sb.block.body as CborValue);
  if (!r.ok) return undefined;
  return { record: r.value, version: { lamport: sb.block.lamport, author: sb.block.author }, hash: toHex(sb.hash) };
}

/** Every settings block held, merged. */
export function desiredFromLog(log: BlockLog): DesiredSettings {
  const desired = new DesiredSettings();
  // `log-kinds` lists them: walking every stream's chain read the index entry of every frames block.
  for (const hash of log.hashesOfKind('settings')) {
    const env = log.getEnvelope(hash);
    const sb = env && decodeSignedBlock(env);
    const s = sb?.ok ? settingsOf(sb.value as SignedBlock) : undefined;
    if (s) desired.add(s.record, s.version, s.hash);
  }
  return desired;
}

export interface Reported {
  readonly values: Readonly<Record<string, SettingValue>>;
  /** Receive time of the reading they came in. */
  readonly at: number;
  readonly heardBy: string;
}

/** The settings a reading reports (its `set.<key>` records); undefined for a frame that is not a reading. */
export function reportedIn(row: Pick<FrameRow, 'device' | 'rxTime' | 'frame' | 'heardBy'>): Reported | undefined {
  const cose = decodeSign1(row.frame);
  if (!cose.ok) return undefined;
  const body = decodeBody(cose.value.payload);
  if (!body.ok) return undefined;
  const frame = toRuleFrame({ device: row.device, rxTime: row.rxTime }, body.value);
  if (!frame) return undefined;
  // Only well-formed keys (a device's record named `set.__proto__` is no setting); own properties only.
  const values = frame.records
    .filter((r) => r.name.startsWith(SETTING_RECORD_PREFIX))
    .map((r) => [r.name.slice(SETTING_RECORD_PREFIX.length), r.value] as const)
    .filter(([k]) => SETTING_KEY.test(k));
  return { values: Object.fromEntries(values), at: row.rxTime, heardBy: row.heardBy };
}

/** The settings reported by the device's latest reading in the merged history (whichever gateway heard it). */
export function latestReported(log: BlockLog, device: string, scan = 16): Reported | undefined {
  for (const row of log.frames.latest(device, scan)) {
    const r = reportedIn(row);
    if (r) return r;
  }
  return undefined;
}

export interface SettingsView {
  readonly desired: Record<
    string,
    { value: SettingValue; at: string; by: string | null; lamport: number; author: string }
  >;
  readonly reported: Record<string, SettingValue> | null;
  readonly reportedAt: string | null;
  /** Keys whose reported value differs from the desired one (or is not reported yet). */
  readonly pending: { key: string; desired: SettingValue; reported: SettingValue | null }[];
}

/** Desired vs reported for one device, as the API and the CLI show it. */
export function settingsView(
  desired: DesiredSettings,
  reported: Reported | undefined,
  device: string,
  authorName: (hex: string) => string,
): SettingsView {
  const want = [...(desired.get(device) ?? new Map())].sort(([a], [b]) => (a < b ? -1 : 1));
  const values = reported?.values ?? {};
  const got = (k: string): SettingValue | undefined => (Object.hasOwn(values, k) ? values[k] : undefined);
  return {
    desired: Object.fromEntries(
      want.map(([k, s]) => [
        k,
        {
          value: s.value,
          at: new Date(s.at).toISOString(),
          by: s.by ?? null,
          lamport: s.version.lamport,
          author: authorName(toHex(s.version.author)),
        },
      ]),
    ),
    reported: reported ? { ...values } : null,
    reportedAt: reported ? new Date(reported.at).toISOString() : null,
    pending: want
      .filter(([k, s]) => got(k) !== s.value)
      .map(([k, s]) => ({ key: k, desired: s.value, reported: got(k) ?? null })),
  };
}
