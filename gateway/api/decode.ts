/** Stored frames as the API returns them: decoded SenML records, JSON-friendly. */
import {
  decodeBodyResolved,
  RELATIVE_TIME_LIMIT,
  type ResolvedRecord,
  readingRecords,
  Sign1Payloads,
  toHex,
  type UplinkBody,
} from '../../protocols/index.js';
import type { FrameRow } from '../log/frames-index.js';

export interface ApiRecord {
  readonly name: string;
  /** Seconds since the epoch (relative SenML times resolved against the receive time). */
  readonly time: number;
  readonly unit?: string;
  readonly value?: unknown;
}

export interface ApiFrame {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  readonly rxTime: string;
  readonly deviceTime?: string;
  readonly transport: string;
  /** The gateway that heard it (its id, or did:key when this gateway's config does not name it). */
  readonly heardBy: string;
  /** Its policy (the stream of the block holding it). */
  readonly policy: string;
  readonly type: string;
  readonly records: ApiRecord[];
}

/** decodeSign1's payloads, each device's envelope checked once (protocols/sign1-payloads.ts). */
const envelopes = new Sign1Payloads();

/** A stored frame's uplink body and, for a reading, its records resolved. */
export interface StoredBody {
  readonly body: UplinkBody;
  readonly resolved?: readonly ResolvedRecord[] | undefined;
}

/**
 * The uplink body of a stored (already verified) frame, or undefined if it no longer decodes:
 * decodeSign1 → decodeBody's answer, by the fast paths where the bytes have the common shape
 * (protocols/sign1-payloads.ts, reading-decode.ts; each falls back to the full decoder), as the
 * rule replay reads them: a page of 1 000 rows decoded field by field cost more than reading it.
 */
export function decodeStored(frame: Uint8Array): StoredBody | undefined {
  const payload = envelopes.payload(frame);
  const d = payload && decodeBodyResolved(payload);
  if (!d || (d.body.type !== 'reading' && d.body.type !== 'command-ack')) return undefined;
  return { body: d.body, resolved: d.resolved };
}

export function decodeFrameBody(frame: Uint8Array): UplinkBody | undefined {
  return decodeStored(frame)?.body;
}

/** A stored frame's records for the API ([] for anything but a reading that decodes). */
export function storedRecords(frame: Uint8Array, rxTime: number): ApiRecord[] {
  const s = decodeStored(frame);
  return apiRecords(s?.body, rxTime, s?.resolved);
}

/** A reading's records for the API; `resolved` when the decode already resolved them. */
export function apiRecords(
  body: UplinkBody | undefined,
  rxTime: number,
  resolved?: readonly ResolvedRecord[],
): ApiRecord[] {
  if (body?.type !== 'reading') return [];
  const records = readingRecords(body, resolved);
  if (!records) return [];
  return records.map((r) => ({
    name: r.name,
    // RFC 8428 §4.5.3: small times are relative to when the frame was received.
    time: r.time < RELATIVE_TIME_LIMIT ? rxTime / 1000 + r.time : r.time,
    ...(r.unit !== undefined && { unit: r.unit }),
    value: r.value ?? r.stringValue ?? r.boolValue ?? (r.dataValue && toHex(r.dataValue)) ?? r.sum ?? null,
  }));
}

export function apiFrame(
  f: Pick<FrameRow, 'device' | 'boot' | 'seq' | 'rxTime' | 'transport' | 'frame' | 'policy'>,
  heardBy: string,
  stored = decodeStored(f.frame),
): ApiFrame {
  const body = stored?.body;
  return {
    device: f.device,
    boot: f.boot,
    seq: f.seq,
    rxTime: new Date(f.rxTime).toISOString(),
    ...(body?.time !== undefined && { deviceTime: new Date(body.time).toISOString() }),
    transport: f.transport,
    heardBy,
    policy: f.policy,
    type: body?.type ?? 'unknown',
    records: apiRecords(body, f.rxTime, stored?.resolved),
  };
}
