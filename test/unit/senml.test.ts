/**
 * SenML-CBOR (RFC 8428 §6) in protocols/senml.ts: the RFC's own examples,
 * base-value resolution (§4.6), names (§4.5.1), must-understand labels and
 * versions (§4.4, §12.2), value fields (§4.2), and property tests.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CborValue, decodeCbor, encodeCbor } from '../../protocols/cbor.js';
import { ProtocolUsageError } from '../../protocols/result.js';
import {
  decodeSenml,
  encodeSenml,
  MAX_RECORDS,
  packToCbor,
  readPack,
  type ResolvedRecord,
  SENML_VERSION,
  SenmlLabel,
  type SenmlRecord,
} from '../../protocols/senml.js';
import { errorCode, hex, isTypedResult, loadJson, okValue, toHex } from './vector-helpers.js';

type JsonRecord = Record<string, string | number | boolean>;
interface Example {
  section: string;
  title: string;
  pack: JsonRecord[];
  cborHex?: string;
  resolved: { n: string; u?: string; t: number; v?: number; vs?: string; vb?: boolean; vd?: string }[];
}
const vectors = loadJson<{ labels: Record<string, number>; examples: Example[] }>('rfc8428-examples.json');
const labels = vectors.labels;
const b64url = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));

/** A JSON SenML pack written as SenML-CBOR with the integer labels of RFC 8428 Table 6 (vd becomes a byte string). */
function jsonPackToCbor(pack: JsonRecord[]): Uint8Array {
  return encodeCbor(
    pack.map((r) => new Map(Object.entries(r).map(([k, v]) => [labels[k] ?? k, k === 'vd' ? b64url(v as string) : v]))),
  );
}

/** Compares resolved records with the RFC's, field by field (times to the microsecond). */
function expectResolved(got: ResolvedRecord[], want: Example['resolved']): void {
  expect(got.map((r) => r.name)).toEqual(want.map((r) => r.n));
  want.forEach((w, i) => {
    const g = got[i]!;
    expect(g.unit).toBe(w.u);
    expect(g.time).toBeCloseTo(w.t, 6);
    expect(g.value).toBe(w.v);
    expect(g.stringValue).toBe(w.vs);
    expect(g.boolValue).toBe(w.vb);
    expect(g.dataValue === undefined ? undefined : toHex(g.dataValue)).toBe(
      w.vd === undefined ? undefined : toHex(b64url(w.vd)),
    );
  });
}

describe('RFC 8428 §6 Table 6 labels', () => {
  it('protocols/senml.ts uses the labels of the RFC', () => {
    expect({ ...SenmlLabel }).toEqual(labels);
  });
});

describe('RFC 8428 §5.1 examples in CBOR', () => {
  // RFC 8428 §4.6 / §5.1: each example resolves to the records the RFC describes.
  it.each(vectors.examples)('§$section $title', (ex) => {
    expectResolved(okValue(decodeSenml(jsonPackToCbor(ex.pack))), ex.resolved);
  });

  // RFC 8428 §6: the CBOR bytes printed in the RFC (half float for 1.5, t: 0 on the last record).
  it("§6: the RFC's own CBOR bytes decode to the §5.1.2 pack and resolve the same way", () => {
    const ex = vectors.examples.find((e) => e.cborHex)!;
    const bytes = hex(ex.cborHex!);
    expectResolved(okValue(decodeSenml(bytes)), ex.resolved);
    const records = okValue(readPack(okValue(decodeCbor(bytes))));
    expect(records[0]).toEqual({
      bn: 'urn:dev:ow:10e2073a0108006:',
      bt: 1.276020076001e9,
      bu: 'A',
      bver: 5,
      n: 'voltage',
      u: 'V',
      v: 120.1,
    });
    expect(records[4]).toEqual({ n: 'current', t: -2, v: 1.5 });
    expect(records[6]).toEqual({ n: 'current', t: 0, v: 1.7 });
  });

  it('§5.1.4: the resolved form of §5.1.3, decoded as a pack itself, resolves to the same records', () => {
    const ex = vectors.examples.find((e) => e.section === '5.1.3')!;
    const resolvedPack = ex.resolved.map((r) => ({ ...r }) as JsonRecord);
    expectResolved(okValue(decodeSenml(jsonPackToCbor(resolvedPack))), ex.resolved);
  });
});

const enc = (...records: Record<string | number, unknown>[]) =>
  encodeCbor(
    records.map(
      (r) => new Map(Object.entries(r).map(([k, v]) => [labels[k] ?? (/^-?\d+$/.test(k) ? Number(k) : k), v])),
    ),
  );
