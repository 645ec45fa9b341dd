/**
 * Short ASCII text read from bytes, the same string each time the same bytes come back. A
 * replay decodes millions of readings whose labels repeat (`bg-001:`, `temp`, `Cel`):
 * TextDecoder's call cost a string each (~0.3 µs a record), and fresh strings cost the
 * name resolution a concatenation and a regular-expression test each (the reader caches by
 * string identity). Anything longer or not ASCII goes through `decodeUtf8` (for ASCII the two
 * give the same string).
 */
import { decodeUtf8 } from './bytes.js';

const MAX_LEN = 32;
const SLOTS = 1024; // a power of two; direct-mapped, a collision replaces the slot
const keys: (Uint8Array | undefined)[] = new Array(SLOTS).fill(undefined);
const strings: string[] = new Array(SLOTS).fill('');

/** decodeUtf8(b.subarray(start, end)): undefined where it is not UTF-8. */
export function shortText(b: Uint8Array, start: number, end: number): string | undefined {
  const n = end - start;
  if (n > MAX_LEN) return decodeUtf8(b.subarray(start, end));
  let h = n;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c > 0x7f) return decodeUtf8(b.subarray(start, end));
    h = Math.imul(h ^ c, 0x01000193);
  }
  const slot = (h ^ (h >>> 15)) & (SLOTS - 1);
  const k = keys[slot];
  if (k !== undefined && k.length === n) {
    let i = 0;
    while (i < n && k[i] === b[start + i]) i++;
    if (i === n) return strings[slot];
  }
  const s = n === 0 ? '' : String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
  keys[slot] = b.slice(start, end);
  strings[slot] = s;
  return s;
}
