/**
 * The PostgreSQL sink's COPY encoding written straight from each frame's records
 * (gateway/export/sinks/pg-batch.ts `encodeBatch`) against the rows the upsert path builds
 * (`batchRows`, arrays of values) run through the generic encoder (`copyBinary`): the same
 * bytes for both tables, and the same per-bucket sums as summing the numeric records rows.
 * fast-check: random readings (every value kind, units, sums, relative and absolute times,
 * text that needs no escaping and text that would).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchRows, encodeBatch, FRAME_TYPES, RECORD_TYPES } from '../../gateway/export/sinks/pg-batch.js';
import { copyBinary } from '../../gateway/export/sinks/pg-copy.js';
import { bucketSums } from '../../gateway/export/sinks/pg-rollups.js';
import type { ExportFrame } from '../../gateway/export/source.js';
import { type SenmlRecord, signBody } from '../../protocols/index.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

const value = fc.oneof(
  fc.record({ v: fc.oneof(fc.integer({ min: -1e6, max: 1e6 }), fc.double({ noNaN: true, min: -1e9, max: 1e9 })) }),
  fc.record({ vs: fc.string({ maxLength: 12, unit: 'binary' }) }),
  fc.record({ vb: fc.boolean() }),
  fc.record({ vd: fc.uint8Array({ maxLength: 12 }) }),
);
const record = fc
  .tuple(
    fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/),
    value,
    fc.option(fc.constantFrom('Cel', '%RH', 'V'), { nil: undefined }),
    fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
    fc.option(fc.oneof(fc.integer({ min: -600, max: 600 }), fc.constant(T0 / 1000 + 7.25)), { nil: undefined }),
  )
  .map(
    ([n, v, u, s, t]): SenmlRecord => ({
      n,
      ...v,
      ...(u !== undefined && { u }),
      ...(s !== undefined && { s }),
      ...(t !== undefined && { t }),
    }),
  );
const frameArb = fc.record({
  device: fc.constantFrom('dev-a', 'dev-b', 'dev-c'),
  seq: fc.integer({ min: 0, max: 1e6 }),
  base: fc.option(fc.constantFrom('room1:', 'x.'), { nil: undefined }),
  records: fc.array(record, { minLength: 1, maxLength: 4 }),
});

type FrameIn = typeof frameArb extends fc.Arbitrary<infer T> ? T : never;

function exportFrame(f: FrameIn, i: number): ExportFrame {
  const records = f.records.map((r, j) => (j === 0 && f.base ? { bn: f.base, ...r } : r));
  const frame = signBody(
    { type: 'reading', boot: 1, seq: f.seq, time: T0 / 1000 + f.seq, records },
    f.device,
    () => new Uint8Array(64),
  );
  return {
    device: f.device,
    boot: 1,
    seq: f.seq,
    rxTime: T0 + i * 1000,
    transport: 'mqtt',
    frame,
    author: 'ab'.repeat(32),
    policy: 'default@1',
    block: 'cd'.repeat(32),
    index: i,
  };
}

const gatewayName = (a: string): string => `gw-${a.slice(0, 4)}`;

describe('PostgreSQL sink: COPY rows straight from the records', () => {
  it('[property] encodes the bytes and sums the generic rows give', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 12 }), (fs) => {
        const frames = fs.map(exportFrame);
        const enc = encodeBatch(frames, gatewayName);
        const rows = batchRows(frames, gatewayName);
        expect(Buffer.concat(enc.frames)).toEqual(Buffer.concat(copyBinary(rows.frames, FRAME_TYPES)));
        if (rows.records.length === 0) expect(enc.records).toBeUndefined();
        else expect(Buffer.concat(enc.records!)).toEqual(Buffer.concat(copyBinary(rows.records, RECORD_TYPES)));
        const numeric = rows.records
          .filter((r) => r[6] !== null)
          .map((r) => ({
            device: r[0] as string,
            name: r[4] as string,
            time: (r[5] as Date).getTime(),
            value: r[6] as number,
          }));
        expect(enc.sums).toEqual(bucketSums(numeric));
      }),
      { numRuns: 200 },
    );
  });
});
