/** A stored frame (verbatim COSE bytes + receive metadata) as a rule frame, for replays. */
import { decodeBodyResolved, decodeReadingFast, Sign1Payloads } from '../../protocols/index.js';
import { packRuleRecords, type RuleFrame, ruleFrame, toRuleFrame } from '../frame.js';

export interface StoredFrameLike {
  readonly device: string;
  readonly rxTime: number;
  /** The COSE_Sign1 bytes as received (verified at ingest; not verified again here). */
  readonly frame: Uint8Array;
}

/** decodeSign1's payloads, each device's envelope checked once (protocols/sign1-payloads.ts). */
const envelopes = new Sign1Payloads();

/**
 * The same rule frame as decodeSign1 → decodeBody → toRuleFrame would give, by the fast paths
 * where the bytes have the common shape (each falls back to the full decoder otherwise).
 */
export function storedToRuleFrame(
  f: StoredFrameLike,
  info: { model?: string | undefined; site?: string | undefined } = {},
): RuleFrame | undefined {
  const payload = envelopes.payload(f.frame);
  if (payload === undefined) return undefined;
  const src = { device: f.device, rxTime: f.rxTime, model: info.model, site: info.site };
  // The common shape straight to rule records (no body, resolved records or copies between)
  const fast = decodeReadingFast(payload);
  const records = fast && packRuleRecords(fast.records, f.device, f.rxTime);
  if (records) return ruleFrame(src, fast.boot, fast.seq, records);
  const d = decodeBodyResolved(payload);
  if (!d) return undefined;
  return toRuleFrame(src, d.body, d.resolved);
}
