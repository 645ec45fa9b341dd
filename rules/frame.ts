/**
 * The frame shape rules consume. rules/ never imports gateway/: the gateway (live) and the
 * replay reader adapt their frames to this with `toRuleFrame`.
 */
import { RELATIVE_TIME_LIMIT, type ReadingBody, type ResolvedRecord, readingRecords } from '../protocols/index.js';
import type { FrameRef } from './decision.js';

export type RecordValue = number | boolean | string;

export interface RuleRecord {
  /** SenML name with the `{device}:` base-name prefix removed (`press-01:vib` → `vib`). */
  readonly name: string;
  readonly value: RecordValue;
  /** Record time, ms since the epoch (relative SenML times resolved against the frame time). */
  readonly time: number;
}

export interface RuleFrame extends FrameRef {
  readonly model?: string;
  readonly site?: string;
  /** When the gateway received it (ms since the epoch): the time rules reason in. */
  readonly time: number;
  readonly records: readonly RuleRecord[];
}

export interface FrameSource {
  readonly device: string;
  readonly model?: string | undefined;
  readonly site?: string | undefined;
  /** Receive time, ms since the epoch. */
  readonly rxTime: number;
}

/**
 * A reading body (already verified and decoded) as a rule frame; undefined for bodies that
 * carry no readings (command acks) or whose pack does not resolve.
 */
export function toRuleFrame(
  src: FrameSource,
  body: { readonly type: string },
  /** The reading's records already resolved (decodeBody's `out`): resolved again if absent. */
  resolved?: readonly ResolvedRecord[],
): RuleFrame | undefined {
  if (body.type !== 'reading') return undefined;
  const reading = body as ReadingBody;
  const recs = readingRecords(reading, resolved);
  if (!recs) return undefined;
  const prefix = `${src.device}:`;
  const records: RuleRecord[] = [];
  for (const r of recs) {
    const value = r.value ?? r.boolValue ?? r.stringValue ?? r.sum;
    if (value === undefined) continue;
    const name = r.name.startsWith(prefix) ? r.name.slice(prefix.length) : r.name;
    // RFC 8428 §4.5.3: times below 2^28 are relative to the receiver's clock.
    const time = r.time < RELATIVE_TIME_LIMIT ? src.rxTime + r.time * 1000 : r.time * 1000;
    records.push({ name, value, time });
  }
  // model and site set in place, not spread: a replay builds one of these per stored frame
  const frame: { -readonly [K in keyof RuleFrame]: RuleFrame[K] } = {
    device: src.device,
    boot: reading.boot,
    seq: reading.seq,
    time: src.rxTime,
    records,
  };
  if (src.model !== undefined) frame.model = src.model;
  if (src.site !== undefined) frame.site = src.site;
  return frame;
}
