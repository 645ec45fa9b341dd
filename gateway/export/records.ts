/** An exported frame's SenML records, decoded once for every sink and the rollups. */
import { type Body, decodeSign1, decodeBody, RELATIVE_TIME_LIMIT, resolvePack } from '../../protocols/index.js';
import { decodedBody } from '../log/verify.js';
import type { ExportFrame } from './source.js';

export interface ExportRecord {
  /** Position in the frame's pack (the fourth part of the record's key). */
  readonly index: number;
  readonly name: string;
  /** ms since the epoch (RFC 8428 §4.5.3: small times are relative to the receive time). */
  readonly time: number;
  readonly unit?: string;
  readonly value?: number;
  readonly stringValue?: string;
  readonly boolValue?: boolean;
  readonly dataValue?: Uint8Array;
  readonly sum?: number;
}

/** The records of a reading frame (none for other bodies or a pack that does not resolve). */
export function frameRecords(f: Pick<ExportFrame, 'frame' | 'rxTime' | 'body'>): ExportRecord[] {
  const body = f.body ?? decodedBody(f.frame) ?? decode(f.frame);
  if (body?.type !== 'reading') return [];
  const pack = resolvePack(body.records);
  if (!pack.ok) return [];
  return pack.value.map((r, index) => ({
    index,
    name: r.name,
    time: Math.round((r.time < RELATIVE_TIME_LIMIT ? f.rxTime / 1000 + r.time : r.time) * 1000),
    ...(r.unit !== undefined && { unit: r.unit }),
    ...(r.value !== undefined && { value: r.value }),
    ...(r.stringValue !== undefined && { stringValue: r.stringValue }),
    ...(r.boolValue !== undefined && { boolValue: r.boolValue }),
    ...(r.dataValue !== undefined && { dataValue: r.dataValue }),
    ...(r.sum !== undefined && { sum: r.sum }),
  }));
}

/** A frame's body, decoded from its bytes (a frame ingest did not just decode: synced, or read back from the log). */
function decode(frame: Uint8Array): Body | undefined {
  const cose = decodeSign1(frame);
  if (!cose.ok) return undefined;
  const body = decodeBody(cose.value.payload);
  return body.ok ? body.value : undefined;
}