const resolve = (...records: Record<string | number, unknown>[]) => decodeSenml(enc(...records));

describe('base values (RFC 8428 §4.1, §4.6)', () => {
  // RFC 8428 §4.6
  it('bn + n, bt + t, bv + v, bs + s; u overrides bu', () => {
    const [a, b] = okValue(
      resolve(
        { bn: 'dev/', bt: 1000, bu: 'Cel', bv: 20, bs: 100, n: 'a', v: 1.5, s: 5 },
        { n: 'b', u: 'K', t: -2, v: -1 },
      ),
    );
    expect(a).toEqual({ name: 'dev/a', time: 1000, unit: 'Cel', value: 21.5, sum: 105 });
    expect(b).toEqual({ name: 'dev/b', time: 998, unit: 'K', value: 19 });
  });

  // RFC 8428 §4.1 (base fields apply to the following records)
  it('base fields apply to later records until changed', () => {
    const r = okValue(
      resolve({ bn: 'x/', bt: 10, n: 'a', v: 1 }, { bn: 'y/', n: 'a', v: 2 }, { bt: 20, n: 'b', v: 3 }),
    );
    expect(r.map((x) => [x.name, x.time])).toEqual([
      ['x/a', 10],
      ['y/a', 10],
      ['y/b', 20],
    ]);
  });

  // RFC 8428 §4.1 (Base Value / Base Sum), §4.6
  it('bv is added to v only, never to string, boolean or data values; bs only to s', () => {
    const [s, b, d, sum] = okValue(
      resolve(
        { bn: 'd:', bv: 5, n: 's', vs: 'hi' },
        { n: 'b', vb: true },
        { n: 'x', vd: new Uint8Array([1]) },
        { n: 'm', s: 2 },
      ),
    );
    expect(s).toEqual({ name: 'd:s', time: 0, stringValue: 'hi' });
    expect(b).toEqual({ name: 'd:b', time: 0, boolValue: true });
    expect(d).toEqual({ name: 'd:x', time: 0, dataValue: new Uint8Array([1]) });
    expect(sum).toEqual({ name: 'd:m', time: 0, sum: 2 });
  });

  it('a name may come from bn alone; ut is carried through (§4.2)', () => {
    expect(okValue(resolve({ bn: 'urn:dev:mac:0024befffe804ff1', v: 1, ut: 60 }))).toEqual([
      { name: 'urn:dev:mac:0024befffe804ff1', time: 0, value: 1, updateTime: 60 },
    ]);
  });

  it('a record carrying only base fields yields no measurement (§5.1.7)', () => {
    expect(okValue(resolve({ bn: 'a/', bt: 5, bu: 'V' }, { n: 'x', v: 1 }))).toEqual([
      { name: 'a/x', time: 5, unit: 'V', value: 1 },
    ]);
  });
});

describe('names (RFC 8428 §4.5.1)', () => {
  // RFC 8428 §4.5.1
  it.each(['a', 'Z9', '0', 'urn:dev:ow:10e2073a01080063', '2001:db8::3', 'a-b:c.d/e_f'])('accepts %s', (name) => {
    expect(okValue(resolve({ n: name, v: 1 }))[0]!.name).toBe(name);
  });

  // RFC 8428 §4.5.1
  it.each(['', '-a', '_a', '.a', ':a', '/a', 'a b', 'a#b', 'a[1]', 'café', 'a\n', 'a%b'])(
    'refuses %j with senml/bad-name',
    (name) => {
      expect(errorCode(resolve({ n: name, v: 1 }))).toBe('senml/bad-name');
    },
  );

  // RFC 8428 §4.5.1 (the rules apply to bn + n)
  it('checks the concatenated name, not the parts', () => {
    expect(errorCode(resolve({ bn: 'dev ', n: 'x', v: 1 }))).toBe('senml/bad-name');
    expect(okValue(resolve({ bn: 'dev', n: '-x', v: 1 }))[0]!.name).toBe('dev-x');
    expect(errorCode(resolve({ v: 1 }))).toBe('senml/bad-name'); // no name at all
  });
});

