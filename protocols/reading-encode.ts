/**
 * A reading frame written straight into one reused buffer, for a device that signs a frame per
 * sample (firmware-sim): byte for byte what `signBody` makes of it (encodeBody's CBOR through
 * cbor-x, encodeSign1's envelope), without a Map per record, `prepare`'s copy of them, cbor-x's
 * output buffer and the Sig_structure's copy of the payload. It writes the common shape only —
 * counters in range, 1..256 records whose fields are numbers, text, booleans or plain
 * Uint8Arrays, a body that fits the buffer — and hands anything else to `signBody`'s path, which
 * then gives the same bytes or throws its error. A property test holds the two together
 * (test/unit/reading-encode.test.ts).
 */
import { cborHeadBytes, writeCborHead } from './cbor-head.js';
import { encodeSign1, encodeSign1Over, MAX_FRAME_BYTES, SIGN1_PAYLOAD_ROOM, type SignFn } from './cose.js';
import { encodeBody, MAX_COUNTER, type ReadingBody } from './frame.js';
import { MAX_RECORDS, type SenmlRecord, senmlLabelsInOrder } from './senml.js';

const START = SIGN1_PAYLOAD_ROOM;
/** A body beyond this makes a frame over MAX_FRAME_BYTES: the general path throws for it. */
const END = START + MAX_FRAME_BYTES;
/** One record's heads and scalars (at most 15 labels × 9 bytes + its map head) fit in this slack; text and byte strings are checked one by one. */
const SLACK = 256;
const buf = new Uint8Array(END + SLACK);
const view = new DataView(buf.buffer);
const bytes = Buffer.from(buf.buffer);
let pos = 0;

/** Not the common shape, or no room: the general encoder takes over. */
const OTHER = Symbol('other');

/**
 * `encodeSign1({ kid, payload: encodeBody(body) }, sign)` (i.e. `signBody` with the kid of the
 * device), the message in its own bytes.
 */
export function signReading(body: ReadingBody, kid: Uint8Array, sign: SignFn): Uint8Array {
  let end: number;
  try {
    end = writeReading(body);
  } catch (e) {
    if (e !== OTHER) throw e;
    return encodeSign1({ kid, payload: encodeBody(body) }, sign);
  }
  return encodeSign1Over(kid, buf, START, end, sign);
}

const isCounter = (n: unknown): n is number =>
  typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= MAX_COUNTER;

/** {0: 1, 1: boot, 2: seq, 3?: time, 4: [records]} at START; the end offset. */
function writeReading(body: ReadingBody): number {
  const { boot, seq, time, records } = body;
  if (!isCounter(boot) || !isCounter(seq) || !Array.isArray(records)) throw OTHER;
  if (records.length === 0 || records.length > MAX_RECORDS) throw OTHER;
  if (time !== undefined && typeof time !== 'number') throw OTHER;
  pos = START;
  buf[pos++] = time === undefined ? 0xa4 : 0xa5;
  buf[pos++] = 0x00; // type: reading
  buf[pos++] = 0x01;
  buf[pos++] = 0x01;
  pos = writeCborHead(buf, pos, 0, boot);
  buf[pos++] = 0x02;
  pos = writeCborHead(buf, pos, 0, seq);
  if (time !== undefined) {
    buf[pos++] = 0x03;
    number(time);
  }
  buf[pos++] = 0x04;
  pos = writeCborHead(buf, pos, 4, records.length);
  for (let i = 0; i < records.length; i++) {
    record(records[i]!);
    if (pos > END) throw OTHER;
  }
  return pos;
}

function record(r: SenmlRecord): void {
  // The map's head is written once its fields are counted: at most 15 labels, so one byte.
  const head = pos++;
  let n = 0;
  for (let i = 0; i < senmlLabelsInOrder.length; i++) {
    const [label, field] = senmlLabelsInOrder[i]!;
    const v: unknown = r[field];
    if (v === undefined) continue;
    n++;
    buf[pos++] = label < 0 ? 0x1f - label : label; // -1 → 0x20 … (major type 1), 0..8 as is
    if (typeof v === 'number') number(v);
    else if (typeof v === 'string') text(v);
    else if (v === true) buf[pos++] = 0xf5;
    else if (v === false) buf[pos++] = 0xf4;
    else if (v instanceof Uint8Array && v.constructor === Uint8Array) {
      if (pos + 5 + v.length > END) throw OTHER;
      pos = writeCborHead(buf, pos, 2, v.length);
      buf.set(v, pos);
      pos += v.length;
    } else throw OTHER;
  }
  buf[head] = 0xa0 | n;
}

/**
 * A number as encodeCbor writes it: its `prepare` turns a safe integer beyond 32 bits into a
 * bigint, which cbor-x writes with an 8-byte argument; otherwise cbor-x's own choices, in its
 * order (so -0 is the integer 0, a negative integer down to -2^32 an integer, anything else a
 * float64).
 */
function number(v: number): void {
  if (Number.isSafeInteger(v) && (v > 0xffffffff || v < -0x100000000)) {
    const u = v >= 0 ? v : -v - 1;
    buf[pos++] = v >= 0 ? 0x1b : 0x3b;
    view.setUint32(pos, Math.floor(u / 0x100000000));
    view.setUint32(pos + 4, u >>> 0);
    pos += 8;
  } else if (v >>> 0 === v) pos = writeCborHead(buf, pos, 0, v);
  else if (v >> 0 === v) pos = writeCborHead(buf, pos, 1, -1 - v);
  else if (v < 0 && v >= -0x100000000 && Math.floor(v) === v) {
    buf[pos++] = 0x3a;
    view.setUint32(pos, -1 - v);
    pos += 4;
  } else {
    buf[pos++] = 0xfb;
    view.setFloat64(pos, v);
    pos += 8;
  }
}

/** UTF-8 text; lone surrogates become U+FFFD, as encodeCbor's `prepare` makes them. */
function text(s: string): void {
  const n = s.length;
  if (pos + 5 + n * 3 > END) throw OTHER;
  // ASCII, the usual case: its length is known before the first byte.
  const at = pos + cborHeadBytes(n);
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    buf[at + i] = c;
  }
  if (i === n) {
    pos = writeCborHead(buf, pos, 3, n);
    pos += n;
    return;
  }
  const len = Buffer.byteLength(s, 'utf8');
  pos = writeCborHead(buf, pos, 3, len);
  pos += bytes.write(s, pos, len, 'utf8');
}
