/**
 * CBOR heads in their shortest form (RFC 8949 §3.1), for the codecs that write a message's
 * bytes straight into one buffer (the Sig_structure and COSE_Sign1 envelope, a firmware chunk,
 * a reading) instead of going through encodeCbor.
 */

/** Bytes of the shortest head for an argument `n` below 2³². */
export const cborHeadBytes = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);

/** Writes the shortest head of `major` with argument `n` (< 2³²) at `at`; returns the next offset. */
export function writeCborHead(out: Uint8Array, at: number, major: number, n: number): number {
  const m = major << 5;
  if (n < 24) out[at++] = m | n;
  else if (n < 0x100) {
    out[at++] = m | 24;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at++] = m | 25;
    out[at++] = n >>> 8;
    out[at++] = n & 0xff;
  } else {
    out[at++] = m | 26;
    out[at++] = n >>> 24;
    out[at++] = (n >>> 16) & 0xff;
    out[at++] = (n >>> 8) & 0xff;
    out[at++] = n & 0xff;
  }
  return at;
}
