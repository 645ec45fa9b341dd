/**
 * The frames view's keys and values (data format 4, gateway/log/README.md "Reading frames"):
 * fixed-width big-endian Buffers, so lmdb's bytewise key order is the numeric order of the
 * fields, and each per-frame entry is a few dozen bytes instead of the ~200 of msgpack'd
 * device-id strings and 64-hex block hashes (format 3).
 *
 *   view key     dev u32 · boot u32 · seq u32                       12 B
 *   view value   block u32 · index u16 · rxTime t64                 14 B
 *   copy key     dev u32 · boot u32 · seq u32 · block u32 · index u16   18 B, value rxTime t64
 *   time key     rxTime t64 · dev u32 · boot u32 · seq u32          20 B, value pointer
 *   device key   dev u32 · rxTime t64 · boot u32 · seq u32          20 B, value pointer
 *   pointer      block u32 · index u16                              6 B
 *
 * `dev` and `block` are this directory's short numbers for a device id and a block hash
 * (numbers.ts); boot and seq are the frame's 32-bit counters; index < 1024 (a block's
 * entries). t64: a receive time (any integer a block may carry, |t| < 2^53) as a 64-bit
 * two's-complement integer with its sign bit flipped, so negative times sort first.
 * Decoders check the length and return undefined for anything else (a foreign key).
 * Range bounds are whole keys (`full`, `after`).
 */

export interface FrameKey {
  readonly dev: number;
  readonly boot: number;
  readonly seq: number;
}
/** A copy of a frame: its block's number, its index there and its author's receive time. */
export interface CopyRef {
  readonly block: number;
  readonly index: number;
  readonly rxTime: number;
}
export interface TimeKey extends FrameKey {
  readonly rxTime: number;
}
export interface Pointer {
  readonly block: number;
  readonly index: number;
}

const TWO32 = 4294967296;
const SIGN = 0x80000000;

// A key's first field has its top bit set (numbers stay below 2^31): lmdb-js 3.5 was seen to
// skip keys whose first byte is 0 when a range starts at its default beginning key ([0]).
function writeDev(b: Buffer, at: number, dev: number): void {
  b.writeUInt32BE((dev | SIGN) >>> 0, at);
}
function readDev(b: Buffer, at: number): number {
  return b.readUInt32BE(at) & 0x7fffffff;
}

function writeTime(b: Buffer, at: number, t: number): void {
  const hi = Math.floor(t / TWO32);
  b.writeUInt32BE((hi + SIGN) >>> 0, at);
  b.writeUInt32BE(t - hi * TWO32, at + 4);
}
function readTime(b: Buffer, at: number): number {
  return (b.readUInt32BE(at) - SIGN) * TWO32 + b.readUInt32BE(at + 4);
}

/** `into`: a scratch buffer of the key's length to write it in (a key lmdb copies at once). */
export function viewKey(dev: number, boot: number, seq: number, into?: Buffer): Buffer {
  const b = into ?? Buffer.allocUnsafe(12);
  writeDev(b, 0, dev);
  b.writeUInt32BE(boot, 4);
  b.writeUInt32BE(seq, 8);
  return b;
}
export function readViewKey(b: Buffer): FrameKey | undefined {
  if (b.length !== 12) return undefined;
  return { dev: readDev(b, 0), boot: b.readUInt32BE(4), seq: b.readUInt32BE(8) };
}

export function copyValue(c: CopyRef): Buffer {
  const b = Buffer.allocUnsafe(14);
  b.writeUInt32BE(c.block, 0);
  b.writeUInt16BE(c.index, 4);
  writeTime(b, 6, c.rxTime);
  return b;
}
export function readCopyValue(b: Buffer): CopyRef | undefined {
  if (b.length !== 14) return undefined;
  return { block: b.readUInt32BE(0), index: b.readUInt16BE(4), rxTime: readTime(b, 6) };
}

export function copyKey(k: FrameKey, block: number, index: number, into?: Buffer): Buffer {
  const b = into ?? Buffer.allocUnsafe(18);
  writeDev(b, 0, k.dev);
  b.writeUInt32BE(k.boot, 4);
  b.writeUInt32BE(k.seq, 8);
  b.writeUInt32BE(block, 12);
  b.writeUInt16BE(index, 16);
  return b;
}
export function readCopyKey(b: Buffer): (FrameKey & Pointer) | undefined {
  if (b.length !== 18) return undefined;
  return {
    dev: readDev(b, 0),
    boot: b.readUInt32BE(4),
    seq: b.readUInt32BE(8),
    block: b.readUInt32BE(12),
    index: b.readUInt16BE(16),
  };
}

