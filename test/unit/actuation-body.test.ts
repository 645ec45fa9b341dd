/**
 * Actuation block bodies (protocols/actuation.ts): leases, decisions and outcomes round-trip
 * through a real signed block (canonical CBOR, RFC 8949 §4.2.1), and the decoder never throws.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCbor, decodeSignedBlock, encodeCanonical, signBlock, type CborValue } from '../../protocols/index.js';
import { actuationBody, type ActuationRecord, CommandStates, decodeActuationBody } from '../../protocols/actuation.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';

const seed = randomBytes(32);
const author = publicKeyFromSeed(seed);
const idArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/);
const textArb = fc.string({ maxLength: 40 }).filter((s) => !/\p{Surrogate}/u.test(s));
const nat = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const cmdId = fc.uint8Array({ minLength: 4, maxLength: 32 });
const valueArb = fc.oneof(
  fc.boolean(),
  fc.nat(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer({ min: -1e6, max: -1 }),
  idArb,
);

/** Desired settings as a settings block holds them: 1..16 valid keys, sorted, each a valid value. */
const settingsValuesArb = fc
  .dictionary(
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,31}$/),
    fc.oneof(
      fc.boolean(),
      fc.maxSafeInteger(),
      fc.double({ noNaN: true, min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
      fc.string({ maxLength: 64 }).filter((s) => !/\p{Surrogate}/u.test(s)),
    ),
    { minKeys: 1, maxKeys: 16 },
  )
  .map((d) => Object.entries(d).sort(([a], [b]) => (a < b ? -1 : 1)));

const leaseArb = fc.record({
  type: fc.constant('lease' as const),
  at: nat,
  device: idArb,
  actuator: idArb,
  fence: nat,
  expires: nat,
});
const actionArb = fc.oneof(
  fc.record({
    kind: fc.constant('command' as const),
    command: fc.record({ device: idArb, actuator: idArb, value: valueArb, ttlMs: nat }),
  }),
  fc.record({ kind: fc.constant('publish' as const), topic: textArb, payload: textArb }),
  fc.record({ kind: fc.constant('alert' as const), message: textArb }),
  fc.record({ kind: fc.constant('settings' as const), device: idArb, values: settingsValuesArb }),
);
const decisionArb = fc.record(
  {
    type: fc.constant('decision' as const),
    at: nat,
    rule: textArb,
    ruleVersion: textArb,
    inputs: fc.array(fc.record({ device: idArb, boot: fc.nat(), seq: fc.nat() }), { maxLength: 5 }),
    reason: textArb,
    action: actionArb,
    command: fc.record(
      { id: cmdId, fence: nat, issued: nat, expires: nat },
      { requiredKeys: ['id', 'issued', 'expires'] },
    ),
  },
  { requiredKeys: ['type', 'at', 'rule', 'ruleVersion', 'inputs', 'reason', 'action'] },
);
const outcomeArb = fc.record(
  {
    type: fc.constant('outcome' as const),
    at: nat,
    commandId: cmdId,
    state: fc.constantFrom(...CommandStates),
    ackStatus: fc.nat({ max: 255 }),
    detail: textArb,
    attempts: fc.nat({ max: 1000 }),
    device: idArb,
    actuator: idArb,
  },
  { requiredKeys: ['type', 'at', 'commandId', 'state', 'attempts', 'device', 'actuator'] },
);
const recordsArb: fc.Arbitrary<ActuationRecord[]> = fc.array(fc.oneof(leaseArb, decisionArb, outcomeArb), {
  minLength: 1,
  maxLength: 8,
});

/** Through a real signed block: encode, canonical bytes, decode the block, decode the body. */
function viaBlock(records: ActuationRecord[]): ActuationRecord[] {
  const sb = signBlock(
    {
      author,
      stream: 'default',
      seq: 0,
      lamport: 1,
      prev: null,
      parents: [],
      policy: 'default',
      kind: 'actuation',
      body: actuationBody(records) as unknown as CborValue,
    },
    (m) => signEd25519(seed, m),
  );
  const back = decodeSignedBlock(sb.envelope);
  if (!back.ok) throw new Error(back.error.message);
  const body = decodeActuationBody(back.value.block.body as CborValue);
  if (!body.ok) throw new Error(body.error.message);
  return body.value;
}

describe('actuation block body', () => {
  it('round-trips every record kind through a signed canonical block (audit, leases)', () => {
    fc.assert(
      fc.property(recordsArb, (records) => {
        expect(viaBlock(records)).toEqual(records);
      }),
      { numRuns: 300 },
    );
  });

  it('carries fractional and negative values as doubles, integers as integers', () => {
    const r: ActuationRecord = {
      type: 'decision',
      at: 1,
      rule: 'r',
      ruleVersion: 'v',
      inputs: [],
      reason: '',
      action: { kind: 'command', command: { device: 'd', actuator: 'speed', value: 0.5, ttlMs: 10 } },
    };
    const body = actuationBody([r]) as unknown as [Map<number, unknown>];
    expect((body[0].get(14) as unknown[])[3]).toBeInstanceOf(Uint8Array);
    expect(viaBlock([r])).toEqual([r]);
    const i = {
      ...r,
      action: {
        kind: 'command' as const,
        command: { ...(r.action.kind === 'command' ? r.action.command : ({} as never)), value: 3 },
      },
    };
    expect((actuationBody([i]) as unknown as [Map<number, unknown>])[0].get(14)).toEqual([1, 'd', 'speed', 3, 10]);
  });

  it('a settings action is [4, device, [[key, value]…]] as a settings block carries it; a malformed one is refused', () => {
    const decision = (action: unknown): Map<number, CborValue> =>
      new Map<number, CborValue>([
        [0, 2],
        [1, 5],
        [10, 'r'],
        [11, 'v'],
        [12, []],
        [13, ''],
        [14, action as CborValue],
      ]);
    const r: ActuationRecord = {
      type: 'decision',
      at: 5,
      rule: 'r',
      ruleVersion: 'v',
      inputs: [],
      reason: '',
      action: {
        kind: 'settings',
        device: 'n1',
        values: [
          ['a', -3],
          ['b', 0.5],
        ],
      },
    };
    const body = actuationBody([r]) as unknown as [Map<number, unknown>];
    // A negative integer stays an integer (the settings block's rule, not the command value's).
    expect(body[0].get(14)).toEqual([
      4,
      'n1',
      [
        ['a', -3],
        ['b', expect.any(Uint8Array)],
      ],
    ]);
    expect(viaBlock([r])).toEqual([r]);
    expect(decodeActuationBody([decision(body[0].get(14))] as CborValue).ok).toBe(true);
    const double3 = new Uint8Array(8);
    new DataView(double3.buffer).setFloat64(0, 3);
    for (const action of [
      [
        4,
        'n1',
        [
          ['b', 1],
          ['a', 2],
        ],
      ], // unsorted
      [
        4,
        'n1',
        [
          ['a', 1],
          ['a', 2],
        ],
      ], // twice
      [4, 'n1', []], // empty
      [4, 'n1', [['1a', 1]]], // bad key
      [4, 'n1', [['a', double3]]], // an integer as a double: two encodings of one value
      [4, 'n1', [['a', new Map()]]],
      [4, 'n1', [['a', 'x'.repeat(65)]]],
      [4, 'n1', Array.from({ length: 17 }, (_, i) => [`k${String(i).padStart(2, '0')}`, i])],
      [4, '', [['a', 1]]],
      [4, 'n1', [['a', 1]], 'extra'],
      [4, 'n1'],
    ])
      expect(decodeActuationBody([decision(action)] as CborValue), JSON.stringify(action)).toMatchObject({
        ok: false,
        error: { code: 'actuation/bad-record', message: /bad action/ },
      });
    expect(() =>
      actuationBody([{ ...r, action: { kind: 'settings', device: 'n1', values: [['a', Number.NaN]] } }]),
    ).toThrowError(expect.objectContaining({ code: 'actuation/bad-record' }) as Error);
    expect(() => actuationBody([{ ...r, action: { kind: 'settings', device: 'n1', values: [] } }])).toThrow(/1\.\.16/);
  });

  it('refuses invalid records with a typed usage error', () => {
    expect(() => actuationBody([])).toThrow(/1\.\.1024/);
    expect(() =>
      actuationBody([{ type: 'lease', at: -1, device: 'd', actuator: 'a', fence: 1, expires: 2 }]),
    ).toThrowError(expect.objectContaining({ code: 'actuation/bad-record' }) as Error);
    expect(() =>
      actuationBody([
        {
          type: 'outcome',
          at: 1,
          commandId: new Uint8Array(2),
          state: 'acked',
          attempts: 1,
          device: 'd',
          actuator: 'a',
        },
      ]),
    ).toThrow(/4\.\.32/);
  });

  it('never throws on arbitrary or mutated bodies, and names what is wrong', () => {
    fc.assert(
      fc.property(recordsArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (records, pos, byte) => {
        const bytes = encodeCanonical(actuationBody(records) as unknown as CborValue);
        const mutated = bytes.slice();
        mutated[pos % mutated.length] = byte;
        const v = decodeCbor(mutated);
        if (!v.ok) return;
        const r = decodeActuationBody(v.value);
        if (!r.ok) expect(r.error.code).toMatch(/^actuation\//);
      }),
      { numRuns: 500 },
    );
    expect(decodeActuationBody(new Map() as CborValue)).toMatchObject({
      ok: false,
      error: { code: 'actuation/bad-body' },
    });
    expect(decodeActuationBody([new Map([[0, 9]])] as CborValue)).toMatchObject({
      ok: false,
      error: { code: 'actuation/bad-record' },
    });
    expect(
      decodeActuationBody([
        new Map<number, CborValue>([
          [0, 1],
          [1, 5],
          [2, 'd'],
          [3, 'a'],
          [4, 1],
          [5, 9],
          [99, 1],
        ]),
      ] as CborValue),
    ).toMatchObject({ ok: false, error: { message: /unknown key 99/ } });
  });
});
