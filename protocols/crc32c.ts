/**
 * CRC-32C (Castagnoli): reflected polynomial 0x82F63B78 (normal 0x1EDC6F41),
 * initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF, as in iSCSI (RFC 3720
 * §12.1, test vectors in Appendix B.4), SCTP (RFC 4960 Appendix B), ext4 and
 * the ARMv8 / SSE4.2 CRC32C instructions. Check value for the ASCII bytes
 * "123456789": 0xE3069283.
 *
 * Slicing-by-8 tables (8 KiB), built once at load. Pure: no I/O.
 */

const POLY = 0x82f63b78;
const T = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = T[n]!;
  for (let t = 1; t < 8; t++) {
    c = T[c & 0xff]! ^ (c >>> 8);
    T[t * 256 + n] = c;
  }
}

/**
 * CRC-32C of `data[start, end)`. To continue a running CRC over several
 * pieces pass the previous result as `crc` (start with 0).
 */
export function crc32c(data: Uint8Array, crc = 0, start = 0, end = data.length): number {
  let c = ~crc;
  let i = start;
  // Byte-wise until 8 bytes remain in whole groups.
  const stop8 = end - ((end - i) & 7);
  while (i < stop8) {
    const lo = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    const hi = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    c =
      T[7 * 256 + (lo & 0xff)]! ^
      T[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      T[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      T[4 * 256 + (lo >>> 24)]! ^
      T[3 * 256 + (hi & 0xff)]! ^
      T[2 * 256 + ((hi >>> 8) & 0xff)]! ^
      T[256 + ((hi >>> 16) & 0xff)]! ^
      T[hi >>> 24]!;
    i += 8;
  }
  while (i < end) c = T[(c ^ data[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
