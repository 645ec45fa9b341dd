/**
 * The in-place reading frame writer (protocols/reading-encode.ts, what firmware-sim devices sign
 * with) against the general path it stands in for, encodeSign1({ kid, payload: encodeBody(body) }):
 * on any reading body, the same bytes or the same error. Ed25519 signatures are deterministic,
 * so equal messages mean equal frames.
 */
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSign1, encodeSign1, encodeSign1Over, SIGN1_PAYLOAD_ROOM } from '../../protocols/cose.js';
import { decodeBody, encodeBody, type ReadingBody } from '../../protocols/frame.js';
import { signReading } from '../../protocols/reading-encode.js';
import type { SenmlRecord } from '../../protocols/senml.js';

const key = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, 5)]),
  format: 'der',
  type: 'pkcs8',
});
const sign = (m: Uint8Array): Uint8Array => new Uint8Array(nodeSign(null, m, key));

/** The general path's bytes, or its error's code. */
function general(body: ReadingBody, kid: Uint8Array): Uint8Array | string {
  try {
    return encodeSign1({ kid, payload: encodeBody(body) }, sign);
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}
function inPlace(body: ReadingBody, kid: Uint8Array): Uint8Array | string {
  try {
    return signReading(body, kid, sign);
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

const number = fc.oneof(
  fc.integer({ min: -100_000, max: 100_000 }),
  fc.double(),
  fc.float().map((x) => x), // float32-representable doubles
  fc.integer({ min: -(2 ** 34), max: 2 ** 34 }),
  fc.maxSafeInteger(),
  fc.constantFrom(
    0,
    -0,
    23,
    24,
    255,
    256,
    65_535,
    65_536,
    2 ** 31 - 1,
    -(2 ** 31),
    -(2 ** 31) - 1,
    2 ** 32 - 1,
    2 ** 32,
    -(2 ** 32),
    -(2 ** 32) - 1,
    2 ** 53,
    -(2 ** 53),
    1e300,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    1_765_000_000_123,
    1_765_000_000.123,
  ),
);
const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 100 }),
  fc.constantFrom(
    'fleet-00001:',
    'temp',
    'Cel',
    '%RH',
    '\ud800',
    'a\udc00b',
    '\ud83d\ude00',
    'é'.repeat(40),
    'x'.repeat(300),
  ),
);
/** Mostly the types the labels want, sometimes not (both paths must then agree too). */
const anyValue = fc.oneof(
  { weight: 4, arbitrary: number },
  { weight: 3, arbitrary: text },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 5n, [1], new Uint16Array(2)) },
);
const fields = ['bn', 'bt', 'bu', 'bv', 'bs', 'bver', 'n', 'u', 'v', 'vs', 'vb', 'vd', 's', 't', 'ut'] as const;
const record: fc.Arbitrary<SenmlRecord> = fc.oneof(
  // a device's own shape
  fc.record(
    { bn: fc.constant('dev-1:'), bt: number, n: fc.constantFrom('temp', 'hum'), u: fc.constant('Cel'), v: number },
    { requiredKeys: ['n', 'v'] },
  ),
  fc.record({ n: fc.constant('door'), vb: fc.boolean() }),
  fc.dictionary(fc.constantFrom(...fields), anyValue, { maxKeys: 15 }) as fc.Arbitrary<SenmlRecord>,
);
const counter = fc.oneof(
  fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  fc.constantFrom(0, 23, 24, 0xffffffff, 2 ** 32, -1, 1.5),
);
const body: fc.Arbitrary<ReadingBody> = fc.record(
  {
    type: fc.constant('reading' as const),
    boot: counter,
    seq: counter,
    time: number,
    records: fc.oneof(
      { weight: 10, arbitrary: fc.array(record, { minLength: 1, maxLength: 6 }) },
      { weight: 1, arbitrary: fc.array(record, { minLength: 0, maxLength: 300 }) },
    ),
  },
  { requiredKeys: ['type', 'boot', 'seq', 'records'] },
);
const kid = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 0, maxLength: 70 }));

describe('signReading (protocols/reading-encode.ts)', () => {
  it('makes the same frame, or throws the same error, as encodeSign1 over encodeBody', () => {
    fc.assert(
      fc.property(body, kid, (b, k) => {
        expect(inPlace(b, k)).toEqual(general(b, k));
      }),
      { numRuns: 3000 },
    );
  });

  it('a frame again after one that fell back or was refused (the reused buffer holds nothing over)', () => {
    const ok: ReadingBody = {
      type: 'reading',
      boot: 3,
      seq: 9,
      time: 1_765_000_000_123,
      records: [{ n: 'a', v: 1.5 }],
    };
    const kid1 = new Uint8Array([1, 2, 3]);
    const first = inPlace(ok, kid1);
    expect(inPlace({ ...ok, records: [{ n: 'x'.repeat(5000), v: 1 }] }, kid1)).toBe('cose/too-large');
    expect(inPlace({ ...ok, records: [{ n: 'a', v: 2n as unknown as number }] }, kid1)).toEqual(
      general({ ...ok, records: [{ n: 'a', v: 2n as unknown as number }] }, kid1),
    );
    expect(inPlace(ok, kid1)).toEqual(first);
    const m = decodeSign1(first as Uint8Array);
    expect(m.ok && decodeBody(m.value.payload)).toMatchObject({ ok: true, value: { boot: 3, seq: 9 } });
  });

  it('encodeSign1Over signs a payload in place as encodeSign1 does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ minLength: 1, maxLength: 64 }), (payload, k) => {
        const buf = new Uint8Array(SIGN1_PAYLOAD_ROOM + payload.length + 3).fill(0xee);
        buf.set(payload, SIGN1_PAYLOAD_ROOM);
        const out = encodeSign1Over(k, buf, SIGN1_PAYLOAD_ROOM, SIGN1_PAYLOAD_ROOM + payload.length, sign);
        expect(out).toEqual(encodeSign1({ kid: k, payload }, sign));
      }),
      { numRuns: 500 },
    );
  });
});
