/**
 * The frame shape rules consume. rules/ never imports gateway/: the gateway (live) and the
 * replay reader adapt their frames to this with `toRuleFrame`.
 */
import {
  isSenmlName,
  RELATIVE_TIME_LIMIT,
  type ReadingBody,
  type ResolvedRecord,
  readingRecords,
  SENML_VERSION,
  type SenmlRecord,
} from '../protocols/index.js';
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
  const records = recordList();
  for (const r of recs) {
    const value = r.value ?? r.boolValue ?? r.stringValue ?? r.sum;
    if (value === undefined) continue;
    const name = r.name.startsWith(prefix) ? r.name.slice(prefix.length) : r.name;
    // RFC 8428 §4.5.3: times below 2^28 are relative to the receiver's clock.
    const time = r.time < RELATIVE_TIME_LIMIT ? src.rxTime + r.time * 1000 : r.time * 1000;
    records.push(ruleRecord(name, value, time));
  }
  return ruleFrame(src, reading.boot, reading.seq, records);
}

/*
 * The frames, their record lists and records are built without object or array literals: V8
 * gives a literal an allocation site, and once a burst of its objects survives (a replay's
 * frames kept in memory, as bench/rules.ts's warm-up keeps them) it allocates every later one
 * in the old generation. Old frames pointing at young records then hold them through each
 * scavenge, which copies and promotes them: a replay's GC grew fivefold (bench/README.md, "Rule
 * replay: the frames' allocation sites"). `{}` and Array.of() have no allocation site.
 */

/** The rule frame of a reading from `src` (model and site set in place, not spread: a replay builds one per stored frame). */
export function ruleFrame(src: FrameSource, boot: number, seq: number, records: RuleRecord[]): RuleFrame {
  const frame = {} as { -readonly [K in keyof RuleFrame]: RuleFrame[K] };
  frame.device = src.device;
  frame.boot = boot;
  frame.seq = seq;
  frame.time = src.rxTime;
  frame.records = records;
  if (src.model !== undefined) frame.model = src.model;
  if (src.site !== undefined) frame.site = src.site;
  return frame;
}

const recordList = (): RuleRecord[] => Array.of();

function ruleRecord(name: string, value: RecordValue, time: number): RuleRecord {
  const r = {} as { -readonly [K in keyof RuleRecord]: RuleRecord[K] };
  r.name = name;
  r.value = value;
  r.time = time;
  return r;
}

/**
 * Per device, the last few (bn, n) seen and the rule names they give: a device's records repeat
 * their names, and a device reporting several (temperature, humidity, battery) cycles through
 * them, so one remembered name would miss on every record.
 */
interface NameMemo {
  bn: string;
  n: string | undefined;
  name: string;
}
const NAMES_PER_DEVICE = 8;
const names = new Map<string, { memos: NameMemo[]; next: number }>();

function ruleName(device: string, bn: string, n: string | undefined): string | undefined {
  let d = names.get(device);
  if (d !== undefined)
    for (let i = 0; i < d.memos.length; i++) {
      const m = d.memos[i]!;
      if (m.bn === bn && m.n === n) return m.name;
    }
  const full = bn + (n ?? '');
  if (!isSenmlName(full)) return undefined;
  const prefix = `${device}:`;
  const m: NameMemo = { bn, n, name: full.startsWith(prefix) ? full.slice(prefix.length) : full };
  if (d === undefined) {
    if (names.size >= 65_536) names.clear();
    names.set(device, (d = { memos: [], next: 0 }));
  }
  // Replaced in turn once full: a device with more names than this misses, as before, no worse.
  if (d.memos.length < NAMES_PER_DEVICE) d.memos.push(m);
  else {
    d.memos[d.next] = m;
    d.next = (d.next + 1) % NAMES_PER_DEVICE;
  }
  return m.name;
}

/**
 * The records `toRuleFrame` gives for a reading whose wire records are `records` (from a
 * device, received at rxTime), in one pass instead of resolvePack's and then toRuleFrame's; or
 * undefined where resolvePack refuses the pack (the caller then asks the full decoder, which
 * refuses it too). The same checks as resolvePack, in the same order; a property test holds
 * the two together (test/unit/rule-records.test.ts).
 */
export function packRuleRecords(
  records: readonly SenmlRecord[],
  device: string,
  rxTime: number,
): RuleRecord[] | undefined {
  let bn = '';
  let bt = 0;
  let bv = 0;
  let bs = 0;
  const out = recordList();
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.bver !== undefined && (!Number.isInteger(r.bver) || r.bver > SENML_VERSION)) return undefined;
    if (r.bn !== undefined) bn = r.bn;
    if (r.bt !== undefined) bt = r.bt;
    if (r.bv !== undefined) bv = r.bv;
    if (r.bs !== undefined) bs = r.bs;
    const kinds =
      (r.v !== undefined ? 1 : 0) +
      (r.vs !== undefined ? 1 : 0) +
      (r.vb !== undefined ? 1 : 0) +
      (r.vd !== undefined ? 1 : 0);
    if (kinds > 1) return undefined;
    if (kinds === 0 && r.s === undefined) {
      if (r.n === undefined && r.t === undefined) continue;
      return undefined;
    }
    const name = ruleName(device, bn, r.n);
    if (name === undefined) return undefined;
    // toRuleFrame's value ?? boolValue ?? stringValue ?? sum (at most one of the first three is set)
    const value = r.v !== undefined ? bv + r.v : (r.vb ?? r.vs ?? (r.s !== undefined ? bs + r.s : undefined));
    if (value === undefined) continue;
    const t = bt + (r.t ?? 0);
    out.push(ruleRecord(name, value, t < RELATIVE_TIME_LIMIT ? rxTime + t * 1000 : t * 1000));
  }
  return out;
}
