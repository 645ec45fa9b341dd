/**
 * `/api/frames` writes its page as JSON bytes row by row (gateway/api/frames-json.ts); the API's
 * answer must stay byte for byte what JSON.stringify of the ApiFrame objects gave
 * (gateway/api/decode.ts, apiFrame), for any stored frame, any strings and any times.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCbor } from '../../protocols/cbor.js';
import { encodeSign1 } from '../../protocols/cose.js';
import { apiFrame } from '../../gateway/api/decode.js';
import { FramesJson } from '../../gateway/api/frames-json.js';
import { mutated, sig } from '../helpers/frame-arbitraries.js';

/** Strings with what JSON escapes or encodes in more than one byte. */
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.string({
    unit: fc.constantFrom('a', '"', '\\', '\n', '\u0000', '\u001f', '\u007f', 'é', '\u2028', '\ud800', '😀'),
    maxLength: 6,
  }),
);
/** Milliseconds: this year's, whole and not, and the edges of toISOString's formats. */
const ms = fc.oneof(
  fc.integer({ min: 1_700_000_000_000, max: 1_900_000_000_000 }),
  fc.integer({ min: 0, max: 253_402_300_799_999 }),
  fc.constantFrom(0, -0, -1, 59_999, 60_000, 253_402_300_799_999, 253_402_300_800_000, 8.64e15, -8.64e15, 8.64e15 + 1),
  fc.double({ min: -1e16, max: 1e16, noNaN: true }),
  fc.double({ min: 0, max: 2e12, noNaN: true }),
  fc.constantFrom(0.5, 1_760_000_000_000.5, 253_402_300_799_999.5),
);
/** Readings with odd units, names, string values, data values and times. */
const oddReading = fc
  .record({
    bn: fc.option(fc.string({ unit: 'binary', maxLength: 6 }), { nil: undefined }),
    // base value and sum: with a large value they add up to ±Infinity (JSON null)
    bv: fc.option(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1e308, -1e308)), {
      nil: undefined,
    }),
    bs: fc.option(fc.constantFrom(1e308, -1e308, 0.1), { nil: undefined }),
    n: fc.constantFrom('temp', 'x', 'a:b'),
    u: fc.option(text, { nil: undefined }),
    val: fc.oneof(
      fc.oneof(fc.double(), fc.constant(1e308)).map((v) => [2, v] as const),
      text.map((v) => [3, v] as const),
      fc.boolean().map((v) => [4, v] as const),
      fc.uint8Array({ maxLength: 4 }).map((v) => [8, v] as const),
      fc.double().map((v) => [5, v] as const),
    ),
    t: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true }), fc.constant(2 ** 28)),
    time: fc.option(fc.oneof(fc.nat(), fc.constantFrom(2 ** 53 - 1, 8.64e15, 8.64e15 + 1)), { nil: undefined }),
  })
  .map(({ bn, bv, bs, n, u, val, t, time }) => {
    const rec = new Map<number, unknown>([[0, n], val, [6, t]]);
    if (bn !== undefined) rec.set(-2, bn);
    if (bv !== undefined) rec.set(-5, bv);
    if (bs !== undefined) rec.set(-6, bs);
    if (u !== undefined) rec.set(1, u);
    const body = new Map<number, unknown>([
      [0, 1],
      [1, 1],
      [2, 7],
    ]);
    if (time !== undefined) body.set(3, time);
    body.set(4, [rec]);
    return encodeSign1({ kid: new TextEncoder().encode('bg-1'), payload: encodeCbor(body) }, () => sig());
  });
const row = fc.record({
  device: fc.oneof(fc.constantFrom('bg-1', 'press-01'), text),
  boot: fc.oneof(fc.nat(), fc.constant(2 ** 32 - 1)),
  seq: fc.oneof(fc.nat(), fc.constant(2 ** 32 - 1)),
  rxTime: ms,
  transport: fc.oneof(fc.constantFrom('mqtt', 'ble'), text),
  policy: fc.oneof(fc.constant('default'), text),
  frame: fc.oneof(mutated, oddReading),
  heardBy: fc.oneof(fc.constantFrom('gw-a', 'did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX'), text),
});
type Row = typeof row extends fc.Arbitrary<infer R> ? R : never;

