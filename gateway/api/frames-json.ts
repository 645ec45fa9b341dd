/**
 * A page of `/api/frames` written as JSON bytes straight from its rows: byte for byte what
 * `Buffer.from(JSON.stringify({ frames: rows.map(apiFrame), more, next }))` gives, without the
 * ApiFrame and ApiRecord objects, their spreads, a `toISOString` per date, nor the page as one
 * string to encode again. Those cost more than decoding the frames (bench/README.md,
 * "/api/frames without its objects"); test/unit/frames-json.test.ts holds the two together on
 * random frames.
 */
import { RELATIVE_TIME_LIMIT, type ResolvedRecord, readingRecords, toHex } from '../../protocols/index.js';
import type { FrameRow } from '../log/frames-index.js';
import { decodeStored, type StoredBody } from './decode.js';
import { JsonBytes } from './http.js';

/** 10000-01-01T00:00:00Z: from there on toISOString writes a six-digit year. */
const MAX_FOUR_DIGIT_YEAR_MS = 253_402_300_800_000;
const QUOTE = 0x22;
const ZERO = 0x30;

/** Bytes a row takes about (a reading of one record is ~300): a page's buffer is sized once, not grown. */
const ROW_BYTES = 384;
/** The largest buffer kept for the next page (a page of 1 000 rows needs ~300 KB). */
const SPARE_MAX = 1 << 20;
/**
 * The last page's buffer, lent to the next: a page's body is copied out at its exact length,
 * so the external memory V8 counts (and starts full collections on) per page is no more than
 * the encoded JSON.stringify text was. A page holds it from its construction to `end`.
 */
let spare: Buffer | undefined;

/** A growing buffer of JSON text, written byte by byte where the text is ASCII. */
class Out {
  buf: Buffer;
  pos = 0;

  constructor(bytes: number) {
    const s = spare;
    spare = undefined;
    this.buf = s && s.length >= bytes ? s : Buffer.allocUnsafe(bytes);
  }

  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Text known to be ASCII (JSON punctuation and keys, numbers' digits). */
  ascii(s: string): void {
    this.room(s.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A JSON string: as it is between quotes when it needs no escape, else JSON.stringify's text in UTF-8. */
  string(s: string): void {
    this.room(s.length + 2);
    const b = this.buf;
    const start = this.pos;
    let p = start;
    b[p++] = QUOTE;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === QUOTE || c === 0x5c) {
        this.pos = start;
        const t = JSON.stringify(s);
        this.room(Buffer.byteLength(t));
        this.pos += this.buf.write(t, this.pos);
        return;
      }
      b[p++] = c;
    }
    b[p++] = QUOTE;
    this.pos = p;
  }

  /** A number as JSON.stringify writes it (non-finite: null). */
  number(n: number): void {
    if (Number.isInteger(n) && n >= 0 && n <= 0xffffffff) this.uint(n, 1);
    else this.ascii(Number.isFinite(n) ? `${n}` : 'null');
  }

  /** A non-negative integer below 2^32 in decimal, padded with zeros to `width` digits. */
  uint(n: number, width: number): void {
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    if (digits < width) digits = width;
    this.room(digits);
    const b = this.buf;
    let p = this.pos + digits;
    this.pos = p;
    for (let i = 0; i < digits; i++) {
      const q = Math.floor(n / 10);
      b[--p] = ZERO + (n - q * 10);
      n = q;
    }
  }

  /** The text written, in a buffer of its own; this one is kept for the next page. */
  done(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    if (this.buf.length <= SPARE_MAX) spare = this.buf;
    return out;
  }
}

/** `new Date(ms).toISOString()` between quotes; the date's text up to the minute is reused while the minute is the same. */
class IsoDates {
  private minute = Number.NaN;
  private prefix = '';

