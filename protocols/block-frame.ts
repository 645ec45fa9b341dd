/**
 * Reads one frame entry out of a stored signed block without decoding the rest: the envelope
 * `[block bytes, signature]`, the block map's author (key 1), stream (2) and kind (8), and the
 * body's entry at an index, skipping the entries before it by their CBOR heads (RFC 8949 §3).
 * For reading blocks a gateway already verified and stores (gateway/log/frames-index.ts):
 * it checks only what it reads, so it is no substitute for `decodeSignedBlock` on input from
 * elsewhere. Never throws; bounded by the bytes given (every length is checked against them).
 */
import { BlockKinds, type FrameEntry } from './block.js';
import { fail, ok, type Result } from './result.js';

export interface BlockFrame {
  readonly author: Uint8Array;
  readonly stream: string;
  readonly entry: FrameEntry;
}

interface Head {
  readonly major: number;
  /** The argument: a length, a count or an integer value (unsigned, up to 2^53 − 1). */
  readonly arg: number;
  readonly next: number;
}

const MAX_DEPTH = 8;
const text = new TextDecoder('utf-8', { fatal: false });

/** One data item's head (RFC 8949 §3: major type, additional information, argument). */
function head(b: Uint8Array, p: number): Head | undefined {
  if (p >= b.length) return undefined;
  const major = b[p]! >> 5;
  const ai = b[p]! & 31;
  if (ai < 24) return { major, arg: ai, next: p + 1 };
  const n = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : 0;
  if (n === 0 || p + 1 + n > b.length) return undefined; // indefinite lengths never occur in canonical blocks
  let arg = 0;
  for (let i = 1; i <= n; i++) arg = arg * 256 + b[p + i]!;
  if (!Number.isSafeInteger(arg)) return undefined;
  return { major, arg, next: p + 1 + n };
}

/** The position after one whole data item. */
function skip(b: Uint8Array, p: number, depth = 0): number | undefined {
  const h = head(b, p);
  if (!h || depth > MAX_DEPTH) return undefined;
  switch (h.major) {
    case 0:
    case 1:
    case 7:
      return h.next;
    case 2:
    case 3:
      return h.next + h.arg <= b.length ? h.next + h.arg : undefined;
    case 4:
    case 5: {
      let q: number | undefined = h.next;
      const items = h.major === 4 ? h.arg : h.arg * 2;
      if (items > b.length - q) return undefined;
      for (let i = 0; i < items && q !== undefined; i++) q = skip(b, q, depth + 1);
      return q;
    }
    default:
      return skip(b, h.next, depth + 1); // a tag: its content
  }
}

function bytesAt(b: Uint8Array, p: number, major: 2 | 3): { v: Uint8Array; next: number } | undefined {
  const h = head(b, p);
  if (!h || h.major !== major || h.next + h.arg > b.length) return undefined;
  return { v: b.subarray(h.next, h.next + h.arg), next: h.next + h.arg };
}

/** The frame at `index` of a stored frames block's envelope, with the block's author and stream. */
export function frameInBlock(envelope: Uint8Array, index: number): Result<BlockFrame> {
  const bad = (why: string): Result<BlockFrame> => fail('block/bad-frame-read', why);
  const env = head(envelope, 0);
  if (env?.major !== 4 || env.arg !== 2) return bad('not a signed block envelope');
  const inner = bytesAt(envelope, env.next, 2);
  if (!inner) return bad('no block bytes');
  const b = inner.v;
  const map = head(b, 0);
  if (map?.major !== 5) return bad('a block is a map');
  let p: number | undefined = map.next;
  let author: Uint8Array | undefined;
  let stream: string | undefined;
  let kind: number | undefined;
  for (let i = 0; i < map.arg && p !== undefined; i++) {
    const k = head(b, p);
    if (k?.major !== 0) return bad('block keys are integers');
    p = k.next;
    if (k.arg === 1 || k.arg === 2) {
      const v = bytesAt(b, p, k.arg === 1 ? 2 : 3);
      if (!v) return bad('bad author or stream');
      if (k.arg === 1) author = v.v;
      else stream = text.decode(v.v);
      p = v.next;
    } else if (k.arg === 8) {
      const v = head(b, p);
      if (v?.major !== 0) return bad('bad kind');
      kind = v.arg;
      p = v.next;
    } else if (k.arg === 9) {
      if (kind !== BlockKinds.frames || !author || stream === undefined) return bad('not a frames block');
      const arr = head(b, p);
      if (arr?.major !== 4 || !Number.isInteger(index) || index < 0 || index >= arr.arg)
        return bad(`no frame ${index}`);
      let q: number | undefined = arr.next;
      for (let j = 0; j < index && q !== undefined; j++) q = skip(b, q);
      const e = q === undefined ? undefined : head(b, q);
      if (e?.major !== 4 || e.arg !== 3) return bad('a frame entry is [frame, rxTime, transport]');
      const frame = bytesAt(b, e.next, 2);
      const rx = frame && head(b, frame.next);
      const transport = rx && rx.major === 0 ? bytesAt(b, rx.next, 3) : undefined;
      if (!frame || !rx || !transport) return bad('bad frame entry');
      return ok({ author, stream, entry: { frame: frame.v, rxTime: rx.arg, transport: text.decode(transport.v) } });
    } else p = skip(b, p);
  }
  return bad('no body');
}
