/**
 * GET /api/log/frames?device&after&limit&policy: the frames view of the
 * block log — every frame this gateway holds, whichever gateway heard it — with
 * the same per-policy read check as /api/frames. The view holds the frames of
 * the blocks this gateway can read: sealed blocks it holds no key for (a relay)
 * are not in it, so they are never served. Each frame carries its author gateway,
 * block, policy and the verbatim COSE_Sign1 (hex), so a reader can check the
 * device signature itself. Paging skips to the cursor by walking the view.
 */
import { decodeSignedBlock, type FrameEntry, ID_PATTERN, toHex } from '../../protocols/index.js';
import type { CheckResult } from '../policy/permissions.js';
import type { BlockLog } from '../log/block-log.js';
import { forbidden } from './access.js';
import { type ApiRecord, storedRecords } from './decode.js';
import { ApiError, parseIntParam, queryParams } from './http.js';
import { MAX_FRAMES_LIMIT, MAX_SCANNED_FRAMES } from './routes.js';

export interface LogFrame {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  readonly rxTime: string;
  readonly transport: string;
  /** Hex key of the gateway that received and logged it. */
  readonly author: string;
  /** null: acked and waiting in this gateway's journal, its block not sealed yet (about a second). */
  readonly block: string | null;
  readonly policy: string;
  readonly records: ApiRecord[];
  /** The COSE_Sign1 bytes as the device signed them, hex. */
  readonly frame: string;
}

const CURSOR = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})\/(\d{1,10})\/(\d{1,10})$/;

/** Tuple order of the view's keys (device, boot, seq). */
const after = (e: { device: string; boot: number; seq: number }, c: [string, number, number]): boolean =>
  e.device > c[0] || (e.device === c[0] && (e.boot > c[1] || (e.boot === c[1] && e.seq > c[2])));

export function queryLogFrames(log: BlockLog | undefined, url: URL, check: (policy: string) => CheckResult): unknown {
  const q = queryParams(url, ['device', 'after', 'limit', 'policy']);
  if (!log) throw new ApiError(404, 'no-log', 'this gateway keeps no block log');
  const device = q.get('device');
  if (device !== undefined && !ID_PATTERN.test(device))
    throw new ApiError(400, 'bad-query', `device must match ${ID_PATTERN.source}`);
  const policy = q.get('policy');
  if (policy !== undefined) {
    const c = check(policy);
    if (!c.allowed) throw forbidden(c);
  }
  const cur = q.get('after');
  const m = cur === undefined ? null : CURSOR.exec(cur);
  if (cur !== undefined && !m)
    throw new ApiError(400, 'bad-query', 'after must be the "next" cursor of a previous page');
  const from: [string, number, number] | undefined = m ? [m[1]!, Number(m[2]), Number(m[3])] : undefined;
  const limit = parseIntParam('limit', q.get('limit'), 1, MAX_FRAMES_LIMIT, 100);

  const frames: LogFrame[] = [];
  let scanned = 0;
  let denied: Extract<CheckResult, { allowed: false }> | undefined;
  let last: string | undefined;
  // Consecutive view entries mostly share a block: keep the last one opened.
  let cached: { hash: string; author: string; body?: readonly FrameEntry[] } | undefined;
  for (const e of log.frameView(device)) {
    if (from && !after(e, from)) continue;
    if (frames.length === limit || scanned === MAX_SCANNED_FRAMES) return { frames, more: true, next: last };
    scanned++;
    last = `${e.device}/${e.boot}/${e.seq}`;
    if (e.block === null) {
      // In the journal: the reader's row (its open block names the author and policy).
      const r = log.frames.get(e.device, e.boot, e.seq);
      if (!r || (policy !== undefined && r.policy !== policy)) continue;
      const c = check(r.policy);
      if (!c.allowed) {
        denied ??= c;
        continue;
      }
      frames.push({
        ...{ device: e.device, boot: e.boot, seq: e.seq, rxTime: new Date(r.rxTime).toISOString() },
        ...{ transport: r.transport, author: r.heardBy, block: r.block, policy: r.policy },
        records: storedRecords(r.frame, r.rxTime),
        frame: toHex(r.frame),
      });
      continue;
    }
    const block = e.block;
    const stream = log.lookup(block)?.stream;
    if (stream === undefined || (policy !== undefined && stream !== policy)) continue;
    const c = check(stream);
    if (!c.allowed) {
      denied ??= c;
      continue;
    }
    if (cached?.hash !== block) {
      const d = decodeSignedBlock(log.getEnvelope(block) ?? new Uint8Array());
      const b = d.ok ? log.readable(d.value.block) : undefined;
      cached = { hash: block, author: b ? toHex(b.author) : '', ...(b?.kind === 'frames' && { body: b.body }) };
    }
    const entry = cached.body?.[e.index];
    if (!entry) continue; // pruned meanwhile
    frames.push({
      device: e.device,
      boot: e.boot,
      seq: e.seq,
      rxTime: new Date(entry.rxTime).toISOString(),
      transport: entry.transport,
      author: cached.author,
      block,
      policy: stream,
      records: storedRecords(entry.frame, entry.rxTime),
      frame: toHex(entry.frame),
    });
  }
  if (frames.length === 0 && denied) throw forbidden(denied);
  return { frames, more: false, next: null };
}
