/**
 * Outpost message bodies (protocols/frame.ts): the layout documented at the top
 * of frame.ts and in DESIGN.md "Wire formats" (uplink reading and command ack,
 * downlink command and frame ack), field checks, signBody, and property tests.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { decodeCbor, encodeCbor } from '../../protocols/cbor.js';
import { decodeSign1, sigStructure } from '../../protocols/cose.js';
import {
  AckStatus,
  type Body,
  BodyKey,
  decodeBody,
  encodeBody,
  MAX_COUNTER,
  MessageType,
  signBody,
} from '../../protocols/frame.js';
import { kidToDeviceId } from '../../protocols/ids.js';
import { ProtocolUsageError } from '../../protocols/result.js';
import type { SenmlRecord } from '../../protocols/senml.js';
import { errorCode, isTypedResult, okValue, toHex } from './vector-helpers.js';

const id = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
const samples: Body[] = [
  {
    type: 'reading',
    boot: 3,
    seq: 41,
    time: 1_732_500_000_123,
    records: [
      { bn: 'pump-1/', n: 'temp', u: 'Cel', v: 21.5 },
      { n: 'on', vb: true },
    ],
  },
  { type: 'reading', boot: 0, seq: 0, records: [{ n: 'x', v: 0 }] },
  { type: 'reading', boot: MAX_COUNTER, seq: MAX_COUNTER, records: [{ n: 'blob', vd: new Uint8Array([0, 255]) }] },
  {
    type: 'command',
    id,
    target: 'conveyor-7',
    actuator: 'motor',
    value: false,
    expires: 1_732_500_060_000,
    issued: 1_732_500_000_000,
  },
  { type: 'command', id, target: 'light-1', actuator: 'phase', value: 'red', expires: 2, issued: 1, fence: 9 },
  { type: 'command', id: new Uint8Array(32), target: 't', actuator: 'a', value: -12.25, expires: 0, issued: 0 },
  { type: 'command-ack', boot: 1, seq: 2, commandId: id, status: AckStatus.ok },
  {
    type: 'command-ack',
    boot: 1,
    seq: 3,
    time: 5,
    commandId: id,
    status: AckStatus.unknownActuator,
    detail: 'no such actuator',
  },
  { type: 'frame-ack', boot: 7, seq: 8, status: AckStatus.duplicate },
];

describe('body round trips (frame.ts layout)', () => {
  // frame.ts body layout; DESIGN.md "Wire formats" (reading, command, command ack, frame ack)
  it.each(samples)('$type boot=$boot seq=$seq', (body) => {
    expect(okValue(decodeBody(encodeBody(body)))).toEqual(body);
  });

  // frame.ts: "All bodies are maps with small integer keys; key 0 is the message type", written in key order.
  it('writes maps with integer keys in key order', () => {
    expect(toHex(encodeBody({ type: 'frame-ack', boot: 1, seq: 2, status: 0 }))).toBe('a4000401010202' + '0f00');
    expect(toHex(encodeBody({ type: 'command-ack', boot: 1, seq: 2, commandId: id, status: 5, detail: 'x' }))).toBe(
      'a6000301010202' + '08' + '48' + toHex(id) + '0f05' + '106178',
    );
    expect(MessageType).toEqual({ reading: 1, command: 2, commandAck: 3, frameAck: 4 });
  });

  // frame.ts: maps with small integer keys, key order free on input
  it('reads bodies written by hand (not by encodeBody), unknown keys ignored', () => {
    const m = new Map<number, unknown>([
      [BodyKey.type, 1],
      [BodyKey.seq, 5],
      [BodyKey.boot, 2],
      [
        BodyKey.senml,
        [
          new Map<number, unknown>([
            [0, 'a'],
            [2, 1],
          ]),
        ],
      ],
      [99, 'ignored'],
    ]);
    expect(okValue(decodeBody(encodeCbor(m)))).toEqual({
      type: 'reading',
      boot: 2,
      seq: 5,
      records: [{ n: 'a', v: 1 }],
    });
  });
});

/** The wire map of a valid body with one field replaced (or removed with `undefined`). */
function withField(body: Body, key: number, value: unknown): Uint8Array {
  const m = new Map<unknown, unknown>(okValue(decodeCbor(encodeBody(body))) as Map<unknown, unknown>);
  if (value === undefined) m.delete(key);
  else m.set(key, value);
  return encodeCbor(m);
}

