/** A stored frame (verbatim COSE bytes + receive metadata) as a rule frame, for replays. */
import { decodeBody, decodeSign1 } from '../../protocols/index.js';
import { type RuleFrame, toRuleFrame } from '../frame.js';

export interface StoredFrameLike {
  readonly device: string;
  readonly rxTime: number;
  /** The COSE_Sign1 bytes as received (verified at ingest; not verified again here). */
  readonly frame: Uint8Array;
}

export function storedToRuleFrame(
  f: StoredFrameLike,
  info: { model?: string | undefined; site?: string | undefined } = {},
): RuleFrame | undefined {
  const cose = decodeSign1(f.frame);
  if (!cose.ok) return undefined;
  const body = decodeBody(cose.value.payload);
  if (!body.ok) return undefined;
  return toRuleFrame({ device: f.device, rxTime: f.rxTime, model: info.model, site: info.site }, body.value);
}
