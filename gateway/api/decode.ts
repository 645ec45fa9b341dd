/** Stored frames as the API returns them: decoded SenML records, JSON-friendly. */
import {
  decodeBody,
  decodeSign1,
  RELATIVE_TIME_LIMIT,
  resolvePack,
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

/** The uplink body of a stored (already verified) frame, or undefined if it no longer decodes. */
export function decodeFrameBody(frame: Uint8Array): UplinkBody | undefined {
  const cose = decodeSign1(frame);
  if (!cose.ok) return undefined;
  const body = decodeBody(cose.value.payload);
  if (!body.ok || (body.value.type !== 'reading' && body.value.type !== 'command-ack')) return undefined;
  return body.value;
}

export function apiRecords(body: UplinkBody | undefined, rxTime: number): ApiRecord[] {
  if (body?.type !== 'reading') return [];
  const pack = resolvePack(body.records);
  if (!pack.ok) return [];
  return pack.value.map((r) => ({
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
  body = decodeFrameBody(f.frame),
): ApiFrame {
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
    records: apiRecords(body, f.rxTime),
  };
}
