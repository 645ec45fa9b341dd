/**
 * The serial frame format and the streaming deframer (protocols/serial-framing.ts):
 * `COBS(frame ‖ CRC-32C LE) 0x00`, random splits, random noise, limits and
 * counters. Each test names the behaviour it checks.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cobsEncode } from '../../protocols/cobs.js';
import { crc32c } from '../../protocols/crc32c.js';
import { Deframer, encodeSerialFrame, serialFrameMaxWireLength } from '../../protocols/serial-framing.js';
import { toHex } from './vector-helpers.js';

const cat = (parts: readonly Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));

/** Pushes `stream` cut at the given points; returns the frames and the largest buffered size seen. */
function pushSplit(d: Deframer, stream: Uint8Array, cuts: number[]): { frames: Uint8Array[]; maxBuffered: number } {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const frames: Uint8Array[] = [];
  let maxBuffered = 0;
  let at = 0;
  for (const p of [...points, stream.length]) {
    frames.push(...d.push(stream.subarray(at, p)));
    maxBuffered = Math.max(maxBuffered, d.buffered);
    at = p;
  }
  return { frames, maxBuffered };
}

describe('serial frame encoding (clause: COBS(frame ‖ CRC-32C) 0x00)', () => {
  it('writes the CRC little-endian after the frame, COBS-encodes both and ends with 0x00', () => {
    const frame = new TextEncoder().encode('123456789'); // CRC-32C e3069283
    expect(toHex(encodeSerialFrame(frame))).toBe('0e' + '313233343536373839' + '839206e3' + '00');
  });

  it('a frame with zeros: every 0x00 is stuffed, only the delimiter is zero', () => {
    const frame = Uint8Array.from([0x00, 0xd2, 0x00, 0x00]);
    const wire = encodeSerialFrame(frame);
    expect(wire.indexOf(0)).toBe(wire.length - 1);
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32c(frame));
    expect(toHex(wire)).toBe(toHex(cat([cobsEncode(cat([frame, crc])), Uint8Array.of(0)])));
  });

  it('wire length stays within serialFrameMaxWireLength', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (f) => {
        expect(encodeSerialFrame(f).length).toBeLessThanOrEqual(serialFrameMaxWireLength(f.length));
      }),
      { numRuns: 200 },
    );
  });
});

const frameArb = fc.uint8Array({ minLength: 0, maxLength: 700 });

