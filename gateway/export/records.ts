/**
 * An exported frame's SenML records, for every sink and the rollups: from ingest's decode when it
 * is at hand, else decoded again by the fast paths. An ExportFrame carries no body: held from a
 * batch's read to the sink's encoding (more than npm start's young generation allocates between
 * two scavenges), decoded bodies were promoted, and the mark-compacts that collected them cost
 * more than decoding each frame again (bench/README.md).
 */
import { RELATIVE_TIME_LIMIT, type ResolvedRecord, resolvePack } from '../../protocols/index.js';
import { decodedBody, frameIdAndBody } from '../log/verify.js';
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
export function frameRecords(f: Pick<ExportFrame, 'frame' | 'rxTime'>): ExportRecord[] {
  const out: ExportRecord[] = [];
  forEachRecord(f, (index, r, time) =>
    out.push({
      index,
      name: r.name,
      time,
      ...(r.unit !== undefined && { unit: r.unit }),
      ...(r.value !== undefined && { value: r.value }),
      ...(r.stringValue !== undefined && { stringValue: r.stringValue }),
      ...(r.boolValue !== undefined && { boolValue: r.boolValue }),
      ...(r.dataValue !== undefined && { dataValue: r.dataValue }),
      ...(r.sum !== undefined && { sum: r.sum }),
    }),
  );
  return out;
}

/**
 * The same records, each handed over as the pack resolved it with its time in ms (what
 * `frameRecords` makes of it), so a writer that encodes them at once makes no object per record.
 * Returns how many there were.
 */
export function forEachRecord(
  f: Pick<ExportFrame, 'frame' | 'rxTime'>,
  fn: (index: number, r: ResolvedRecord, time: number) => void,
): number {
  const rs = resolvedRecords(f);
  if (!rs) return 0;
  for (let i = 0; i < rs.length; i++) fn(i, rs[i]!, recordTime(f.rxTime, rs[i]!));
  return rs.length;
}

/** A reading frame's records as its pack resolves them (undefined for other bodies or a pack that does not resolve). */
export function resolvedRecords(f: Pick<ExportFrame, 'frame'>): readonly ResolvedRecord[] | undefined {
  // A frame in the log was verified, so it has a device kid and a body that decodes.
  const d = decodedBody(f.frame) ?? frameIdAndBody(f.frame);
  if (d?.body.type !== 'reading') return undefined;
  if (d.resolved) return d.resolved;
  const pack = resolvePack(d.body.records);
  return pack.ok ? pack.value : undefined;
}

/** A record's time in ms (RFC 8428 §4.5.3: small times are relative to the receive time, `rxTime` ms). */
export const recordTime = (rxTime: number, r: ResolvedRecord): number =>
  Math.round((r.time < RELATIVE_TIME_LIMIT ? rxTime / 1000 + r.time : r.time) * 1000);
