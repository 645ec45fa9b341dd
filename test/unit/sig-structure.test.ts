import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCbor } from '../../protocols/cbor.js';
import { sigStructure } from '../../protocols/cose.js';

describe('Sig_structure', () => {
  // RFC 9052 §4.4: the hand-written encoder must equal the generic CBOR encoding,
  // across every byte-string head size (1, 2, 3 and 5 bytes).
  it('equals the generic CBOR encoding of ["Signature1", protected, aad, payload]', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 70_000 }),
        fc.uint8Array({ maxLength: 30 }),
        (p, payload, aad) => {
          expect(Buffer.from(sigStructure(p, payload, aad))).toEqual(
            Buffer.from(encodeCbor(['Signature1', p, aad, payload])),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('encodeSign1 misuse', () => {
  // RFC 9052 §3: a label appears once; alg and kid come from encodeSign1's own arguments.
  it('refuses alg or kid in protectedExtra with a typed error', async () => {
    const { encodeSign1, ProtocolUsageError } = await import('../../protocols/index.js');
    for (const label of [1, 4]) {
      expect(() =>
        encodeSign1(
          { kid: new Uint8Array([1]), payload: new Uint8Array(0), protectedExtra: new Map([[label, -7]]) },
          () => new Uint8Array(64),
        ),
      ).toThrow(ProtocolUsageError);
    }
  });
});