/** What the route sent before: JSON.stringify of the objects, encoded; or the error it threw. */
function reference(rows: readonly Row[], more: boolean, next: string | null): Buffer | Error {
  try {
    return Buffer.from(JSON.stringify({ frames: rows.map((r) => apiFrame(r, r.heardBy)), more, next }));
  } catch (e) {
    return e as Error;
  }
}
function written(rows: readonly Row[], more: boolean, next: string | null): Buffer | Error {
  try {
    const w = new FramesJson(Math.ceil(rows.length / 4)); // sized short: growing is tested too
    for (const r of rows) w.add(r, r.heardBy);
    return w.end(more, next).bytes;
  } catch (e) {
    return e as Error;
  }
}

describe('FramesJson', () => {
  it('writes the bytes JSON.stringify of the apiFrame objects gives, for any rows (or throws as apiFrame throws)', () => {
    fc.assert(
      fc.property(
        fc.array(row, { maxLength: 6 }),
        fc.boolean(),
        fc.option(fc.oneof(fc.constant('1760000000000/bg-1/1/2'), text), { nil: null }),
        (rows, more, next) => {
          const want = reference(rows, more, next);
          const got = written(rows, more, next);
          if (want instanceof Error) expect(got).toStrictEqual(want);
          else expect((got as Buffer).toString('latin1')).toBe(want.toString('latin1'));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('pages of neighbouring times (each date written from the minute before it) as JSON.stringify writes them', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 253_402_300_000_000 }),
        fc.array(fc.tuple(fc.integer({ min: -90_000, max: 90_000 }), oddReading), { minLength: 1, maxLength: 40 }),
        (base, steps) => {
          let t = base;
          const rows = steps.map(([d, frame]) => {
            t = Math.max(0, t + d);
            return {
              device: 'bg-1',
              boot: 1,
              seq: 2,
              rxTime: t,
              transport: 'mqtt',
              policy: 'default',
              frame,
              heardBy: 'gw-a',
            };
          });
          expect(written(rows, false, null)).toStrictEqual(reference(rows, false, null));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('grows past the buffer sized for its rows', () => {
    const frame = encodeSign1(
      {
        kid: new TextEncoder().encode('bg-1'),
        payload: encodeCbor(
          new Map<number, unknown>([
            [0, 1],
            [1, 1],
            [2, 7],
            [
              4,
              [
                new Map([
                  [0, 'x'],
                  [3, 'é'.repeat(200)],
                ]),
              ],
            ],
          ]),
        ),
      },
      () => sig(),
    );
    const rows = Array.from({ length: 300 }, (_, i) => ({
      device: 'bg-1',
      boot: 1,
      seq: i,
      rxTime: 1_760_000_000_000 + i * 997,
      transport: 'mqtt',
      policy: 'default',
      frame,
      heardBy: 'gw-a',
    }));
    const got = written(rows, true, '1/bg-1/1/2') as Buffer;
    expect(got.length).toBeGreaterThan(100_000);
    expect(got.equals(reference(rows, true, '1/bg-1/1/2') as Buffer)).toBe(true);
  });

  it('pages written one after another and side by side keep their own bytes (the buffer lent from page to page)', () => {
    const payload = encodeCbor(
      new Map<number, unknown>([
        [0, 1],
        [1, 1],
        [2, 7],
        [
          4,
          [
            new Map<number, unknown>([
              [0, 'x'],
              [2, 1.5],
            ]),
          ],
        ],
      ]),
    );
    const frame = encodeSign1({ kid: new TextEncoder().encode('bg-1'), payload }, () => sig());
    const row = (device: string, seq: number) => ({
      device,
      boot: 1,
      seq,
      rxTime: 1_760_000_000_000 + seq,
      transport: 'mqtt',
      policy: 'default',
      frame,
    });
    const devices = (b: Buffer): string[] => JSON.parse(b.toString()).frames.map((f: { device: string }) => f.device);
    const a = new FramesJson(2);
    const b = new FramesJson(2);
    a.add(row('a', 1), 'gw-a');
    b.add(row('b', 1), 'gw-a');
    const first = a.end(false, null).bytes;
    const c = new FramesJson(2); // takes a's buffer
    c.add(row('c', 1), 'gw-a');
    b.add(row('b', 2), 'gw-a');
    const second = b.end(true, 'x').bytes;
    const third = c.end(false, null).bytes;
    const d = new FramesJson(2); // takes c's buffer: the pages given out stay as they were
    d.add(row('d', 1), 'gw-a');
    d.end(false, null);
    expect([devices(first), devices(second), devices(third)]).toEqual([['a'], ['b', 'b'], ['c']]);
  });
});