describe('labels, versions and fields', () => {
  // RFC 8428 §4.4 / §12.2: labels ending in "_" must be understood; others may be ignored.
  it('a string label ending in "_" is senml/must-understand; other unknown labels are ignored', () => {
    expect(errorCode(resolve({ n: 'a', v: 1, foo_: 1 }))).toBe('senml/must-understand');
    expect(errorCode(resolve({ n: 'a', v: 1 }, { n: 'b', v: 2, _: true }))).toBe('senml/must-understand');
    expect(okValue(resolve({ n: 'a', v: 1, foo: 'bar', '99': 1, '-99': 'x', foo_bar: 2 }))).toEqual([
      { name: 'a', time: 0, value: 1 },
    ]);
  });

  // RFC 8428 §4.4: a version above the one we implement must not be used.
  it('bver up to 10 is accepted, above 10 or not an integer is senml/unsupported-version', () => {
    expect(SENML_VERSION).toBe(10);
    expect(okValue(resolve({ bver: 10, n: 'a', v: 1 })).length).toBe(1);
    expect(okValue(resolve({ bver: 5, n: 'a', v: 1 })).length).toBe(1);
    expect(errorCode(resolve({ bver: 11, n: 'a', v: 1 }))).toBe('senml/unsupported-version');
    expect(errorCode(resolve({ bver: 10.5, n: 'a', v: 1 }))).toBe('senml/unsupported-version');
    expect(errorCode(resolve({ n: 'a', v: 1 }, { bver: 12, n: 'b', v: 1 }))).toBe('senml/unsupported-version');
  });

  // RFC 8428 §4.2: at most one of v, vs, vb, vd; a record needs a value or a sum.
  it.each([
    [{ n: 'a', v: 1, vs: 'x' }],
    [{ n: 'a', v: 1, vb: false }],
    [{ n: 'a', vs: 'x', vd: new Uint8Array(0) }],
    [{ n: 'a', v: 1, vs: 'x', vb: true, vd: new Uint8Array(1) }],
  ])('more than one value field is senml/multiple-values: %o', (r) => {
    expect(errorCode(resolve(r))).toBe('senml/multiple-values');
  });

  // RFC 8428 §4.2 / §4.6 (a record carries a value or a sum)
  it('a named or timed record without value or sum is senml/no-value; a sum alone is fine', () => {
    expect(errorCode(resolve({ n: 'a' }))).toBe('senml/no-value');
    expect(errorCode(resolve({ bn: 'a', t: 5 }))).toBe('senml/no-value');
    expect(okValue(resolve({ n: 'a', s: 3 }))).toEqual([{ name: 'a', time: 0, sum: 3 }]);
  });

  // RFC 8428 §6 (CBOR types of each label), §4.5.4 (values)
  it('field types: numbers finite, text for names and units, bool for vb, bytes for vd (senml/bad-field)', () => {
    for (const r of [
      { n: 'a', v: '1' },
      { n: 1, v: 1 },
      { n: 'a', u: 5, v: 1 },
      { n: 'a', vb: 1 },
      { n: 'a', vd: 'AQ' },
      { n: 'a', vs: new Uint8Array(1) },
      { n: 'a', v: Infinity },
      { n: 'a', v: NaN },
      { n: 'a', t: 'now', v: 1 },
      { n: 'a', v: 2n ** 60n },
      { n: 'a'.repeat(257), v: 1 },
    ]) {
      expect([r, errorCode(resolve(r))]).toEqual([r, 'senml/bad-field']);
    }
  });

  // RFC 8428 §6: values may be integers or half, single or double floats.
  it('accepts integer, half, single and double float values', () => {
    const pack = hex(
      '84' +
        'a2006161 02 18 2a' +
        'a2006162 02 f9 3e00' +
        'a2006163 02 fa 3fc00000' +
        'a2006164 02 fb 3ff8000000000000',
    );
    expect(okValue(decodeSenml(pack)).map((r) => r.value)).toEqual([42, 1.5, 1.5, 1.5]);
  });
});