const [reading, , , command, , , ack, , frameAck] = samples as [Body, Body, Body, Body, Body, Body, Body, Body, Body];

describe('field checks', () => {
  // DESIGN.md: boot/seq counters (frame.ts: unsigned 32-bit)
  it.each([-1, MAX_COUNTER + 1, 1.5, '1', null, 2 ** 53, undefined])('boot or seq %p is frame/bad-counter', (bad) => {
    for (const body of [reading, ack, frameAck]) {
      expect(errorCode(decodeBody(withField(body, BodyKey.boot, bad)))).toBe('frame/bad-counter');
      expect(errorCode(decodeBody(withField(body, BodyKey.seq, bad)))).toBe('frame/bad-counter');
    }
  });

  // frame.ts: time_ms, expires_ms, issued_ms are unsigned ms
  it('time must be unsigned integer milliseconds (frame/bad-time)', () => {
    for (const bad of [-1, 1.5, '2024', true, 2n ** 64n - 1n]) {
      expect(errorCode(decodeBody(withField(reading, BodyKey.time, bad)))).toBe('frame/bad-time');
      expect(errorCode(decodeBody(withField(ack, BodyKey.time, bad)))).toBe('frame/bad-time');
      expect(errorCode(decodeBody(withField(command, BodyKey.expires, bad)))).toBe('frame/bad-time');
    }
    expect(errorCode(decodeBody(withField(command, BodyKey.expires, undefined)))).toBe('frame/bad-time');
    expect(errorCode(decodeBody(withField(command, BodyKey.issued, undefined)))).toBe('frame/bad-time');
  });

  // DESIGN.md: reading payload carries a SenML-CBOR pack (RFC 8428 §6)
  it('a reading needs a SenML pack (senml/* codes pass through)', () => {
    expect(errorCode(decodeBody(withField(reading, BodyKey.senml, undefined)))).toBe('senml/not-array');
    expect(errorCode(decodeBody(withField(reading, BodyKey.senml, [])))).toBe('senml/empty');
    expect(errorCode(decodeBody(withField(reading, BodyKey.senml, [new Map([['x_', 1]])])))).toBe(
      'senml/must-understand',
    );
  });

  // RFC 8428 §4.4 (a newer version MUST NOT be used), §4.5.1 (names), §4.2 (one value per record):
  // a reading whose pack cannot be resolved is refused at decode, not later.
  it('a reading whose pack does not resolve is refused with the senml/* code', () => {
    const pack = (...entries: [number, unknown][]) => [new Map<number, unknown>(entries)];
    expect(errorCode(decodeBody(withField(reading, BodyKey.senml, pack([-1, 11], [0, 'a'], [2, 1]))))).toBe(
      'senml/unsupported-version',
    );
    expect(errorCode(decodeBody(withField(reading, BodyKey.senml, pack([0, 'bad name'], [2, 1]))))).toBe(
      'senml/bad-name',
    );
    expect(errorCode(decodeBody(withField(reading, BodyKey.senml, pack([0, 'a'], [2, 1], [3, 'x']))))).toBe(
      'senml/multiple-values',
    );
    expect(errorCode(decodeBody(withField(reading, BodyKey.senml, pack([0, 'a']))))).toBe('senml/no-value');
  });

  // DESIGN.md: commands carry an id; acks name the command id
  it('command id is 4..32 bytes (frame/bad-command-id)', () => {
    for (const bad of [new Uint8Array(3), new Uint8Array(33), 'abcd', undefined]) {
      expect(errorCode(decodeBody(withField(command, BodyKey.commandId, bad)))).toBe('frame/bad-command-id');
      expect(errorCode(decodeBody(withField(ack, BodyKey.commandId, bad)))).toBe('frame/bad-command-id');
    }
  });

  // DESIGN.md: commands carry target, actuator, value
  it('command target and actuator are text of 1..64; value is a finite number, a boolean or short text', () => {
    for (const key of [BodyKey.target, BodyKey.actuator]) {
      for (const bad of ['', 'x'.repeat(65), 5, undefined])
        expect(errorCode(decodeBody(withField(command, key, bad)))).toBe('frame/bad-field');
      expect(okValue(decodeBody(withField(command, key, 'x'.repeat(64))))).toMatchObject({ type: 'command' });
    }
    for (const bad of [NaN, Infinity, -Infinity, 'x'.repeat(65), null, new Uint8Array(1), [1], undefined, 2n ** 60n]) {
      expect([bad, errorCode(decodeBody(withField(command, BodyKey.value, bad)))]).toEqual([bad, 'frame/bad-field']);
    }
    expect(errorCode(decodeBody(withField(command, BodyKey.fence, -1)))).toBe('frame/bad-field');
  });

  // frame.ts AckStatus
  it('ack status is 0..255 (frame/bad-status); detail is text of at most 256', () => {
    for (const body of [ack, frameAck]) {
      for (const bad of [256, -1, 'ok', undefined])
        expect(errorCode(decodeBody(withField(body, BodyKey.status, bad)))).toBe('frame/bad-status');
      expect(okValue(decodeBody(withField(body, BodyKey.status, 255)))).toMatchObject({ status: 255 });
    }
    expect(errorCode(decodeBody(withField(ack, BodyKey.detail, 'x'.repeat(257))))).toBe('frame/bad-field');
    expect(errorCode(decodeBody(withField(ack, BodyKey.detail, 7)))).toBe('frame/bad-field');
  });

  // frame.ts: key 0 is the message type; one CBOR data item per body
  it('unknown or missing type is frame/unknown-type; a non-map is frame/not-map; CBOR errors pass through', () => {
    for (const t of [0, 5, '1', 1.5, undefined])
      expect(errorCode(decodeBody(withField(frameAck, BodyKey.type, t)))).toBe('frame/unknown-type');
    expect(errorCode(decodeBody(encodeCbor([4, 1, 2, 0])))).toBe('frame/not-map');
    expect(errorCode(decodeBody(new Uint8Array([...encodeBody(frameAck), 0])))).toBe('cbor/trailing-bytes');
    expect(errorCode(decodeBody(new Uint8Array(3073)))).toBe('cbor/too-large');
  });
});

