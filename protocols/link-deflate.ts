/**
 * Link-level compression of sync messages (gateway/sync/README.md, "Compression"):
 * the messages a side sends together are packed into a unit (`packMessages`), and each
 * unit is one raw DEFLATE stream (RFC 1951) with an 8 KiB window (zlib windowBits 13),
 * compressed against the last 8 KiB sent before it on the same link in the same direction,
 * which starts as a fixed preset (the bytes every frames block repeats: COSE_Sign1
 * header, SenML labels and units, the frame entry's shape). So later messages compress
 * against earlier ones, as permessage-deflate's context takeover does (RFC 7692 §7.1.1),
 * but every unit is a whole stream decoded by a one-shot, size-capped inflate: a
 * peer's decompression bomb is refused at `maxBytes`, never buffered.
 *
 * Both sides must agree, so it is negotiated in the link's signed challenge without a
 * field an older peer would refuse: the last 8 bytes of a side's 32-byte auth nonce are
 * a sentinel ("op-link" then a capability byte; bit 0: deflate), as TLS 1.3
 * marks a downgrade in ServerHello.random (RFC 8446 §4.1.3). An older gateway's nonce is
 * all random, so it matches with probability 2⁻⁵⁶ and is otherwise sent plain; both
 * nonces are signed in both proofs, so a relay that strips the bit fails the challenge.
 * Signatures, keys and hashes are random bytes and do not compress: what shrinks is the
 * structure around them.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';
import { concatBytes } from './bytes.js';

/**
 * How far back a message may refer (RFC 1951 §3.2.5 allows up to 32 768). 8 KiB: as small as
 * the ratio allows (blocks of 1 or 256 frames compress within 0.5 % of a 32 KiB window), and
 * each message is its own zlib call, whose set-up (hash table, dictionary) grows with it: a
 * small message costs ~30 µs of deflate against ~65 µs at 32 KiB.
 */
export const DEFLATE_WINDOW = 8 * 1024;
const WINDOW_BITS = 13;

/** "op-link" then the capability byte, at the end of the 32-byte auth nonce. */
const CAPABILITY_SENTINEL = Uint8Array.of(0x6f, 0x70, 0x2d, 0x6c, 0x69, 0x6e, 0x6b);
export const CAP_DEFLATE = 0x01;

/** Marks `nonce` (at least 8 bytes) as coming from a side with capabilities `caps`. */
export function markCapabilities(nonce: Uint8Array, caps: number): Uint8Array {
  if (nonce.length < 8 || caps < 0 || caps > 0xff) throw new ProtocolUsageError('link/bad-nonce', 'nonce or caps');
  const out = new Uint8Array(nonce);
  out.set(CAPABILITY_SENTINEL, out.length - 8);
  out[out.length - 1] = caps;
  return out;
}

/** The capabilities a peer's nonce announces (0: none, e.g. an older gateway's random nonce). */
export function capabilitiesOf(nonce: Uint8Array): number {
  if (nonce.length < 8) return 0;
  const at = nonce.length - 8;
  for (let i = 0; i < CAPABILITY_SENTINEL.length; i++) if (nonce[at + i] !== CAPABILITY_SENTINEL[i]) return 0;
  return nonce[nonce.length - 1]!;
}

/**
 * The starting window of both directions: one frames-block entry with its random bytes
 * (keys, hashes, signatures) left out, and the strings that recur around them. Part of the
 * wire format: a change needs a new capability bit.
 */
const PRESET = new TextEncoder().encode(
  // Transports, the default stream, firmware-sim's SenML names and units (firmware-sim/sensors.ts).
  '\u0000serial\u0000ble\u0000mqtt\u0000default\u0000door\u0000count\u0000press\u0000Pa\u0000vib\u0000m/s2\u0000hum\u0000%RH',
);
const PRESET_BYTES = (() => {
  // A frame entry [frame, rxTime, transport] of a frames block: a COSE_Sign1 (tag 18, RFC 9052
  // §4.2) with protected {1: -8} and unprotected {4: kid}, a reading {0: 1, 1: boot, 2: seq,
  // 3: time, 4: [SenML record {-2: bn, 0: n, 1: u, 2: v}]} (RFC 8428 §6), the 64-byte
  // signature's header; then the receive time and "mqtt". Common parts in the order they follow.
  const parts = [
    PRESET,
    [0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0xa1, 0x04],
    [0xa5, 0x00, 0x01, 0x01],
    [0x03, 0x1b, 0x00, 0x00, 0x01, 0x99],
    [0x04, 0x81, 0xa4, 0x21],
    [0x00, 0x64, 0x74, 0x65, 0x6d, 0x70, 0x01, 0x63, 0x43, 0x65, 0x6c, 0x02],
    [0x58, 0x40],
    [0x1b, 0x00, 0x00, 0x01, 0x99, 0x64, 0x6d, 0x71, 0x74, 0x74, 0x83, 0x58],
  ].map((p) => Uint8Array.from(p));
  return concatBytes(...parts);
})();