  write(out: Out, ms: number): void {
    const minute = Math.floor(ms / 60_000);
    // Outside whole ms of years 1970–9999 (negative, fractional, six-digit years, invalid: a RangeError) Date writes it.
    if (!(Number.isInteger(ms) && ms >= 0 && ms < MAX_FOUR_DIGIT_YEAR_MS))
      return out.string(new Date(ms).toISOString());
    if (minute !== this.minute) {
      this.minute = minute;
      this.prefix = `"${new Date(minute * 60_000).toISOString().slice(0, 17)}`; // "YYYY-MM-DDTHH:MM:
    }
    const rest = ms - minute * 60_000;
    const s = Math.floor(rest / 1000);
    out.ascii(this.prefix);
    out.uint(s, 2);
    out.ascii('.');
    out.uint(rest - s * 1000, 3);
    out.ascii('Z"');
  }
}

/** One page of frames, row by row, then `end`. */
export class FramesJson {
  private readonly out: Out;
  private readonly rxDates = new IsoDates();
  private readonly deviceDates = new IsoDates();
  private rows = 0;

  /** `rows`: how many the page will hold at most (its limit), to size its buffer. */
  constructor(rows = 100) {
    this.out = new Out(Math.min(Math.max(rows, 1) * ROW_BYTES + 64, 1 << 20));
    this.out.ascii('{"frames":[');
  }

  get length(): number {
    return this.rows;
  }

  /** `apiFrame(f, heardBy, stored)` as JSON. */
  add(
    f: Pick<FrameRow, 'device' | 'boot' | 'seq' | 'rxTime' | 'transport' | 'frame' | 'policy'>,
    heardBy: string,
    stored: StoredBody | undefined = decodeStored(f.frame),
  ): void {
    const o = this.out;
    const body = stored?.body;
    o.ascii(this.rows++ === 0 ? '{"device":' : ',{"device":');
    o.string(f.device);
    o.ascii(',"boot":');
    o.number(f.boot);
    o.ascii(',"seq":');
    o.number(f.seq);
    o.ascii(',"rxTime":');
    this.rxDates.write(o, f.rxTime);
    if (body?.time !== undefined) {
      o.ascii(',"deviceTime":');
      this.deviceDates.write(o, body.time);
    }
    o.ascii(',"transport":');
    o.string(f.transport);
    o.ascii(',"heardBy":');
    o.string(heardBy);
    o.ascii(',"policy":');
    o.string(f.policy);
    o.ascii(',"type":');
    o.string(body?.type ?? 'unknown');
    o.ascii(',"records":[');
    const rs = body?.type === 'reading' ? readingRecords(body, stored?.resolved) : undefined;
    if (rs) for (let i = 0; i < rs.length; i++) this.record(rs[i]!, f.rxTime, i);
    o.ascii(']}');
  }

  /** The page's body: `{"frames":[…],"more":…,"next":…}`. */
  end(more: boolean, next: string | null): JsonBytes {
    const o = this.out;
    o.ascii(more ? '],"more":true,"next":' : '],"more":false,"next":');
    if (next === null) o.ascii('null');
    else o.string(next);
    o.ascii('}');
    return new JsonBytes(o.done());
  }

  /** One of apiRecords' records. */
  private record(r: ResolvedRecord, rxTime: number, i: number): void {
    const o = this.out;
    o.ascii(i === 0 ? '{"name":' : ',{"name":');
    o.string(r.name);
    o.ascii(',"time":');
    // RFC 8428 §4.5.3: small times are relative to when the frame was received.
    o.number(r.time < RELATIVE_TIME_LIMIT ? rxTime / 1000 + r.time : r.time);
    if (r.unit !== undefined) {
      o.ascii(',"unit":');
      o.string(r.unit);
    }
    o.ascii(',"value":');
    // The first of value, string, boolean, data (hex), sum; else null.
    if (r.value !== undefined) o.number(r.value);
    else if (r.stringValue !== undefined) o.string(r.stringValue);
    else if (r.boolValue !== undefined) o.ascii(r.boolValue ? 'true' : 'false');
    else if (r.dataValue) o.string(toHex(r.dataValue));
    else if (r.sum !== undefined) o.number(r.sum);
    else o.ascii('null');
    o.ascii('}');
  }
}
