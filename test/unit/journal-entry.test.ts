/**
 * The journal's entry codec (gateway/log/journal-table.ts): an entry's bytes are exactly the
 * CBOR item its frames block will hold for it, they decode to the same entry, and any bytes at
 * all decode to an entry or to undefined, never an exception.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeJournalEntry, encodeJournalEntry } from '../../gateway/log/journal-table.js';
import { encodeBlock, type FrameEntry } from '../../protocols/index.js';

const entryArb: fc.Arbitrary<FrameEntry> = fc.record({
  frame: fc.uint8Array({ minLength: 1, maxLength: 600 }),
  rxTime: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  transport: fc.constantFrom('mqtt', 'serial', 'ble', 'bench'),
});

describe('journal entry codec', () => {
  it('round-trips, and the bytes sit verbatim in the frames block that holds the entry', () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        const bytes = encodeJournalEntry(e);
        const back = decodeJournalEntry(bytes);
        expect(back?.rxTime).toBe(e.rxTime);
        expect(back?.transport).toBe(e.transport);
        expect(Buffer.from(back!.frame).equals(Buffer.from(e.frame))).toBe(true);
        const block = encodeBlock({
          author: new Uint8Array(32).fill(3),
          stream: 'default',
          seq: 0,
          lamport: 1,
          prev: null,
          parents: [],
          policy: 'default',
          kind: 'frames',
          body: [e],
        });
        expect(Buffer.from(block).includes(bytes)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes any bytes to an entry or undefined, never throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const e = decodeJournalEntry(b);
        if (e !== undefined) expect(Buffer.from(encodeJournalEntry(e)).length).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
    expect(decodeJournalEntry(new Uint8Array(70_000))).toBeUndefined();
  });
});
