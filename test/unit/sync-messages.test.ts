/** Sync messages (protocols/sync.ts): round trips, typed errors, random bytes never throw. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSyncMessage, encodeCanonical, encodeSyncMessage, type SyncMessage } from '../../protocols/index.js';

const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });
const vector = fc.array(
  fc.record({
    author: hash,
    stream: fc.constantFrom('default', 'p1'),
    low: fc.nat(10),
    high: fc.integer({ min: 10, max: 2 ** 40 }),
    count: fc.nat(),
    heads: fc.array(hash, { minLength: 1, maxLength: 3 }),
    kept: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 8, maxLength: 8 })),
  }),
  { maxLength: 5 },
);
const message: fc.Arbitrary<SyncMessage> = fc.oneof(
  fc.constant({ type: 'equal' as const }),
  fc.constant({ type: 'differ' as const }),
  hash.map((digest) => ({ type: 'check' as const, digest })),
  fc.tuple(hash, vector).map(([digest, v]) => ({ type: 'hello' as const, digest, vector: v })),
  vector.map((v) => ({ type: 'vector' as const, vector: v })),
  fc.uint8Array({ maxLength: 200 }).map((envelope) => ({ type: 'block' as const, envelope })),
  fc.nat().map((count) => ({ type: 'done' as const, count })),
  fc
    .array(fc.tuple(hash, fc.constantFrom('default', 'p1')), { maxLength: 3 })
    .map((streams) => ({ type: 'want' as const, streams })),
  // retention: the signed retention block behind a low-water mark
  fc.uint8Array({ maxLength: 200 }).map((envelope) => ({ type: 'mark' as const, envelope })),
);

describe('sync messages', () => {
  it('round trip', () => {
    fc.assert(
      fc.property(message, (m) => {
        const r = decodeSyncMessage(encodeSyncMessage(m));
        expect(r.ok && r.value).toEqual(m);
      }),
    );
  });

  it('typed errors', () => {
    const code = (v: unknown): string => {
      const r = decodeSyncMessage(encodeCanonical(v as never));
      return r.ok ? 'ok' : r.error.code;
    };
    expect(code([9])).toBe('sync/unknown-type');
    expect(code([8, 'not bytes'])).toBe('sync/bad-message');
    expect(code([5, new Uint8Array(3)])).toBe('sync/bad-message');
    expect(code([2, [[new Uint8Array(32), 'default', 5, 2, 1, [new Uint8Array(32)], new Uint8Array(0)]]])).toBe(
      'sync/bad-message',
    ); // low > high
    expect(code([2, [[new Uint8Array(32), 'default', 1, 2, 1, [new Uint8Array(32)], new Uint8Array(3)]]])).toBe(
      'sync/bad-message',
    ); // kept is 0 or 8 bytes
    expect(code([2, [[new Uint8Array(32), 'default', 1, 2, 1, [new Uint8Array(32)], new Uint8Array(8)]]])).toBe('ok');
    expect(code(new Map([[1, 2]]))).toBe('sync/bad-message');
  });

  it('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect(typeof decodeSyncMessage(b).ok).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
  });
});
