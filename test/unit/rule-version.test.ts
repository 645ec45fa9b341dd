/** protocols/rule-version.ts: the `rule` block body (kind 4). Property tests, typed errors. */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCbor, encodeCbor } from '../../protocols/index.js';
import {
  decodeRuleVersionBody,
  RULE_KINDS,
  ruleVersionBody,
  type RuleVersionBody,
} from '../../protocols/rule-version.js';

const text = (max: number): fc.Arbitrary<string> => fc.string({ minLength: 1, maxLength: max });
const body: fc.Arbitrary<RuleVersionBody> = fc.record({
  id: text(64),
  version: text(40),
  kind: fc.constantFrom(...RULE_KINDS),
  file: text(200),
  definition: fc.string({ minLength: 1, maxLength: 2000 }),
  at: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
});

describe('rule version body', () => {
  it('issue 7: round-trips through canonical CBOR (property)', () => {
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(body, (b) => {
        const bytes = encodeCbor(ruleVersionBody(b));
        const back = decodeCbor(bytes);
        expect(back.ok).toBe(true);
        if (back.ok) expect(decodeRuleVersionBody(back.value)).toEqual({ ok: true, value: b });
      }),
      { numRuns: 300 },
    );
  });

  it('issue 7: any other CBOR value decodes to a typed error, never a throw (property)', () => {
    // biome-ignore lint/nursery/noFloatingPromises: fc.assert on a synchronous fc.property returns void; Biome cannot pick that overload
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          body.map((b) => new Map([...ruleVersionBody(b)].map(([k, v]) => [k, k === 3 ? 9 : v]))),
        ),
        (v) => {
          const r = decodeRuleVersionBody(v as never);
          if (!r.ok) expect(r.error.code).toMatch(/^rule-version\//);
        },
      ),
      { numRuns: 300 },
    );
    expect(decodeRuleVersionBody(new Map([[7, 'x']]))).toMatchObject({
      ok: false,
      error: { code: 'rule-version/bad-body' },
    });
    expect(() => ruleVersionBody({ id: '', version: 'v', kind: 'machine', file: 'f', definition: 'd', at: 1 })).toThrow(
      /id must be text/,
    );
    expect(() =>
      ruleVersionBody({ id: 'a', version: 'v', kind: 'machine', file: 'f', definition: 'd', at: 1.5 }),
    ).toThrow(/at must be/);
  });
});
