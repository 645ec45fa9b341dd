/**
 * Random COSE_Sign1 frames for the property tests of the stored-frame decoders
 * (test/unit/reading-decode.test.ts, test/unit/frames-json.test.ts): bodies of the common
 * reading shape, wild bodies (odd labels and values), and frames with bytes changed, cut or added.
 */
import fc from 'fast-check';
import { encodeCbor } from '../../protocols/cbor.js';
import { ALG_ED25519, ALG_EDDSA, encodeSign1 } from '../../protocols/cose.js';

export const sig = (): Uint8Array => new Uint8Array(64).fill(7); // never verified on these paths

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
export const body = fc.oneof(goodBody, wildBody);
const frame = fc
  .record({
    payload: fc.oneof(body, body, fc.uint8Array({ maxLength: 40 })),
    kid: fc.constantFrom('bg-1', 'dev-2', 'x'.repeat(30)),
    alg: fc.constantFrom(ALG_EDDSA, ALG_ED25519),
  })
  .map(({ payload, kid, alg }) => encodeSign1({ kid: new TextEncoder().encode(kid), payload, alg }, () => sig()));
/** A frame, sometimes with bytes changed, cut or added. */
export const mutated = fc
  .tuple(frame, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat({ max: 3 }))
  .map(([f, edits, how]) => {
    const b = Uint8Array.from(f);
    for (const [at, v] of edits) b[at % b.length] = v;
    if (how === 1) return b.subarray(0, Math.max(0, b.length - 1 - ((edits[0]?.[0] ?? 0) % 8)));
    if (how === 2) return Uint8Array.from([...b, 0]);
    return b;
  });
