/**
 * The replay's one-pass paths against the code they stand in for: packRuleRecords (rules/frame.ts)
 * against resolvePack → toRuleFrame, and shortText (protocols/short-text.ts) against decodeUtf8.
 * Both keep state between calls (the rule name per device, the strings by their bytes), so each
 * property runs many inputs through the same state.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeUtf8 } from '../../protocols/bytes.js';
import { resolvePack, type SenmlRecord } from '../../protocols/senml.js';
import { shortText } from '../../protocols/short-text.js';
import { packRuleRecords, toRuleFrame } from '../../rules/frame.js';

const device = fc.constantFrom('bg-1', 'bg-2', 'dev-2');
const num = fc.oneof(
  fc.integer({ min: -100, max: 100 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(2 ** 28 - 1, 2 ** 28, 1.76e9, 1e308),
);
/** Wire records as readLabel leaves them (each field of its type), mostly valid, sometimes not. */
const wire: fc.Arbitrary<SenmlRecord> = fc.record(
  {
    bver: fc.constantFrom(5, 10, 11, 10.5),
    bn: fc.constantFrom('bg-1:', 'bg-2:', 'dev-2:', '', 'x y:', 'bg-1'),
    bt: num,
    bu: fc.constantFrom('Cel', '%'),
    bv: num,
    bs: num,
    n: fc.constantFrom('temp', 'vib', 'bg-1:x', '', ':a', 'a_b'),
    u: fc.constant('Cel'),
    v: num,
    vs: fc.string({ maxLength: 4 }),
    vb: fc.boolean(),
    vd: fc.uint8Array({ maxLength: 2 }),
    s: num,
    t: num,
    ut: num,
  },
  { requiredKeys: [] },
);
/** Mostly one value field, as devices send; any combination now and then. */
const pack = fc.array(
  fc.oneof(
    {
      weight: 3,
      arbitrary: wire.map(({ v, vs, vb, vd, ...r }) => ({
        ...r,
        ...[{ v }, { vs }, { vb }, { vd }][Math.abs(r.n?.length ?? 0) % 4],
      })),
    },
    { weight: 1, arbitrary: wire },
  ),
  { minLength: 0, maxLength: 4 },
);

describe('packRuleRecords', () => {
  it("gives toRuleFrame's records where resolvePack resolves the pack, undefined where it does not", () => {
    let answered = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(device, pack, fc.integer({ min: 0, max: 2 ** 45 })), { maxLength: 12 }),
        (packs) => {
          for (const [dev, records, rxTime] of packs) {
            const got = packRuleRecords(records, dev, rxTime);
            const resolved = resolvePack(records);
            if (!resolved.ok) {
              expect(got).toBeUndefined();
              continue;
            }
            answered++;
            const body = { type: 'reading', boot: 1, seq: 2, records };
            expect(got).toStrictEqual(toRuleFrame({ device: dev, rxTime }, body, resolved.value)!.records);
          }
        },
      ),
      { numRuns: 2000 },
    );
    expect(answered).toBeGreaterThan(500); // resolvable packs are generated, not only refused ones
  });

  it("strips only the sending device's prefix, whichever device asked last", () => {
    const r = (bn: string): SenmlRecord[] => [{ bn, n: 'temp', v: 1 }];
    expect(packRuleRecords(r('bg-1:'), 'bg-1', 0)?.[0]?.name).toBe('temp');
    expect(packRuleRecords(r('bg-1:'), 'bg-2', 0)?.[0]?.name).toBe('bg-1:temp');
    expect(packRuleRecords(r('bg-2:'), 'bg-2', 0)?.[0]?.name).toBe('temp');
    expect(packRuleRecords(r('bg-1:'), 'bg-1', 0)?.[0]?.name).toBe('temp');
    expect(packRuleRecords(r('b g:'), 'bg-1', 0)).toBeUndefined();
  });

  it('names each record right for a device cycling through more names than it remembers', () => {
    const n = Array.from({ length: 11 }, (_, i) => `m${i}`);
    for (let round = 0; round < 3; round++) {
      const got = packRuleRecords(
        n.map((name, i) => ({ ...(i === 0 ? { bn: 'cyc-1:' } : {}), n: name, v: i })),
        'cyc-1',
        0,
      );
      expect(got?.map((x) => x.name)).toStrictEqual(n);
      // The same names under another base name are other series, not the remembered ones.
      expect(packRuleRecords([{ bn: 'x:', n: 'm1', v: 1 }], 'cyc-1', 0)?.[0]?.name).toBe('x:m1');
    }
  });
});

describe('shortText', () => {
  it('answers decodeUtf8 of the same bytes, over many strings sharing its table', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 40 }).map((s) => new TextEncoder().encode(s)),
      fc.uint8Array({ maxLength: 40 }),
      fc.constantFrom('bg-1:', 'temp', 'Cel', 'tem', 'temq', '').map((s) => new TextEncoder().encode(s)),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(text, fc.nat({ max: 4 })), { maxLength: 50 }), (items) => {
        for (const [bytes, pad] of items) {
          const b = new Uint8Array(bytes.length + 2 * pad).fill(0x41);
          b.set(bytes, pad);
          expect(shortText(b, pad, pad + bytes.length)).toBe(decodeUtf8(bytes));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('returns the same string for the same bytes after others took other slots', () => {
    const enc = new TextEncoder();
    const a = shortText(enc.encode('bg-001:'), 0, 7);
    for (let i = 0; i < 5000; i++) {
      const s = `k${i}`;
      expect(shortText(enc.encode(s), 0, s.length)).toBe(s);
    }
    expect(shortText(enc.encode('bg-001:'), 0, 7)).toBe(a);
  });
});
