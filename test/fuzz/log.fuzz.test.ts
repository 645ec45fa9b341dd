/**
 * Fuzz campaign over the gateway-to-gateway decoders (protocols/): signed block envelopes
 * and blocks, sync and auth messages, and the block bodies read from CBOR (sealed, keys,
 * policy ops, actuation). What a sibling sends is untrusted wire input: a Result, never a
 * throw; an accepted block is canonical (its bytes are exactly what encodeBlock gives, so
 * its hash cannot be varied), accepted messages re-encode to the same message.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeActuationBody } from '../../protocols/actuation.js';
import { decodePolicyOp } from '../../protocols/policy-op.js';
import {
  decodeAuthMessage,
  decodeBlock,
  decodeCbor,
  decodeKeysBody,
  decodeSealedBody,
  decodeSignedBlock,
  decodeSyncMessage,
  encodeAuthMessage,
  encodeBlock,
  encodeSyncMessage,
  sha256,
} from '../../protocols/index.js';
import { authMessages, blockBytes, blockEnvelopes, cborVectors, syncMessages } from './corpus.js';
import { budget, fuzzInput, fuzzTimeout } from './mutate.js';

const isResult = (r: { ok: boolean; error?: { code: string } }): boolean => r.ok || typeof r.error?.code === 'string';
const T = fuzzTimeout(20_000);

describe('fuzz: sibling-facing decoders never throw and accept only canonical forms', () => {
  it(
    'signed block envelopes and blocks (gateway/log/README: canonical CBOR, RFC 8949 §4.2.1): accepted ⇒ re-encodes byte for byte',
    () => {
      fc.assert(
        fc.property(fuzzInput([...blockEnvelopes, ...blockBytes], 4096), (b) => {
          const env = decodeSignedBlock(b);
          expect(isResult(env)).toBe(true);
          if (env.ok) {
            expect(Buffer.from(encodeBlock(env.value.block))).toEqual(Buffer.from(env.value.bytes));
            expect(Buffer.from(env.value.hash)).toEqual(Buffer.from(sha256(env.value.bytes)));
          }
          const blk = decodeBlock(b);
          expect(isResult(blk)).toBe(true);
          if (blk.ok) expect(Buffer.from(encodeBlock(blk.value))).toEqual(Buffer.from(b));
        }),
        budget(2000),
      );
    },
    T,
  );

  it(
    'sync messages (gateway/sync/README protocol): Result always; accepted ones survive re-encoding',
    () => {
      fc.assert(
        fc.property(fuzzInput(syncMessages, 4096), (b) => {
          const r = decodeSyncMessage(b);
          expect(isResult(r)).toBe(true);
          if (r.ok) expect(decodeSyncMessage(encodeSyncMessage(r.value))).toEqual(r);
        }),
        budget(3000),
      );
    },
    T,
  );

  it(
    'sync auth messages (signed challenge): Result always; accepted ones survive re-encoding',
    () => {
      fc.assert(
        fc.property(fuzzInput(authMessages, 256), (b) => {
          const r = decodeAuthMessage(b);
          expect(isResult(r)).toBe(true);
          if (r.ok) expect(decodeAuthMessage(encodeAuthMessage(r.value))).toEqual(r);
        }),
        budget(3000),
      );
    },
    T,
  );

  it(
    'block bodies read from CBOR values (sealed, keys, policy op, actuation): Result always',
    () => {
      fc.assert(
        fc.property(fuzzInput([...cborVectors, ...blockBytes, ...syncMessages], 1024), (b) => {
          expect(isResult(decodePolicyOp(b))).toBe(true);
          const v = decodeCbor(b);
          if (!v.ok) return;
          expect(isResult(decodeSealedBody(v.value))).toBe(true);
          expect(isResult(decodeKeysBody(v.value))).toBe(true);
          expect(isResult(decodeActuationBody(v.value))).toBe(true);
        }),
        budget(3000),
      );
    },
    T,
  );
});
