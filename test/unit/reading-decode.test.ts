/**
 * The fast decoding paths of stored frames (protocols/sign1-payloads.ts, protocols/reading-decode.ts;
 * the replay's rules/replay/stored.ts and the API's gateway/api/decode.ts) against the full
 * decoders they stand in for: on any bytes, valid or mutated, they must answer exactly what
 * decodeSign1 → decodeBody (→ toRuleFrame, → resolvePack) answers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCbor } from '../../protocols/cbor.js';
import { decodeSign1, encodeSign1 } from '../../protocols/cose.js';
import { decodeBody } from '../../protocols/frame.js';
import { decodeReadingFast } from '../../protocols/reading-decode.js';
import { resolvePack } from '../../protocols/senml.js';
import { Sign1Payloads } from '../../protocols/sign1-payloads.js';
import { apiRecords, decodeFrameBody, storedRecords } from '../../gateway/api/decode.js';
import { toRuleFrame } from '../../rules/frame.js';
import { storedToRuleFrame } from '../../rules/replay/stored.js';
import { body, mutated, sig } from '../helpers/frame-arbitraries.js';

const reference = (bytes: Uint8Array) => {
  const c = decodeSign1(bytes);
  if (!c.ok) return undefined;
  const b = decodeBody(c.value.payload);
  if (!b.ok) return undefined;
  return toRuleFrame({ device: 'bg-1', rxTime: 1_000_000, model: 'm' }, b.value);
};

describe('replay decoding fast paths', () => {
  it('Sign1Payloads answers what decodeSign1 answers: payload, kid, protected bytes, signature (one instance over many frames, its cache warm)', () => {
    const payloads = new Sign1Payloads();
    fc.assert(
      fc.property(fc.array(mutated, { minLength: 1, maxLength: 20 }), (frames) => {
        for (const f of frames) {
          const r = decodeSign1(f);
          expect(payloads.payload(f)).toStrictEqual(r.ok ? r.value.payload : undefined);
          const parts = payloads.parts(f);
          if (!r.ok) expect(parts).toBeUndefined();
          else {
            const { kid, protectedBytes, payload, signature } = r.value;
            expect(parts).toStrictEqual({ kid, protectedBytes, payload, signature });
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('decodeReadingFast, when it answers, answers what decodeBody answers (which also resolves the pack)', () => {
    let answered = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          body,
          body.map((b) => b.subarray(0, b.length - 1)),
          fc.uint8Array({ maxLength: 30 }),
        ),
        (b) => {
          const fast = decodeReadingFast(b);
          if (fast === undefined) return;
          answered++;
          const slow = decodeBody(b);
          expect(slow.ok).toBe(resolvePack(fast.records).ok);
          if (slow.ok) expect({ type: 'reading', ...fast }).toStrictEqual(slow.value);
        },
      ),
      { numRuns: 1000 },
    );
    expect(answered).toBeGreaterThan(20); // the fast path is taken, not only the fallback
  });

  it('storedToRuleFrame gives the rule frame decodeSign1 → decodeBody → toRuleFrame gives', () => {
    fc.assert(
      fc.property(mutated, (bytes) => {
        const got = storedToRuleFrame({ device: 'bg-1', rxTime: 1_000_000, frame: bytes }, { model: 'm' });
        expect(got).toStrictEqual(reference(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it("the API's stored-frame decoding gives the body and records decodeSign1 → decodeBody → resolvePack give", () => {
    const fullBody = (bytes: Uint8Array) => {
      const c = decodeSign1(bytes);
      if (!c.ok) return undefined;
      const b = decodeBody(c.value.payload);
      return b.ok && (b.value.type === 'reading' || b.value.type === 'command-ack') ? b.value : undefined;
    };
    fc.assert(
      fc.property(mutated, (bytes) => {
        const full = fullBody(bytes);
        expect(decodeFrameBody(bytes)).toStrictEqual(full);
        expect(storedRecords(bytes, 1_760_000_000_000)).toStrictEqual(apiRecords(full, 1_760_000_000_000));
      }),
      { numRuns: 1000 },
    );
  });

  it('takes the fast path for the frames devices send', () => {
    const payload = encodeCbor(
      new Map<number, unknown>([
        [0, 1],
        [1, 3],
        [2, 99],
        [3, 1_760_000_000_000],
        [
          4,
          [
            new Map<number, unknown>([
              [-2, 'bg-1:'],
              [0, 'temp'],
              [1, 'Cel'],
              [2, 21.5],
            ]),
          ],
        ],
      ]),
    );
    expect(decodeReadingFast(payload)).toStrictEqual({
      boot: 3,
      seq: 99,
      time: 1_760_000_000_000,
      records: [{ bn: 'bg-1:', n: 'temp', u: 'Cel', v: 21.5 }],
    });
    const f = encodeSign1({ kid: new TextEncoder().encode('bg-1'), payload }, () => sig());
    expect(storedToRuleFrame({ device: 'bg-1', rxTime: 5, frame: f })).toStrictEqual({
      device: 'bg-1',
      boot: 3,
      seq: 99,
      time: 5,
      records: [{ name: 'temp', value: 21.5, time: 5 }],
    });
  });
});
