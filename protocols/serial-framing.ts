/**
 * Serial / BLE byte-stream framing (DESIGN.md): every frame goes on the wire as
 *
 *     COBS( frame ‖ CRC-32C(frame) as 4 bytes little-endian ) 0x00
 *
 * The CRC is little-endian, the byte order RFC 3720 (iSCSI) sends CRC-32C in
 * and what `memcpy` of the CRC register gives on Cortex-M, ESP32 and RP2040.
 * A sender may also write a lone 0x00 first (after a reset, say): it ends any
 * partial frame at the receiver, and empty frames are skipped silently.
 *
 * `Deframer` is the streaming receiver: push any chunking of the stream, get
 * the intact frames back. It decodes COBS as bytes arrive into one fixed
 * buffer of `maxFrameBytes + 4`, so it never holds more than that whatever
 * the input; a frame with a bad CRC, bad COBS, fewer than 4 bytes or over the
 * size limit is dropped and counted, and decoding resynchronises at the next
 * 0x00. Pure: no I/O, no clocks.
 */
import { cobsEncodeInto, cobsMaxEncodedLength } from './cobs.js';
import { MAX_FRAME_BYTES } from './cose.js';
import { crc32c } from './crc32c.js';
import { ProtocolUsageError } from './result.js';

const CRC_BYTES = 4;
const FRAME_DELIMITER = 0x00;

/** Bytes on the wire for a frame of `n` bytes, delimiter included, at most. */
export const serialFrameMaxWireLength = (n: number): number => cobsMaxEncodedLength(n + CRC_BYTES) + 1;

/** Encodes one frame for the wire: COBS(frame ‖ CRC-32C LE) 0x00. */
export function encodeSerialFrame(frame: Uint8Array): Uint8Array {
  const raw = new Uint8Array(frame.length + CRC_BYTES);
  raw.set(frame, 0);
  const crc = crc32c(frame);
  raw[frame.length] = crc & 0xff;
  raw[frame.length + 1] = (crc >>> 8) & 0xff;
  raw[frame.length + 2] = (crc >>> 16) & 0xff;
  raw[frame.length + 3] = crc >>> 24;
  const out = new Uint8Array(serialFrameMaxWireLength(frame.length));
  const n = cobsEncodeInto(raw, out, 0);
  out[n] = FRAME_DELIMITER;
  return out.subarray(0, n + 1);
}

export interface DeframerStats {
  /** Intact frames returned. */
  frames: number;
  /** Bytes pushed in. */
  bytes: number;
  /** Decoded well but the CRC-32C did not match. */
  badCrc: number;
  /** A COBS block cut short by the delimiter. */
  badCobs: number;
  /** Longer than the frame limit (dropped as soon as it got too long). */
  oversize: number;
  /** Fewer bytes than the CRC itself. */
  runt: number;
  /** Bytes of dropped frames (noise, resync). */
  discardedBytes: number;
}

export interface DeframerOptions {
  /** Largest frame (without its CRC) accepted; default MAX_FRAME_BYTES (4096). */
  readonly maxFrameBytes?: number;
}

export class Deframer {
  readonly maxFrameBytes: number;
  readonly stats: DeframerStats = {
    frames: 0,
    bytes: 0,
    badCrc: 0,
    badCobs: 0,
    oversize: 0,
    runt: 0,
    discardedBytes: 0,
  };
  /** Decoded bytes of the frame in progress (frame ‖ CRC). */
  private readonly buf: Uint8Array;
  private len = 0;
  /** Data bytes still to come in the current COBS block; 0 = the next byte is a code byte. */
  private remaining = 0;
  /** Code of the current block (0 before the first block of a frame). */
  private code = 0;
  /** Skipping to the next delimiter after an oversize frame. */
  private dropping = false;
  /** Wire bytes seen since the last delimiter. */
  private wire = 0;

  constructor(opts: DeframerOptions = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    if (!Number.isInteger(this.maxFrameBytes) || this.maxFrameBytes < 1 || this.maxFrameBytes > 1 << 24) {
      throw new ProtocolUsageError('serial/bad-limit', 'maxFrameBytes must be an integer in 1..16777216');
    }
    this.buf = new Uint8Array(this.maxFrameBytes + CRC_BYTES);
  }

  /** Bytes held for a frame in progress (never more than maxFrameBytes + 4). */
  get buffered(): number {
    return this.len;
  }

  /** Forgets a frame in progress (e.g. the port was reopened); counts it as discarded. */
  reset(): void {
    if (this.wire > 0) this.stats.discardedBytes += this.wire;
    this.startFrame();
  }

