/** A stored frame (verbatim COSE bytes + receive metadata) as a rule frame, for replays. */
import {
  decodeBody,
  decodeReadingFast,
  type ResolvedRecord,
  resolvePack,
  Sign1Payloads,
} from '../../protocols/index.js';
import { type RuleFrame, toRuleFrame } from '../frame.js';

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
  const fast = decodeReadingFast(payload);
  if (fast) {
    const resolved = resolvePack(fast.records);
    // the wire records are not read when the resolved ones are given
    const head = { type: 'reading', boot: fast.boot, seq: fast.seq };
    if (resolved.ok) return toRuleFrame(src, head, resolved.value);
  }
  const out: { resolved?: ResolvedRecord[] } = {};
  const body = decodeBody(payload, out);
  if (!body.ok) return undefined;
  return toRuleFrame(src, body.value, out.resolved);
}