describe('encodeBody refuses bad counters with ProtocolUsageError', () => {
  // frame.ts: encoders refuse counters outside 0..2^32-1
  it.each([-1, MAX_COUNTER + 1, 0.5, NaN])('boot %p', (boot) => {
    for (const body of [reading, ack, frameAck]) {
      expect(() => encodeBody({ ...body, boot } as Body)).toThrow(ProtocolUsageError);
      expect(() => encodeBody({ ...body, seq: boot } as Body)).toThrow(ProtocolUsageError);
    }
  });
});

describe('signBody (DESIGN.md: the same envelope both ways)', () => {
  const seed = new Uint8Array(32).fill(9);
  const pub = publicKeyFromSeed(seed);
  const sign = (m: Uint8Array) => signEd25519(seed, m);

  // RFC 9052 §4.2, §4.4; DESIGN.md kid = device id
  it.each(samples)('$type: a COSE_Sign1 with the signer id as kid, verifiable, carrying the body', (body) => {
    const msg = okValue(decodeSign1(signBody(body, 'gw-site.a_1', sign)));
    expect(kidToDeviceId(msg.kid)).toBe('gw-site.a_1');
    expect(verifyEd25519(pub, sigStructure(msg.protectedBytes, msg.payload), msg.signature)).toBe(true);
    expect(okValue(decodeBody(msg.payload))).toEqual(body);
  });

  // ids.ts ID_PATTERN (kid must be a valid id)
  it('refuses an invalid signer id', () => {
    for (const bad of ['', 'has space', '-lead', 'x'.repeat(65), 'a/b'])
      expect(() => signBody(frameAck, bad, sign)).toThrow(ProtocolUsageError);
  });
});

