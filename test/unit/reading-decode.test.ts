/**
 * The fast decoding paths of stored frames (protocols/sign1-payloads.ts, protocols/reading-decode.ts;
 * the replay's rules/replay/stored.ts and the API's gateway/api/decode.ts) against the full
 * decoders they stand in for: on any bytes, valid or mutated, they must answer exactly what
 * decodeSign1 → decodeBody (→ toRuleFrame, → resolvePack) answers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCbor } from '../../protocols/cbor.js';
import { ALG_ED25519, ALG_EDDSA, decodeSign1, encodeSign1 } from '../../protocols/cose.js';
import { decodeBody } from '../../protocols/frame.js';
import { decodeReadingFast } from '../../protocols/reading-decode.js';
import { resolvePack } from '../../protocols/senml.js';
import { Sign1Payloads } from '../../protocols/sign1-payloads.js';
import { apiRecords, decodeFrameBody, storedRecords } from '../../gateway/api/decode.js';
import { toRuleFrame } from '../../rules/frame.js';
import { storedToRuleFrame } from '../../rules/replay/stored.js';

const sig = (): Uint8Array => new Uint8Array(64).fill(7); // never verified on these paths

/** A SenML label's value: mostly what the labels want, sometimes not (the decoders must reject alike). */
const value = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.double(),
  fc.float(),
  fc.constantFrom(0, -1, 2 ** 32, 2 ** 53 - 1, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, -(2 ** 60)),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('bg-1:', 'temp', 'Cel', 'x_', 'a b', ''),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 3 }),
);
const record = fc.oneof(
  // the common shape
  fc
    .record(
      {
        bn: fc.constantFrom('bg-1:', 'dev-2:'),
        n: fc.constantFrom('temp', 'vib', 'bg-1:x'),
        u: fc.constant('Cel'),
        v: fc.oneof(fc.integer(), fc.double({ noNaN: true })),
        vb: fc.boolean(),
        vs: fc.string({ maxLength: 5 }),
        t: fc.integer({ min: -100, max: 100 }),
      },
      { requiredKeys: ['n'] },
    )
    .map((r) => {
      const m = new Map<number | string, unknown>();
      const labels: Record<string, number> = { bn: -2, n: 0, u: 1, v: 2, vs: 3, vb: 4, t: 6 };
      for (const [k, v] of Object.entries(r)) m.set(labels[k]!, v);
      return m;
    }),
  // anything: labels -20..20, text labels, odd values
  fc
    .array(fc.tuple(fc.oneof(fc.integer({ min: -20, max: 20 }), fc.constantFrom('x', 'y_')), value), { maxLength: 6 })
    .map((es) => new Map<number | string, unknown>(es)),
);
/** Bodies of the common shape (one value field a record, counters in range). */
const goodRecord = fc
  .record({
    bn: fc.constantFrom('bg-1:', 'dev-2:'),
    n: fc.constantFrom('temp', 'vib', 'bg-1:x'),
    u: fc.constant('Cel'),
    val: fc.oneof(
      fc.integer().map((v) => [2, v] as const),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => [2, v] as const),
      fc.boolean().map((v) => [4, v] as const),
      fc.string({ maxLength: 5 }).map((v) => [3, v] as const),
    ),
    t: fc.integer({ min: -100, max: 100 }),
  })
  .map(({ bn, n, u, val, t }) => new Map<number, unknown>([[-2, bn], [0, n], [1, u], val, [6, t]]));
const goodBody = fc
  .record({
    boot: fc.oneof(fc.nat(), fc.constantFrom(2 ** 32 - 1, 2 ** 32, 2 ** 40, 1.5)),
    seq: fc.oneof(fc.nat(), fc.constantFrom(2 ** 32 - 1, 2 ** 32, -3)),
    time: fc.option(fc.oneof(fc.nat(), fc.constantFrom(2 ** 53 - 1, 2 ** 53 + 2, 2 ** 64, -1, 0.5)), {
      nil: undefined,
    }),
    senml: fc.array(goodRecord, { minLength: 1, maxLength: 4 }),
  })
  .map(({ boot, seq, time, senml }) => {
    const m = new Map<number, unknown>([
      [0, 1],
      [1, boot],
      [2, seq],
    ]);
    if (time !== undefined) m.set(3, time);
    return encodeCbor(m.set(4, senml));
  });
const wildBody = fc
  .record(
    {
      type: fc.oneof(fc.constant(1), fc.constantFrom(1.5, 3, '1')),
      boot: fc.oneof(fc.nat(), fc.constantFrom(2 ** 32, -1, 1.5, 2 ** 40)),
      seq: fc.nat(),
      time: fc.oneof(fc.nat(), fc.constantFrom(1_760_000_000_000, -5, 2 ** 60)),
      senml: fc.oneof(fc.array(record, { minLength: 0, maxLength: 4 }), fc.constant('x')),
      extra: fc.integer({ min: 5, max: 20 }),
    },
    { requiredKeys: ['type', 'boot', 'seq', 'senml'] },
  )
  .map((b) => {
    const m = new Map<number, unknown>();
    const keys: Record<string, number> = { type: 0, boot: 1, seq: 2, time: 3, senml: 4 };
    for (const [k, v] of Object.entries(b)) m.set(k === 'extra' ? (v as number) : keys[k]!, k === 'extra' ? 0 : v);
    return encodeCbor(m);
  });
const body = fc.oneof(goodBody, wildBody);
const frame = fc
  .record({
    payload: fc.oneof(body, body, fc.uint8Array({ maxLength: 40 })),
    kid: fc.constantFrom('bg-1', 'dev-2', 'x'.repeat(30)),
    alg: fc.constantFrom(ALG_EDDSA, ALG_ED25519),
  })
  .map(({ payload, kid, alg }) => encodeSign1({ kid: new TextEncoder().encode(kid), payload, alg }, () => sig()));
/** A frame, sometimes with bytes changed, cut or added. */
const mutated = fc
  .tuple(frame, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat({ max: 3 }))
  .map(([f, edits, how]) => {
    const b = Uint8Array.from(f);
    for (const [at, v] of edits) b[at % b.length] = v;
    if (how === 1) return b.subarray(0, Math.max(0, b.length - 1 - ((edits[0]?.[0] ?? 0) % 8)));
    if (how === 2) return Uint8Array.from([...b, 0]);
    return b;
  });

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