describe('pack shape and limits', () => {
  // RFC 8428 §4 (a pack is an array of record maps), §6
  it('not an array, empty, record not a map', () => {
    expect(errorCode(decodeSenml(encodeCbor(new Map([[0, 'a']]))))).toBe('senml/not-array');
    expect(errorCode(decodeSenml(encodeCbor([])))).toBe('senml/empty');
    expect(
      errorCode(
        decodeSenml(
          encodeCbor([
            new Map<number, unknown>([
              [0, 'a'],
              [2, 1],
            ]),
            'x',
          ]),
        ),
      ),
    ).toBe('senml/not-map');
  });

  // DESIGN.md hard limits (array lengths)
  it('more than MAX_RECORDS records is refused by the CBOR limit, and by readPack itself', () => {
    const rec = () =>
      new Map<number, CborValue>([
        [0, 'a'],
        [2, 1],
      ]);
    expect(okValue(decodeSenml(encodeCbor(Array.from({ length: MAX_RECORDS }, rec)))).length).toBe(MAX_RECORDS);
    expect(errorCode(decodeSenml(encodeCbor(Array.from({ length: MAX_RECORDS + 1 }, rec))))).toBe('cbor/too-long');
    expect(errorCode(readPack(Array.from({ length: MAX_RECORDS + 1 }, rec)))).toBe('senml/too-many-records');
  });

  // RFC 8428 §6 Table 6
  it('packToCbor writes labels in Table 6 order and refuses empty or oversized packs', () => {
    const [m] = packToCbor([{ v: 1, n: 'a', bn: 'b', bver: 10, t: 2, u: 'V' }]);
    expect([...m!.keys()]).toEqual([-2, -1, 0, 1, 2, 6]);
    expect(() => packToCbor([])).toThrow(ProtocolUsageError);
    expect(() => encodeSenml(new Array<SenmlRecord>(MAX_RECORDS + 1).fill({ n: 'a', v: 1 }))).toThrow(
      ProtocolUsageError,
    );
  });
});

const nameArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9\-:./_]{0,15}$/);
const num = fc.double({ min: -1e9, max: 1e9, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x));
const valueFields = fc.oneof(
  fc.record({ v: num }),
  fc.record({ vs: fc.string({ maxLength: 20 }) }),
  fc.record({ vb: fc.boolean() }),
  fc.record({ vd: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ s: num }),
);
const recordArb: fc.Arbitrary<SenmlRecord> = fc
  .tuple(
    fc.record(
      {
        bn: nameArb,
        bt: num,
        bu: fc.string({ maxLength: 5 }),
        bv: num,
        bs: num,
        bver: fc.integer({ min: 1, max: 10 }),
      },
      { requiredKeys: [] },
    ),
    fc.record({ n: nameArb, u: fc.string({ maxLength: 5 }), t: num, ut: num }, { requiredKeys: ['n'] }),
    valueFields,
  )
  .map(([base, reg, value]) => ({ ...base, ...reg, ...value }));

/** Reference reading of RFC 8428 §4.6 for one pack, written independently of protocols/senml.ts. */
function referenceResolve(pack: SenmlRecord[]): ResolvedRecord[] {
  const base = { bn: '', bt: 0, bu: undefined as string | undefined, bv: 0, bs: 0 };
  return pack.map((r) => {
    Object.assign(base, Object.fromEntries(Object.entries(r).filter(([k]) => k.startsWith('b'))));
    const out: ResolvedRecord = { name: base.bn + (r.n ?? ''), time: base.bt + (r.t ?? 0) };
    const unit = r.u ?? base.bu;
    if (unit !== undefined) out.unit = unit;
    if (r.v !== undefined) out.value = base.bv + r.v;
    if (r.vs !== undefined) out.stringValue = r.vs;
    if (r.vb !== undefined) out.boolValue = r.vb;
    if (r.vd !== undefined) out.dataValue = r.vd;
    if (r.s !== undefined) out.sum = base.bs + r.s;
    if (r.ut !== undefined) out.updateTime = r.ut;
    return out;
  });
}

describe('SenML properties', () => {
  // RFC 8428 §6
  it('encodeSenml → decodeCbor → readPack gives back the wire records', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 8 }), (pack) => {
        expect(okValue(readPack(okValue(decodeCbor(encodeSenml(pack)))))).toEqual(pack);
      }),
      { numRuns: 500 },
    );
  });

  it('decodeSenml resolves like an independent reading of §4.6', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 8 }), (pack) => {
        expect(okValue(decodeSenml(encodeSenml(pack)))).toEqual(referenceResolve(pack));
      }),
      { numRuns: 500 },
    );
  });

  // DESIGN.md: nothing from the wire can crash the process
  it('random bytes never throw and give ok or a typed cbor/senml error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(isTypedResult(decodeSenml(b), ['cbor', 'senml'])).toBe(true);
        expect(isTypedResult(decodeSenml(new Uint8Array([0x81, 0xa3, ...b])), ['cbor', 'senml'])).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  // DESIGN.md: nothing from the wire can crash the process
  it('mutated valid packs never throw', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        (pack, edits) => {
          const b = encodeSenml(pack).slice();
          for (const [at, x] of edits) b[at % b.length] = x;
          expect(isTypedResult(decodeSenml(b), ['cbor', 'senml'])).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