/** One direction's window: the last DEFLATE_WINDOW bytes of the preset and the messages so far. */
class Window {
  private buf: Uint8Array = PRESET_BYTES;

  get bytes(): Uint8Array {
    return this.buf;
  }

  add(msg: Uint8Array): void {
    if (msg.length >= DEFLATE_WINDOW) {
      this.buf = msg.slice(msg.length - DEFLATE_WINDOW);
      return;
    }
    const keep = Math.min(this.buf.length, DEFLATE_WINDOW - msg.length);
    const next = new Uint8Array(keep + msg.length);
    next.set(this.buf.subarray(this.buf.length - keep));
    next.set(msg, keep);
    this.buf = next;
  }
}

/** The sending half: each message compressed against the ones sent before it. */
export class MessageDeflater {
  private readonly window = new Window();

  constructor(private readonly level = 6) {}

  deflate(msg: Uint8Array): Uint8Array {
    const out = deflateRawSync(msg, { level: this.level, windowBits: WINDOW_BITS, dictionary: this.window.bytes });
    this.window.add(msg);
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }
}

/** The receiving half; a message that is not valid DEFLATE or inflates past `maxBytes` is refused. */
export class MessageInflater {
  private readonly window = new Window();
  private broken = false;

  constructor(private readonly maxBytes: number) {}

  inflate(bytes: Uint8Array): Result<Uint8Array> {
    // After a refused message the windows differ: nothing later can be read right.
    if (this.broken) return fail('link/deflate-broken', 'an earlier message was refused');
    let out: Buffer;
    try {
      // A distance past what is held (the window, then this message's own output) is refused
      // by zlib as "too far back": nothing is ever read from outside the two.
      out = inflateRawSync(bytes, {
        windowBits: WINDOW_BITS,
        dictionary: this.window.bytes,
        maxOutputLength: this.maxBytes,
      });
    } catch (e) {
      this.broken = true;
      const code = (e as { code?: string }).code;
      return code === 'ERR_BUFFER_TOO_LARGE'
        ? fail('link/deflate-too-large', `a message inflates past ${this.maxBytes} bytes`)
        : fail('link/deflate-bad', `not a raw DEFLATE stream: ${(e as Error).message}`);
    }
    const msg = new Uint8Array(out.buffer, out.byteOffset, out.length);
    this.window.add(msg);
    return ok(msg);
  }
}

/**
 * Several messages as one unit to deflate: each an unsigned LEB128 length (7 bits a byte, low
 * group first, as protobuf's varints) and its bytes. A link flushes small messages together,
 * so one zlib call and one transport message carry them.
 */
export function packMessages(msgs: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const m of msgs) n += m.length + 5;
  const out = new Uint8Array(n);
  let o = 0;
  for (const m of msgs) {
    for (let len = m.length; ; len = Math.floor(len / 128)) {
      if (len < 128) {
        out[o++] = len;
        break;
      }
      out[o++] = (len % 128) | 0x80;
    }
    out.set(m, o);
    o += m.length;
  }
  return out.subarray(0, o);
}

/** The messages of a unit; refused when a length runs past the unit, is over-long, or the unit is empty. */
export function unpackMessages(unit: Uint8Array): Result<Uint8Array[]> {
  const out: Uint8Array[] = [];
  let o = 0;
  while (o < unit.length) {
    let len = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      // 4 groups: 2^28 bytes, past any sync message; a longer length is not ours.
      if (i === 4 || o >= unit.length) return fail('link/bad-unit', 'a message length is cut or too long');
      const b = unit[o++]!;
      len += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) break;
    }
    if (len > unit.length - o) return fail('link/bad-unit', `a message of ${len} bytes runs past its unit`);
    out.push(unit.subarray(o, o + len));
    o += len;
  }
  return out.length > 0 ? ok(out) : fail('link/bad-unit', 'an empty unit');
}
