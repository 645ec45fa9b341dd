/**
 * Reads one frame entry out of a stored signed block without decoding the rest: the envelope
 * `[block bytes, signature]`, the block map's author (key 1), stream (2), lamport (4), policy
 * (7) and kind (8), and the body's entry at an index (or every entry), skipping the entries
 * before it by their CBOR heads (RFC 8949 §3). For reading blocks a gateway already verified
 * and stores (gateway/log/frames-index.ts, the export's gateway/export/log-source.ts):
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

/**
 * A stored frames block's entries, found by walking the body once as far as asked, so a reader
 * serving several frames of one block finds each without walking from the start again.
 */
export class FrameBlockLayout {
  /** Where each entry `[frame, rxTime, transport]` starts in `bytes`, as far as walked. */
  private readonly offsets: Uint32Array;
  private walked = 1;

  constructor(
    readonly author: Uint8Array,
    readonly stream: string,
    /** The block bytes (inside the envelope). */
    readonly bytes: Uint8Array,
    /** The body's first entry, and how many entries it has. */
    first: number,
    readonly count: number,
    /** The block's lamport clock and policy (the export orders and filters by them). */
    readonly lamport = 0,
    readonly policy = '',
  ) {
    this.offsets = new Uint32Array(Math.max(count, 1));
    this.offsets[0] = first;
  }

  /** The entry at `index`, or undefined if there is none or the bytes are not an entry there. */
  entry(index: number): FrameEntry | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) return undefined;
    while (this.walked <= index) {
      const next = entryEnd(this.bytes, this.offsets[this.walked - 1]!);
      if (next < 0) return undefined;
      this.offsets[this.walked++] = next;
    }
    return frameEntryAt(this.bytes, this.offsets[index]!);
  }

  /** Every entry in order (their frames are views into `bytes`, not copies), or undefined if one does not read. */
  entries(): FrameEntry[] | undefined {
    const out: FrameEntry[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) {
      const e = this.entry(i);
      if (!e) return undefined;
      out[i] = e;
    }
    return out;
  }
}

/**
 * The author, stream and entries of a stored frames block's envelope. Each entry must be
 * `[bstr, uint, tstr]` (what `decodeBlock` accepts for a frames body), checked when read.
 */
export function frameBlockLayout(envelope: Uint8Array): Result<FrameBlockLayout> {
  const bad = (why: string): Result<FrameBlockLayout> => fail('block/bad-frame-read', why);
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
  let lamport: number | undefined;
  let policy: string | undefined;
  for (let i = 0; i < map.arg && p !== undefined; i++) {
    const k = head(b, p);
    if (k?.major !== 0) return bad('block keys are integers');
    p = k.next;
    if (k.arg === 1 || k.arg === 2 || k.arg === 7) {
      const v = bytesAt(b, p, k.arg === 1 ? 2 : 3);
      if (!v) return bad('bad author, stream or policy');
      if (k.arg === 1) author = v.v;
      else if (k.arg === 2) stream = text.decode(v.v);
      else policy = text.decode(v.v);
      p = v.next;
    } else if (k.arg === 4) {
      const v = head(b, p);
      if (v?.major !== 0) return bad('bad lamport');
      lamport = v.arg;
      p = v.next;
    } else if (k.arg === 8) {
      const v = head(b, p);
      if (v?.major !== 0) return bad('bad kind');
      kind = v.arg;
      p = v.next;
    } else if (k.arg === 9) {
      if (kind !== BlockKinds.frames || !author || stream === undefined) return bad('not a frames block');
      const arr = head(b, p);
      // Every entry takes at least one byte: a count beyond the bytes left is no body.
      if (arr?.major !== 4 || arr.arg > b.length - arr.next) return bad('a frames body is an array');
      if (lamport === undefined || policy === undefined) return bad('no lamport or policy');
      return ok(new FrameBlockLayout(author, stream, b, arr.next, arr.arg, lamport, policy));
    } else p = skip(b, p);
  }
  return bad('no body');
}

/** The entry at `offset` of a layout's bytes (undefined if the bytes are not an entry there). */
function frameEntryAt(b: Uint8Array, offset: number): FrameEntry | undefined {
  if (entryEnd(b, offset) < 0) return undefined;
  let p = offset + 1;
  const frameLen = argAt(b, p);
  p = nextAt;
  const frame = b.subarray(p, p + frameLen);
  p += frameLen;
  const rxTime = argAt(b, p);
  p = nextAt;
  const tLen = argAt(b, p);
  p = nextAt;
  return { frame, rxTime, transport: shortText(b, p, p + tLen) };
}

/** The frame at `index` of a stored frames block's envelope, with the block's author and stream. */
export function frameInBlock(envelope: Uint8Array, index: number): Result<BlockFrame> {
  const layout = frameBlockLayout(envelope);
  if (!layout.ok) return layout;
  const { author, stream, count } = layout.value;
  if (!Number.isInteger(index) || index < 0 || index >= count) return fail('block/bad-frame-read', `no frame ${index}`);
  const entry = layout.value.entry(index);
  return entry ? ok({ author, stream, entry }) : fail('block/bad-frame-read', 'bad frame entry');
}

// Allocation-free head reading for the entries (a reader walks many): argAt returns the
// argument of the head at p (-1 if none or not a definite safe integer) and leaves the
// position after it in nextAt; majorAt is the major type (-1 past the end).
let nextAt = 0;
const majorAt = (b: Uint8Array, p: number): number => (p < b.length ? b[p]! >> 5 : -1);
function argAt(b: Uint8Array, p: number): number {
  if (p >= b.length) return -1;
  const ai = b[p]! & 31;
  if (ai < 24) {
    nextAt = p + 1;
    return ai;
  }
  const n = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : 0;
  if (n === 0 || p + 1 + n > b.length) return -1;
  let arg = 0;
  for (let i = 1; i <= n; i++) arg = arg * 256 + b[p + i]!;
  if (!Number.isSafeInteger(arg)) return -1;
  nextAt = p + 1 + n;
  return arg;
}

/** The end of the entry `[bstr, uint, tstr]` at p, or -1 if there is none. */
function entryEnd(b: Uint8Array, p: number): number {
  if (majorAt(b, p) !== 4 || argAt(b, p) !== 3) return -1;
  p = nextAt;
  if (majorAt(b, p) !== 2) return -1;
  const frameLen = argAt(b, p);
  if (frameLen < 0 || nextAt + frameLen > b.length) return -1;
  p = nextAt + frameLen;
  if (majorAt(b, p) !== 0 || argAt(b, p) < 0) return -1;
  p = nextAt;
  if (majorAt(b, p) !== 3) return -1;
  const tLen = argAt(b, p);
  if (tLen < 0 || nextAt + tLen > b.length) return -1;
  return nextAt + tLen;
}

/** UTF-8 text, short ASCII (a transport name) without a TextDecoder call. */
function shortText(b: Uint8Array, from: number, to: number): string {
  if (to - from > 16) return text.decode(b.subarray(from, to));
  let s = '';
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c > 0x7f) return text.decode(b.subarray(from, to));
    s += String.fromCharCode(c);
  }
  return s;
}