describe('deframer over random splits (clause: every intact frame is recovered)', () => {
  it('recovers exactly the frames sent, in order, however the stream is cut', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
        const d = new Deframer({ maxFrameBytes: 1024 });
        const { frames: got, maxBuffered } = pushSplit(d, cat(frames.map(encodeSerialFrame)), cuts);
        expect(got.map(toHex)).toEqual(frames.map(toHex));
        expect(d.stats).toMatchObject({
          frames: frames.length,
          badCrc: 0,
          badCobs: 0,
          oversize: 0,
          runt: 0,
          discardedBytes: 0,
        });
        expect(maxBuffered).toBeLessThanOrEqual(1024 + 4);
      }),
      { numRuns: 300 },
    );
  });

  it('byte-at-a-time gives the same frames and counters as one push', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(frameArb.map(encodeSerialFrame), fc.uint8Array({ maxLength: 64 })), { maxLength: 12 }),
        (parts) => {
          const stream = cat(parts);
          const a = new Deframer({ maxFrameBytes: 512 });
          const b = new Deframer({ maxFrameBytes: 512 });
          const whole = a.push(stream);
          const bytewise: Uint8Array[] = [];
          for (let i = 0; i < stream.length; i++) bytewise.push(...b.push(stream.subarray(i, i + 1)));
          expect(bytewise.map(toHex)).toEqual(whole.map(toHex));
          expect(b.stats).toEqual(a.stats);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('pushes of any size (runs copied whole, as 244-byte ATT payloads bring them) give the same frames and counters as byte-at-a-time', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            frameArb.map(encodeSerialFrame),
            fc.uint8Array({ maxLength: 300 }),
            fc.integer({ min: 500, max: 1500 }).map((n) => new Uint8Array(n).fill(0x55)),
          ),
          { maxLength: 12 },
        ),
        fc.integer({ min: 2, max: 300 }),
        (parts, size) => {
          const stream = cat(parts);
          const a = new Deframer({ maxFrameBytes: 512 });
          const b = new Deframer({ maxFrameBytes: 512 });
          const sized: Uint8Array[] = [];
          for (let i = 0; i < stream.length; i += size) sized.push(...a.push(stream.subarray(i, i + size)));
          const bytewise: Uint8Array[] = [];
          for (let i = 0; i < stream.length; i++) bytewise.push(...b.push(stream.subarray(i, i + 1)));
          expect(sized.map(toHex)).toEqual(bytewise.map(toHex));
          expect(a.stats).toEqual(b.stats);
          expect(a.buffered).toBe(b.buffered);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** A stream segment: a clean frame, or noise of some kind. */
type Segment = { kind: 'frame'; frame: Uint8Array } | { kind: 'noise'; bytes: Uint8Array; from?: Uint8Array };

const noiseArb = (frames: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Segment> =>
  fc
    .oneof(
      // random bytes (may or may not contain delimiters)
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => ({ bytes })),
      // a frame with one bit flipped (the flip may hit the delimiter or make a new one)
      fc.tuple(frames, fc.nat(), fc.integer({ min: 0, max: 7 })).map(([f, at, bit]) => {
        const w = Uint8Array.from(encodeSerialFrame(f));
        w[at % w.length]! ^= 1 << bit;
        return { bytes: w, from: f };
      }),
      // a frame with one byte dropped or duplicated
      fc.tuple(frames, fc.nat(), fc.boolean()).map(([f, at, dup]) => {
        const w = encodeSerialFrame(f);
        const i = at % w.length;
        // (a duplicated delimiter leaves the frame intact: it may then be reported)
        return {
          bytes: dup ? cat([w.subarray(0, i + 1), w.subarray(i)]) : cat([w.subarray(0, i), w.subarray(i + 1)]),
          from: f,
        };
      }),
      // a truncated frame (no delimiter: it swallows what follows up to the next 0x00)
      fc.tuple(frames, fc.nat()).map(([f, at]) => {
        const w = encodeSerialFrame(f);
        return { bytes: w.subarray(0, at % w.length), from: f };
      }),
      // a long run without delimiters (oversize)
      fc.integer({ min: 600, max: 3000 }).map((n) => ({ bytes: new Uint8Array(n).fill(0x55) })),
    )
    .map((n) => ({ kind: 'noise', ...n }) as Segment);

describe('deframer over random noise (clauses: every intact frame recovered, no frame reported that was not sent, resync on 0x00)', () => {
  it('recovers every frame preceded by a delimiter, and only frames that were sent', () => {
    const frames = fc.uint8Array({ minLength: 1, maxLength: 400 });
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            { arbitrary: frames.map((frame) => ({ kind: 'frame', frame }) as Segment), weight: 2 },
            { arbitrary: noiseArb(frames), weight: 1 },
          ),
          { maxLength: 30 },
        ),
        fc.array(fc.nat(), { maxLength: 30 }),
        (segments, cuts) => {
          const d = new Deframer({ maxFrameBytes: 500 });
          const wire = segments.map((s) => (s.kind === 'frame' ? encodeSerialFrame(s.frame) : s.bytes));
          const stream = cat(wire);
          const { frames: got, maxBuffered } = pushSplit(d, stream, cuts);
          // What the device sent, in order: clean frames and the frames that noise was applied to.
          const sent = segments.flatMap((s) => (s.kind === 'frame' ? [toHex(s.frame)] : s.from ? [toHex(s.from)] : []));
          // A clean frame is intact on the line when the byte before it is a delimiter (or it starts the stream).
          const intact: string[] = [];
          let offset = 0;
          segments.forEach((s, i) => {
            if (s.kind === 'frame' && (offset === 0 || stream[offset - 1] === 0)) intact.push(toHex(s.frame));
            offset += wire[i]!.length;
          });
          const gotHex = got.map(toHex);
          // no frame that was not sent, in order: gotHex is a subsequence of sent
          let j = 0;
          for (const g of gotHex) {
            while (j < sent.length && sent[j] !== g) j++;
            expect(j, `reported frame ${g.slice(0, 32)}… was never sent (or out of order)`).toBeLessThan(sent.length);
            j++;
          }
          // every intact frame recovered
          for (const f of intact) expect(gotHex).toContain(f);
          expect(d.stats.frames).toBe(got.length);
          expect(maxBuffered).toBeLessThanOrEqual(504);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('deframer limits and counters (clause: max frame size, counters for bad CRC / bad COBS / oversize)', () => {
  it('accepts a frame of exactly maxFrameBytes and drops one byte more as oversize, then resyncs', () => {
    const d = new Deframer({ maxFrameBytes: 300 });
    const ok = new Uint8Array(300).fill(9);
    const big = new Uint8Array(301).fill(9);
    const after = Uint8Array.of(1, 2, 3);
    const got = d.push(cat([encodeSerialFrame(ok), encodeSerialFrame(big), encodeSerialFrame(after)]));
    expect(got.map(toHex)).toEqual([toHex(ok), toHex(after)]);
    expect(d.stats.oversize).toBe(1);
    expect(d.stats.discardedBytes).toBe(encodeSerialFrame(big).length - 1);
  });

  it('holds at most maxFrameBytes + 4 bytes whatever a delimiter-free flood brings', () => {
    const d = new Deframer({ maxFrameBytes: 64 });
    const junk = new Uint8Array(1 << 20).fill(0xaa);
    for (let i = 0; i < 8; i++) {
      expect(d.push(junk)).toEqual([]);
      expect(d.buffered).toBeLessThanOrEqual(68);
    }
    expect(d.stats.oversize).toBe(1); // one long frame, dropped once
    expect(d.push(cat([Uint8Array.of(0), encodeSerialFrame(Uint8Array.of(7))])).map(toHex)).toEqual(['07']);
    expect(d.stats.discardedBytes).toBe(8 << 20);
  });

  it('counts a bad CRC, a cut COBS block and a runt, and skips empty frames silently', () => {
    const d = new Deframer();
    const w = Uint8Array.from(encodeSerialFrame(Uint8Array.of(1, 2, 3, 4, 5)));
    w[2]! ^= 0x10; // data byte: CRC fails
    const cut = Uint8Array.of(0x09, 1, 2, 0); // code promises 8 bytes, delimiter after 2
    const runt = Uint8Array.of(0x03, 1, 2, 0); // 2 bytes: shorter than a CRC
    expect(d.push(cat([Uint8Array.of(0, 0, 0), w, cut, runt, Uint8Array.of(0)]))).toEqual([]);
    expect(d.stats).toMatchObject({ frames: 0, badCrc: 1, badCobs: 1, runt: 1, oversize: 0 });
    expect(d.stats.discardedBytes).toBe(w.length - 1 + 3 + 3);
  });

  it('reset() forgets a partial frame', () => {
    const d = new Deframer();
    const w = encodeSerialFrame(Uint8Array.of(1, 2, 3));
    d.push(w.subarray(0, 3));
    d.reset();
    expect(d.push(w).map(toHex)).toEqual(['010203']);
    expect(d.stats.discardedBytes).toBe(3);
  });

  it('refuses a nonsensical limit', () => {
    expect(() => new Deframer({ maxFrameBytes: 0 })).toThrow(/maxFrameBytes/);
  });
});
