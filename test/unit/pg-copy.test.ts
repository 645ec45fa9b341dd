/**
 * COPY's binary format as the PostgreSQL sink writes it (gateway/export/sinks/pg-copy.ts),
 * read back by a reader written from PostgreSQL's docs ("COPY", Binary Format): the header,
 * per row a 16-bit field count and per field a 32-bit length (-1: NULL) and its bytes, the
 * trailer -1. fast-check: any rows of every column type read back equal, whatever the chunking.
 * (test/integration/postgres-sink-batch.test.ts sends the same encoding to a real server.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CopyType, type CopyValue, copyBinary } from '../../gateway/export/sinks/pg-copy.js';

const TYPES: CopyType[] = ['text', 'int4', 'int8', 'float8', 'bool', 'timestamptz', 'bytea'];
const PG_EPOCH_MS = 946_684_800_000;

/** Reads the stream back into rows; throws on anything malformed. */
function read(chunks: readonly Buffer[], types: readonly CopyType[]): CopyValue[][] {
  const b = Buffer.concat(chunks);
  expect(b.subarray(0, 11)).toEqual(Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'));
  expect(b.readInt32BE(11)).toBe(0); // flags
  let at = 15 + 4 + b.readInt32BE(15);
  const rows: CopyValue[][] = [];
  for (;;) {
    const n = b.readInt16BE(at);
    at += 2;
    if (n === -1) break;
    expect(n).toBe(types.length);
    const row: CopyValue[] = [];
    for (const t of types) {
      const len = b.readInt32BE(at);
      at += 4;
      if (len === -1) {
        row.push(null);
        continue;
      }
      const f = b.subarray(at, at + len);
      at += len;
      const int64 = (): number => f.readInt32BE(0) * 4_294_967_296 + f.readUInt32BE(4);
      if (t === 'text') row.push(f.toString('utf8'));
      else if (t === 'int4') row.push(f.readInt32BE(0));
      else if (t === 'int8') row.push(int64());
      else if (t === 'float8') row.push(f.readDoubleBE(0));
      else if (t === 'bool') row.push(f[0] === 1);
      else if (t === 'timestamptz') row.push(new Date(int64() / 1000 + PG_EPOCH_MS));
      else row.push(new Uint8Array(f));
    }
    rows.push(row);
  }
  expect(at).toBe(b.length);
  return rows;
}

const value = (t: CopyType): fc.Arbitrary<CopyValue> =>
  fc.option<CopyValue>(
    (t === 'text'
      ? fc.string({ unit: 'binary', maxLength: 40 })
      : t === 'int4'
        ? fc.integer()
        : t === 'int8'
          ? fc.maxSafeInteger()
          : t === 'float8'
            ? fc.double()
            : t === 'bool'
              ? fc.boolean()
              : t === 'timestamptz'
                ? fc.integer({ min: -8e12, max: 8e12 }).map((ms) => new Date(ms))
                : fc.uint8Array({ maxLength: 3000 })) as fc.Arbitrary<CopyValue>,
    { nil: null },
  );

describe('COPY binary format', () => {
  it('[property] rows of every column type read back equal, across chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(...TYPES.map(value)), { maxLength: 120 }).map((rs) => rs as CopyValue[][]),
        (rows) => {
          const chunks = copyBinary(rows, TYPES);
          for (const c of chunks.slice(0, -1)) expect(c.length).toBeGreaterThan(0);
          // Lone surrogates are not UTF-8: they arrive as U+FFFD, as Buffer.from writes them.
          const want = rows.map((r) =>
            r.map((v, i) => (TYPES[i] === 'text' && typeof v === 'string' ? Buffer.from(v).toString('utf8') : v)),
          );
          expect(read(chunks, TYPES)).toEqual(want);
        },
      ),
    );
  });

  it('writes an empty stream as header and trailer; large rows span many chunks', () => {
    expect(read(copyBinary([], ['text']), ['text'])).toEqual([]);
    const big = new Uint8Array(200_000).fill(7);
    const chunks = copyBinary([[big], [big]], ['bytea']);
    expect(chunks.length).toBeGreaterThan(1);
    expect(read(chunks, ['bytea'])).toEqual([[big], [big]]);
  });
});