const u32 = fc.integer({ min: 0, max: MAX_COUNTER });
const ms = fc.maxSafeNat();
const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x));
const text = (max: number) => fc.string({ minLength: 1, maxLength: max });
const records: fc.Arbitrary<SenmlRecord[]> = fc.array(
  fc.oneof(
    fc.record(
      { n: fc.stringMatching(/^[a-z][a-z0-9_]{0,9}$/), u: fc.constantFrom('Cel', '%RH', 'V'), v: finite },
      { requiredKeys: ['n', 'v'] },
    ),
    fc.record(
      { n: fc.stringMatching(/^[a-z][a-z0-9_]{0,9}$/), vb: fc.boolean(), t: fc.integer({ min: -100, max: 100 }) },
      { requiredKeys: ['n', 'vb'] },
    ),
  ),
  { minLength: 1, maxLength: 6 },
);
const bodyArb: fc.Arbitrary<Body> = fc.oneof(
  fc.record(
    { type: fc.constant('reading' as const), boot: u32, seq: u32, time: ms, records },
    { requiredKeys: ['type', 'boot', 'seq', 'records'] },
  ),
  fc.record(
    {
      type: fc.constant('command' as const),
      id: fc.uint8Array({ minLength: 4, maxLength: 32 }),
      target: text(64),
      actuator: text(64),
      value: fc.oneof(finite, fc.boolean(), fc.string({ maxLength: 64 })),
      expires: ms,
      issued: ms,
      fence: fc.maxSafeNat(),
    },
    { requiredKeys: ['type', 'id', 'target', 'actuator', 'value', 'expires', 'issued'] },
  ),
  fc.record(
    {
      type: fc.constant('command-ack' as const),
      boot: u32,
      seq: u32,
      time: ms,
      commandId: fc.uint8Array({ minLength: 4, maxLength: 32 }),
      status: fc.integer({ min: 0, max: 255 }),
      detail: fc.string({ maxLength: 256 }),
    },
    { requiredKeys: ['type', 'boot', 'seq', 'commandId', 'status'] },
  ),
  fc.record({ type: fc.constant('frame-ack' as const), boot: u32, seq: u32, status: fc.integer({ min: 0, max: 255 }) }),
);

describe('frame properties', () => {
  // frame.ts body layout
  it('any valid body round-trips through encodeBody/decodeBody', () => {
    fc.assert(
      fc.property(bodyArb, (b) => {
        expect(okValue(decodeBody(encodeBody(b)))).toEqual(b);
      }),
      { numRuns: 1000 },
    );
  });

  // DESIGN.md: nothing from the wire can crash the process
  it('random bytes never throw and give ok or a typed cbor/senml/frame error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(isTypedResult(decodeBody(b), ['cbor', 'senml', 'frame'])).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  // DESIGN.md: nothing from the wire can crash the process
  it('mutated valid bodies never throw', () => {
    fc.assert(
      fc.property(
        bodyArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        fc.nat(),
        (body, edits, cut) => {
          const b = encodeBody(body).slice();
          for (const [at, x] of edits) b[at % b.length] = x;
          expect(isTypedResult(decodeBody(b), ['cbor', 'senml', 'frame'])).toBe(true);
          expect(isTypedResult(decodeBody(b.subarray(0, cut % (b.length + 1))), ['cbor', 'senml', 'frame'])).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
