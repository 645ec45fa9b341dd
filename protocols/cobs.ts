/**
 * Consistent Overhead Byte Stuffing (S. Cheshire and M. Baker, "Consistent
 * Overhead Byte Stuffing", IEEE/ACM Transactions on Networking 7(2), 1999).
 *
 * The encoded form holds no 0x00 byte, so 0x00 can delimit frames on a byte
 * stream. Each block is a code byte `n` (1..255) followed by `n − 1` non-zero
 * data bytes; a block with `n < 255` stands for its data followed by a zero,
 * except that the zero after the last block is implied by the delimiter and
 * dropped. A 255 block (254 data bytes, no zero) is the only long run.
 *
 * Edge case at 254-byte runs: the encoder here writes a run of 254 non-zero
 * bytes that ends the input as `FF d1..d254` with no trailing `01` block
 * (as in the Wikipedia examples, and cobs-c / nanocobs); the paper's C
 * `StuffData` appends an extra `01`. The decoder accepts both, since either
 * means the same bytes; the encoder only ever writes the shorter form.
 *
 * Pure: no I/O. `cobsDecode` never throws on wire input.
 */
import { fail, ok, type Result } from './result.js';

/** Largest encoded size of `n` input bytes (no delimiter): n + ⌊n / 254⌋ + 1. */
export const cobsMaxEncodedLength = (n: number): number => n + Math.floor(n / 254) + 1;

/** Encodes `data` (any bytes); the result contains no 0x00 and no delimiter. */
export function cobsEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(cobsMaxEncodedLength(data.length));
  const n = cobsEncodeInto(data, out, 0);
  return out.subarray(0, n);
}

/**
 * Encodes `data` into `out` at `offset` (which needs `cobsMaxEncodedLength(data.length)`
 * bytes of room); returns the offset after the last byte written.
 */
export function cobsEncodeInto(data: Uint8Array, out: Uint8Array, offset: number): number {
  // A block at a time: the next zero is found by a native scan and each run of non-zero bytes
  // copied whole (a firmware chunk is ~4 KB of mostly non-zero bytes, framed on every send).
  const len = data.length;
  let codeAt = offset;
  let o = offset + 1;
  let i = 0;
  let zero = data.indexOf(0);
  for (;;) {
    if (zero >= 0 && zero < i) zero = data.indexOf(0, i);
    const end = zero < 0 ? len : zero;
    const run = Math.min(end - i, 254);
    if (run > 16) out.set(data.subarray(i, i + run), o);
    else for (let k = 0; k < run; k++) out[o + k] = data[i + k]!;
    o += run;
    i += run;
    if (run === 254) {
      out[codeAt] = 0xff;
      // A full block that ends the input needs no further (empty) block.
      if (i === len) return o;
      codeAt = o++;
      continue;
    }
    out[codeAt] = run + 1;
    if (i === len) return o;
    i++; // the zero this block stands for
    codeAt = o++;
  }
}

/**
 * Decodes one COBS-encoded block sequence (without its delimiter).
 * Errors: `cobs/empty` (no bytes), `cobs/zero-byte` (a 0x00 inside),
 * `cobs/truncated` (a code byte promises more bytes than there are).
 */
export function cobsDecode(enc: Uint8Array): Result<Uint8Array> {
  if (enc.length === 0) return fail('cobs/empty', 'COBS data must hold at least one code byte');
  const out = new Uint8Array(enc.length);
  let o = 0;
  let i = 0;
  while (i < enc.length) {
    const code = enc[i]!;
    if (code === 0) return fail('cobs/zero-byte', `0x00 at offset ${i} inside COBS data`);
    const end = i + code;
    if (end > enc.length)
      return fail('cobs/truncated', `block at offset ${i} needs ${code - 1} bytes, ${enc.length - i - 1} left`);
    for (let j = i + 1; j < end; j++) {
      const b = enc[j]!;
      if (b === 0) return fail('cobs/zero-byte', `0x00 at offset ${j} inside COBS data`);
      out[o++] = b;
    }
    i = end;
    if (code !== 0xff && i < enc.length) out[o++] = 0;
  }
  return ok(out.subarray(0, o));
}
