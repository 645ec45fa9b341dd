/**
 * Fuzz campaign over the device-facing decoders (protocols/): CBOR, COSE_Sign1, Outpost
 * bodies, SenML, COBS, the serial Deframer, BLE chunking and advertisements, did:key and
 * keys, topics, ids. Inputs are valid ones under bit flips, truncation, inserts, splices
 * (mutate.ts) plus random bytes. Every decoder of untrusted input must return a Result,
 * never throw, and what it accepts must survive its own encoder unchanged.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  advertisedDeviceIds,
  attPayload,
  base58btcDecode,
  checkEd25519PublicKey,
  chunkForMtu,
  cobsDecode,
  cobsEncode,
  crc32c,
  decodeBody,
  decodeCbor,
  decodeSenml,
  decodeSign1,
  Deframer,
  deviceIdToKid,
  encodeBody,
  isValidId,
  kidToDeviceId,
  parsePublicKey,
  parseTopic,
  publicKeyToDidKey,
  topics,
} from '../../protocols/index.js';
import {
  bodyBytes,
  cborVectors,
  cobsWire,
  coseVectors,
  dec,
  enc,
  frames,
  keyTexts,
  senmlPacks,
  serialStreams,
  topicTexts,
} from './corpus.js';
import { budget, fuzzInput, fuzzTimeout } from './mutate.js';

/** A decoder's answer must be a Result: {ok: true, value} or {ok: false, error: {code, message}}. */
function isResult(r: { ok: boolean; error?: { code: string; message: string } }): boolean {
  return r.ok === true || (r.ok === false && typeof r.error?.code === 'string' && typeof r.error.message === 'string');
}

const T = fuzzTimeout(20_000);