  /**
   * Feeds bytes from the line; returns the intact frames they completed, in
   * order (fresh copies; `chunk` is not kept).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    this.stats.bytes += chunk.length;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.dropping) {
        // Skip to the next delimiter (native scan).
        const z = chunk.indexOf(FRAME_DELIMITER, i);
        if (z < 0) {
          this.wire += n - i;
          return frames;
        }
        this.wire += z - i;
        i = z + 1;
        this.stats.discardedBytes += this.wire;
        this.startFrame();
        continue;
      }
      if (this.wire === 0) {
        // At a frame boundary: if the whole frame is in this chunk, decode it a block at a time.
        const z = chunk.indexOf(FRAME_DELIMITER, i);
        if (z === i) {
          i++; // empty frame
          continue;
        }
        if (z > i) {
          this.decodeWhole(chunk, i, z, frames);
          i = z + 1;
          continue;
        }
      }
      i = this.step(chunk, i, n, frames);
    }
    return frames;
  }

  /**
   * Decodes chunk[start, z), known to hold no 0x00, as one complete frame, a
   * COBS block at a time (block copies, no per-byte zero checks).
   */
  private decodeWhole(chunk: Uint8Array, start: number, z: number, frames: Uint8Array[]): void {
    const buf = this.buf;
    const cap = buf.length;
    let len = 0;
    let j = start;
    while (j < z) {
      const code = chunk[j]!;
      const end = j + code;
      if (end > z) return this.dropWhole('badCobs', z - start);
      const run = code - 1;
      if (len + run > cap) return this.dropWhole('oversize', z - start);
      if (run > 16) {
        buf.set(chunk.subarray(j + 1, end), len);
        len += run;
      } else {
        for (let k = j + 1; k < end; k++) buf[len++] = chunk[k]!;
      }
      j = end;
      if (code !== 0xff && j < z) {
        if (len === cap) return this.dropWhole('oversize', z - start);
        buf[len++] = 0;
      }
    }
    this.len = len;
    this.wire = z - start;
    this.endFrame(frames);
  }

  private dropWhole(counter: 'badCobs' | 'oversize', wire: number): void {
    this.stats[counter]++;
    this.stats.discardedBytes += wire;
  }

  /**
   * Decoding into the frame in progress (a frame split across chunks); returns after a
   * delimiter, on oversize, or at the chunk end. The next delimiter is found by a native scan
   * and each block's data bytes copied as a run (an ATT payload of a firmware chunk is 244).
   */
  private step(chunk: Uint8Array, i: number, n: number, frames: Uint8Array[]): number {
    const buf = this.buf;
    const cap = buf.length;
    let z = chunk.indexOf(FRAME_DELIMITER, i);
    if (z < 0) z = n;
    while (i < n) {
      if (i === z) {
        this.endFrame(frames);
        return i + 1;
      }
      if (this.remaining === 0) {
        // A code byte: the previous block (if any, and shorter than 255) ends in a zero.
        const b = chunk[i]!;
        if (this.code !== 0 && this.code !== 0xff) {
          if (this.len === cap) {
            this.oversize(); // the drop path scans from this byte
            return i;
          }
          buf[this.len++] = 0;
        }
        this.wire++;
        this.code = b;
        this.remaining = b - 1;
        i++;
        continue;
      }
      // Data bytes of the current block: the run up to the block end, a delimiter or the chunk end.
      let end = i + this.remaining;
      if (end > z) end = z;
      const len = this.len;
      const stop = end - i > cap - len ? i + (cap - len) : end;
      const run = stop - i;
      if (run > 16) buf.set(chunk.subarray(i, stop), len);
      else for (let k = 0; k < run; k++) buf[len + k] = chunk[i + k]!;
      this.len = len + run;
      this.remaining -= run;
      this.wire += run;
      i = stop;
      if (stop < end) {
        this.oversize(); // full before the block ended
        return i;
      }
    }
    return i;
  }

  private oversize(): void {
    this.stats.oversize++;
    this.dropping = true;
  }

  private endFrame(out: Uint8Array[]): void {
    const wire = this.wire;
    if (wire === 0) return; // back-to-back delimiters: nothing to say
    if (this.remaining !== 0) {
      this.stats.badCobs++;
      this.stats.discardedBytes += wire;
    } else if (this.len < CRC_BYTES) {
      this.stats.runt++;
      this.stats.discardedBytes += wire;
    } else {
      const n = this.len - CRC_BYTES;
      const buf = this.buf;
      const got = (buf[n]! | (buf[n + 1]! << 8) | (buf[n + 2]! << 16) | (buf[n + 3]! << 24)) >>> 0;
      if (crc32c(buf, 0, 0, n) === got) {
        this.stats.frames++;
        out.push(buf.slice(0, n));
      } else {
        this.stats.badCrc++;
        this.stats.discardedBytes += wire;
      }
    }
    this.startFrame();
  }

  private startFrame(): void {
    this.len = 0;
    this.remaining = 0;
    this.code = 0;
    this.dropping = false;
    this.wire = 0;
  }
}