export function timeValue(t: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeTime(b, 0, t);
  return b;
}
export function readTimeValue(b: Buffer): number | undefined {
  return b.length === 8 ? readTime(b, 0) : undefined;
}

export function timeKey(k: TimeKey, into?: Buffer): Buffer {
  const b = into ?? Buffer.allocUnsafe(20);
  writeTime(b, 0, k.rxTime);
  b.writeUInt32BE(k.dev, 8);
  b.writeUInt32BE(k.boot, 12);
  b.writeUInt32BE(k.seq, 16);
  return b;
}
export function readTimeKey(b: Buffer): TimeKey | undefined {
  if (b.length !== 20) return undefined;
  return { rxTime: readTime(b, 0), dev: b.readUInt32BE(8), boot: b.readUInt32BE(12), seq: b.readUInt32BE(16) };
}

export function deviceKey(k: TimeKey, into?: Buffer): Buffer {
  const b = into ?? Buffer.allocUnsafe(20);
  writeDev(b, 0, k.dev);
  writeTime(b, 4, k.rxTime);
  b.writeUInt32BE(k.boot, 12);
  b.writeUInt32BE(k.seq, 16);
  return b;
}
export function readDeviceKey(b: Buffer): TimeKey | undefined {
  if (b.length !== 20) return undefined;
  return { dev: readDev(b, 0), rxTime: readTime(b, 4), boot: b.readUInt32BE(12), seq: b.readUInt32BE(16) };
}

/** Range bounds: a key prefix (the first fields of a key, the rest lowest). */
export function timePrefix(rxTime: number): Buffer {
  return timeValue(rxTime);
}
export function devicePrefix(dev: number, rxTime?: number): Buffer {
  const b = Buffer.allocUnsafe(rxTime === undefined ? 4 : 12);
  writeDev(b, 0, dev);
  if (rxTime !== undefined) writeTime(b, 4, rxTime);
  return b;
}
export function framePrefix(dev: number, boot?: number, seq?: number): Buffer {
  const b = Buffer.allocUnsafe(4 + (boot === undefined ? 0 : 4) + (seq === undefined ? 0 : 4));
  writeDev(b, 0, dev);
  if (boot !== undefined) b.writeUInt32BE(boot, 4);
  if (seq !== undefined) b.writeUInt32BE(seq, 8);
  return b;
}
/** Key lengths of the tables (every key of a table has its length). */
export const VIEW_KEY = 12;
export const COPY_KEY = 18;
export const TIME_KEY = 20;

/**
 * A range bound of a table whose keys are `len` bytes: `p` padded with zeros. lmdb-js 3.5
 * positions a binary-key range at a start key without honouring its length (bytes left from
 * an earlier key follow it), so every bound is a whole key.
 */
export function full(p: Buffer, len: number): Buffer {
  if (p.length >= len) return p;
  const b = Buffer.alloc(len);
  p.copy(b);
  return b;
}

/** The least `len`-byte key after every key starting with `p` (p is never all 0xff here). */
export function after(p: Buffer, len: number): Buffer {
  const b = Buffer.alloc(Math.max(len, p.length));
  p.copy(b);
  for (let i = p.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]!++;
      b.fill(0, i + 1);
      return b;
    }
  }
  throw new RangeError('no key follows an all-0xff prefix');
}

export function pointer(p: Pointer): Buffer {
  const b = Buffer.allocUnsafe(6);
  b.writeUInt32BE(p.block, 0);
  b.writeUInt16BE(p.index, 4);
  return b;
}
export function readPointer(b: Buffer): Pointer | undefined {
  return b.length === 6 ? { block: b.readUInt32BE(0), index: b.readUInt16BE(4) } : undefined;
}
/** A pointer's block number alone (no object: the read-ahead walks many). */
export function blockOf(b: Buffer): number | undefined {
  return b.length === 6 ? b.readUInt32BE(0) : undefined;
}