describe('fuzz: device-facing decoders never throw and stay consistent', () => {
  it(
    'CBOR (RFC 8949 §5.3: a decoder must handle malformed input), under default and tight limits',
    () => {
      const input = fuzzInput([...cborVectors, ...frames, ...senmlPacks]);
      fc.assert(
        fc.property(input, (b) => {
          expect(isResult(decodeCbor(b))).toBe(true);
          expect(isResult(decodeCbor(b, { maxDepth: 2, maxItems: 16, maxContainerLength: 4, maxBytes: 64 }))).toBe(
            true,
          );
        }),
        budget(3000),
      );
    },
    T,
  );

  it(
    'COSE_Sign1 (RFC 9052 §4.2) and the body inside: Result always; an accepted body re-encodes to the same body',
    () => {
      fc.assert(
        fc.property(fuzzInput([...frames, ...coseVectors]), fc.boolean(), (b, relaxed) => {
          const s = decodeSign1(b, relaxed ? { requireTag: false, requireKid: false, anyAlg: true } : {});
          expect(isResult(s)).toBe(true);
          if (!s.ok) return;
          expect(s.value.payload).toBeInstanceOf(Uint8Array);
          expect(s.value.signature).toBeInstanceOf(Uint8Array);
          const body = decodeBody(s.value.payload);
          expect(isResult(body)).toBe(true);
          if (body.ok) expect(decodeBody(encodeBody(body.value))).toEqual(body);
        }),
        budget(3000),
      );
    },
    T,
  );

  it(
    'Outpost bodies: Result always; accepted ones are stable through encodeBody (the body map of protocols/frame.ts)',
    () => {
      fc.assert(
        fc.property(fuzzInput(bodyBytes), (b) => {
          const r = decodeBody(b);
          expect(isResult(r)).toBe(true);
          if (r.ok) expect(decodeBody(encodeBody(r.value))).toEqual(r);
        }),
        budget(3000),
      );
    },
    T,
  );

  it(
    'SenML-CBOR packs (RFC 8428 §6): Result always',
    () => {
      fc.assert(
        fc.property(fuzzInput(senmlPacks), (b) => {
          const r = decodeSenml(b);
          expect(isResult(r)).toBe(true);
          if (r.ok) for (const rec of r.value) expect(typeof rec.name).toBe('string');
        }),
        budget(3000),
      );
    },
    T,
  );

  it(
    'COBS: Result always; what decodes encodes and decodes back to itself',
    () => {
      fc.assert(
        fc.property(fuzzInput(cobsWire.map((w) => (w[w.length - 1] === 0 ? w.subarray(0, -1) : w))), (b) => {
          const r = cobsDecode(b);
          expect(isResult(r)).toBe(true);
          if (r.ok) {
            expect(r.value.length).toBeLessThanOrEqual(b.length);
            expect(cobsDecode(cobsEncode(r.value))).toEqual(r);
          }
        }),
        budget(3000),
      );
    },
    T,
  );

  it(
    'serial Deframer: damaged streams in random chunks yield only intact frames, memory stays bounded, never throws',
    () => {
      const originals = new Set(frames.map((f) => Buffer.from(f).toString('hex')));
      fc.assert(
        fc.property(
          fuzzInput(serialStreams, 2048),
          fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }),
          fc.integer({ min: 16, max: 4096 }),
          (stream, cuts, max) => {
            const d = new Deframer({ maxFrameBytes: max });
            let at = 0;
            let k = 0;
            const out: Uint8Array[] = [];
            while (at < stream.length) {
              const n = cuts[k++ % cuts.length]!;
              out.push(...d.push(stream.subarray(at, at + n)));
              at += n;
              expect(d.buffered).toBeLessThanOrEqual(max + 4);
            }
            out.push(...d.push(Uint8Array.of(0)));
            // A frame that passes CRC-32C after random damage would be a 2^-32 event: every output is an original.
            for (const f of out) {
              expect(f.length).toBeLessThanOrEqual(max);
              expect(originals.has(Buffer.from(f).toString('hex'))).toBe(true);
            }
          },
        ),
        budget(1500),
      );
      expect(crc32c(enc('123456789'))).toBe(0xe3069283); // the check value the Deframer relies on
    },
    T,
  );

  it(
    'BLE: MTU chunks reassemble exactly within the ATT payload; advertisements only ever name valid ids',
    () => {
      fc.assert(
        fc.property(
          fuzzInput(serialStreams),
          fc.integer({ min: -5, max: 600 }),
          fc.option(fc.string({ maxLength: 80 })),
          fc.option(fuzzInput([enc('\xff\xffsim-0001')], 80)),
          (bytes, mtu, name, mfr) => {
            const chunks = chunkForMtu(bytes, mtu);
            for (const c of chunks) expect(c.length).toBeLessThanOrEqual(attPayload(mtu));
            expect(Buffer.concat(chunks)).toEqual(Buffer.from(bytes));
            for (const id of advertisedDeviceIds({ localName: name ?? undefined, manufacturerData: mfr }))
              expect(isValidId(id)).toBe(true);
          },
        ),
        budget(2000),
      );
    },
    T,
  );

  it(
    'keys: did:key, hex and base58btc parsing return Results; an accepted key is a canonical point that round-trips as did:key',
    () => {
      const texts = fuzzInput(keyTexts.map(enc), 120).map(dec);
      fc.assert(
        fc.property(fc.oneof(texts, fc.string({ maxLength: 100 })), (t) => {
          const r = parsePublicKey(t);
          expect(isResult(r)).toBe(true);
          if (r.ok) {
            expect(r.value).toHaveLength(32);
            expect(checkEd25519PublicKey(r.value).ok).toBe(true);
            expect(parsePublicKey(publicKeyToDidKey(r.value))).toEqual(r);
          }
          const b = base58btcDecode(t);
          expect(b === undefined || b instanceof Uint8Array).toBe(true);
        }),
        budget(3000),
      );
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
          expect(isResult(checkEd25519PublicKey(b))).toBe(true);
        }),
        budget(500),
      );
    },
    T,
  );

  it(
    'topics and kids: parseTopic and kidToDeviceId accept only what the encoders produce',
    () => {
      fc.assert(
        fc.property(fc.oneof(fuzzInput(topicTexts.map(enc), 80).map(dec), fc.string({ maxLength: 80 })), (t) => {
          const p = parseTopic(t);
          if (p === undefined) return;
          const again =
            p.kind === 'gateway-status'
              ? topics.gatewayStatus(p.gateway)
              : p.kind === 'up'
                ? topics.up(p.device)
                : topics.cmd(p.device);
          expect(again).toBe(t);
        }),
        budget(3000),
      );
      fc.assert(
        fc.property(
          fc.oneof(fuzzInput([enc('fz-1'), enc('sim-0001')], 80), fc.uint8Array({ maxLength: 80 })),
          (kid) => {
            const id = kidToDeviceId(kid);
            if (id === undefined) return;
            expect(isValidId(id)).toBe(true);
            expect(deviceIdToKid(id)).toEqual(kid);
          },
        ),
        budget(2000),
      );
    },
    T,
  );
});
