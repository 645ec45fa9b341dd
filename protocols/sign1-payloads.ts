/**
 * The payload of many COSE_Sign1 frames without decoding each envelope (replays read millions
 * of stored frames; decodeSign1 was a third of their decode). A device's frames share their
 * headers byte for byte, so whether an envelope is acceptable depends, for the common shape
 * below, only on the bytes before the payload: those are checked once by `decodeSign1` and the
 * verdict remembered. Anything outside the shape goes through `decodeSign1` itself, so the answer
 * is always `decodeSign1(bytes)`'s (default options): its payload, or undefined if it fails.
 *
 * The shape: tag 18 (one byte), an array of 4, the protected header as a byte string, an
 * unprotected header that is empty or holds only a short kid, the payload as a byte string, a
 * 64-byte signature, nothing after it, and no more than MAX_FRAME_BYTES in all. For such bytes
 * decodeSign1's checks read nothing of the payload and signature but their lengths.
 */
import { decodeSign1, MAX_FRAME_BYTES } from './cose.js';

const SIGNATURE_HEAD_0 = 0x58;
const SIGNATURE_LEN = 64;
/** Slots of the table of recent envelopes (a power of two). */
const RECENT = 1024;

/** What verification needs of an accepted COSE_Sign1: decodeSign1's fields of the same name. */
export interface Sign1Parts {
  readonly kid: Uint8Array;
  readonly protectedBytes: Uint8Array;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

export class Sign1Payloads {
  /**
   * The bytes before the payload (latin1) → the kid decodeSign1 found in that envelope (a copy,
   * shared by every frame with the same envelope), or false where it refuses the envelope.
   */
  private readonly verdicts = new Map<string, Uint8Array | false>();

  constructor(private readonly maxEntries = 65_536) {}

  /** decodeSign1(bytes)'s payload, or undefined where it fails; no other view is made (a replay wants only this). */
  payload(bytes: Uint8Array): Uint8Array | undefined {
    const at = payloadAt(bytes);
    if (at === undefined) {
      const r = decodeSign1(bytes);
      return r.ok ? r.value.payload : undefined;
    }
    return this.kid(bytes, at.prefixEnd) === false ? undefined : bytes.subarray(at.start, at.end);
  }

  /**
   * decodeSign1(bytes)'s kid, protected header bytes, payload and signature (default options),
   * or undefined where it fails (ask decodeSign1 for the error). The kid may be shared between
   * calls: do not write into it.
   */
  parts(bytes: Uint8Array): Sign1Parts | undefined {
    const at = payloadAt(bytes);
    if (at === undefined) {
      const r = decodeSign1(bytes);
      if (!r.ok) return undefined;
      const { kid, protectedBytes, payload, signature } = r.value;
      return { kid, protectedBytes, payload, signature };
    }
    const kid = this.kid(bytes, at.prefixEnd);
    if (kid === false) return undefined;
    return {
      kid,
      protectedBytes: bytes.subarray(at.protectedStart, at.protectedEnd),
      payload: bytes.subarray(at.start, at.end),
      signature: bytes.subarray(at.end + 2),
    };
  }

  /** `parts` without the protected header and signature views: what a reader of the body and its device needs. */
  kidAndPayload(bytes: Uint8Array): { readonly kid: Uint8Array; readonly payload: Uint8Array } | undefined {
    const at = payloadAt(bytes);
    if (at === undefined) {
      const r = decodeSign1(bytes);
      return r.ok ? { kid: r.value.kid, payload: r.value.payload } : undefined;
    }
    const kid = this.kid(bytes, at.prefixEnd);
    return kid === false ? undefined : { kid, payload: bytes.subarray(at.start, at.end) };
  }

  /**
   * The verdict on the envelope `bytes[0, prefixEnd)`: the last few asked are found by their
   * bytes in a small direct-mapped table (no string built: a replay asks once a frame); the
   * rest by their latin1 string in the map.
   */
  private kid(bytes: Uint8Array, prefixEnd: number): Uint8Array | false {
    let h = prefixEnd;
    for (let i = 0; i < prefixEnd; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
    const slot = (h ^ (h >>> 15)) & (RECENT - 1);
    const k = this.recentKeys[slot];
    if (k !== undefined && k.length === prefixEnd) {
      let i = 0;
      while (i < prefixEnd && k[i] === bytes[i]) i++;
      if (i === prefixEnd) return this.recentKids[slot]!;
    }
    const key = latin1(bytes, prefixEnd);
    let kid = this.verdicts.get(key);
    if (kid === undefined) {
      const r = decodeSign1(bytes);
      kid = r.ok ? r.value.kid.slice() : false;
      if (this.verdicts.size >= this.maxEntries) this.verdicts.clear();
      this.verdicts.set(key, kid);
    }
    this.recentKeys[slot] = bytes.slice(0, prefixEnd);
    this.recentKids[slot] = kid;
    return kid;
  }
  private readonly recentKeys: (Uint8Array | undefined)[] = new Array(RECENT).fill(undefined);
  private readonly recentKids: (Uint8Array | false | undefined)[] = new Array(RECENT).fill(undefined);
}

/** Where the payload is, if `bytes` has the shape above; undefined otherwise. */
function payloadAt(
  bytes: Uint8Array,
): { protectedStart: number; protectedEnd: number; prefixEnd: number; start: number; end: number } | undefined {
  const n = bytes.length;
  if (n > MAX_FRAME_BYTES || n < 8 || bytes[0] !== 0xd2 || bytes[1] !== 0x84) return undefined;
  // protected header: a byte string of 0..255 bytes
  let p = 2;
  const ph = bytes[p]!;
  let plen: number;
  if (ph >= 0x40 && ph <= 0x57) {
    plen = ph - 0x40;
    p += 1;
  } else if (ph === 0x58) {
    plen = bytes[p + 1]!;
    p += 2;
  } else return undefined;
  const protectedStart = p;
  p += plen;
  const protectedEnd = p;
  // unprotected header: {} or {4: kid of 0..23 bytes}
  const u = bytes[p];
  if (u === 0xa0) p += 1;
  else if (u === 0xa1 && bytes[p + 1] === 0x04) {
    const kh = bytes[p + 2];
    if (kh === undefined || kh < 0x40 || kh > 0x57) return undefined;
    p += 3 + (kh - 0x40);
  } else return undefined;
  const prefixEnd = p;
  // payload: a byte string with a 0-, 1- or 2-byte length
  const h = bytes[p];
  let len: number;
  if (h === undefined) return undefined;
  if (h >= 0x40 && h <= 0x57) {
    len = h - 0x40;
    p += 1;
  } else if (h === 0x58) {
    len = bytes[p + 1] ?? -1;
    p += 2;
  } else if (h === 0x59) {
    len = ((bytes[p + 1] ?? 0) << 8) | (bytes[p + 2] ?? 0);
    p += 3;
  } else return undefined;
  const start = p;
  const end = start + len;
  // the signature: exactly 64 bytes, ending the input
  if (len < 0 || end + 2 + SIGNATURE_LEN !== n) return undefined;
  if (bytes[end] !== SIGNATURE_HEAD_0 || bytes[end + 1] !== SIGNATURE_LEN) return undefined;
  return { protectedStart, protectedEnd, prefixEnd, start, end };
}

/** The first `end` bytes as a string of char codes 0..255 (a Map key), built in one call. */
function latin1(bytes: Uint8Array, end: number): string {
  return String.fromCharCode.apply(null, bytes.subarray(0, end) as unknown as number[]);
}
