/**
 * The journal's row codec (gateway/log/journal-table.ts): a row (one commit group's entries) is
 * a canonical CBOR array whose items are exactly the CBOR items the frames block will hold for
 * those entries, it decodes to the same entries, and any bytes at all decode to a row or to
 * undefined, never an exception.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeJournalRow, encodeJournalRow } from '../../gateway/log/journal-table.js';
import { encodeBlock, encodeCanonical, type FrameEntry, MAX_BLOCK_FRAMES } from '../../protocols/index.js';

const entryArb: fc.Arbitrary<FrameEntry> = fc.record({
  frame: fc.uint8Array({ minLength: 1, maxLength: 600 }),
  rxTime: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  transport: fc.constantFrom('mqtt', 'serial', 'ble', 'bench'),
});

const blockOf = (body: FrameEntry[]): Uint8Array =>
  encodeBlock({
    author: new Uint8Array(32).fill(3),
    stream: 'default',
    seq: 0,
    lamport: 1,
    prev: null,
    parents: [],
    policy: 'default',
    kind: 'frames',
    body,
  });

describe('journal row codec', () => {
  it('round-trips, and each entry sits verbatim in the frames block that holds the row', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 12 }), (es) => {
        const row = encodeJournalRow(es);
        const back = decodeJournalRow(row);
        expect(back).toHaveLength(es.length);
        es.forEach((e, i) => {
          expect(back![i]!.rxTime).toBe(e.rxTime);
          expect(back![i]!.transport).toBe(e.transport);
          expect(Buffer.from(back![i]!.frame).equals(Buffer.from(e.frame))).toBe(true);
        });
        // A row holding a whole block's entries is its body array; its items are the entries' bytes.
        const block = Buffer.from(blockOf(es));
        expect(block.includes(row)).toBe(true);
        for (const e of es)
          expect(block.includes(Buffer.from(encodeCanonical([e.frame, e.rxTime, e.transport])))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes any bytes to a row or undefined, never throwing; bounded in size and length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const es = decodeJournalRow(b);
        if (es !== undefined) {
          expect(es.length).toBeGreaterThan(0);
          expect(Buffer.from(encodeJournalRow(es)).length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 2000 },
    );
    // Rows of entries mutated anywhere: still never a throw.
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat({ max: 255 }), (es, at, v) => {
        const row = encodeJournalRow(es);
        row[at % row.length] = v;
        decodeJournalRow(row);
      }),
      { numRuns: 1000 },
    );
    expect(decodeJournalRow(new Uint8Array(600_000))).toBeUndefined();
    expect(decodeJournalRow(encodeCanonical([]))).toBeUndefined();
    const tooMany = Array.from({ length: MAX_BLOCK_FRAMES + 1 }, () => ({
      frame: new Uint8Array([1]),
      rxTime: 1,
      transport: 'mqtt',
    }));
    expect(decodeJournalRow(encodeJournalRow(tooMany))).toBeUndefined();
  });
});
