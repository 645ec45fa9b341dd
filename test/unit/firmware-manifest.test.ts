/**
 * Firmware manifest (COSE_Sign1 by a release key, SUIT-like payload) and the transfer
 * messages: round trips, refusals with their codes, and property tests (any mutation of a
 * signed manifest is refused; decoders return results on any input).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { encodeCbor } from '../../protocols/cbor.js';
import { crc32c } from '../../protocols/crc32c.js';
import { toHex } from '../../protocols/index.js';
import {
  compareVersions,
  decodeManifest,
  encodeManifest,
  type FirmwareManifest,
  manifestRefusal,
  releaseKeyId,
  verifyManifest,
} from '../../protocols/firmware-manifest.js';
import {
  decodeDown,
  decodeReport,
  encodeChunk,
  encodeOffer,
  encodeReport,
  UPDATE_STATES,
  type UpdateReport,
} from '../../protocols/firmware-transfer.js';
import { ProtocolUsageError } from '../../protocols/result.js';

const seed = new Uint8Array(32).fill(7);
const pub = publicKeyFromSeed(seed);
const other = publicKeyFromSeed(new Uint8Array(32).fill(9));
const sign = (m: Uint8Array) => signEd25519(seed, m);
const base: FirmwareManifest = {
  model: 'env-sensor',
  version: '1.2.0',
  digest: new Uint8Array(32).fill(0xab),
  size: 65_536,
  minVersion: '1.0.0',
  slot: 1,
  issued: 1_760_000_000_000,
};

const versionArb = fc.tuple(fc.nat(99999), fc.nat(99999), fc.nat(99999)).map(([a, b, c]) => `${a}.${b}.${c}`);
const manifestArb = fc
  .record({
    model: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/),
    version: versionArb,
    min: versionArb,
    digest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    size: fc.integer({ min: 1, max: 16 * 1024 * 1024 }),
    slot: fc.integer({ min: 0, max: 15 }),
    issued: fc.nat(),
  })
  .map(({ version, min, ...m }) => {
    const [lo, hi] = compareVersions(min, version) <= 0 ? [min, version] : [version, min];
    return { ...m, version: hi, minVersion: lo } satisfies FirmwareManifest;
  });

describe('firmware manifest', () => {
  it('round-trips and verifies under the release key only', () => {
    const bytes = encodeManifest(base, pub, sign);
    const v = verifyManifest(bytes, [other, pub], verifyEd25519);
    expect(v.ok && v.value.manifest).toEqual(base);
    expect(v.ok && [...v.value.kid]).toEqual([...releaseKeyId(pub)]);
    const wrong = verifyManifest(bytes, [other], verifyEd25519);
    expect(!wrong.ok && wrong.error.code).toBe('firmware/unknown-key');
  });

  it('refuses a signature by another key under the right kid', () => {
    // Signed by `other`'s seed but claiming the release key's id: the signature check fails.
    const forged = encodeManifest(base, pub, (m) => signEd25519(new Uint8Array(32).fill(9), m));
    const v = verifyManifest(forged, [pub], verifyEd25519);
    expect(!v.ok && v.error.code).toBe('firmware/bad-signature');
  });

  it('encoding refuses bad fields as misuse', () => {
    for (const bad of [
      { ...base, version: '1.2' },
      { ...base, model: '' },
      { ...base, minVersion: '2.0.0' },
      { ...base, size: 0 },
      { ...base, slot: 16 },
      { ...base, digest: new Uint8Array(31) },
    ])
      expect(() => encodeManifest(bad, pub, sign)).toThrow(ProtocolUsageError);
  });

  it('a device refuses a wrong model, a downgrade, a too old base and another slot', () => {
    const dev = { model: 'env-sensor', version: '1.1.0', slot: 1 };
    expect(manifestRefusal(base, dev)).toBeUndefined();
    expect(manifestRefusal(base, { ...dev, model: 'press' })?.code).toBe('wrong-model');
    expect(manifestRefusal(base, { ...dev, version: '1.2.0' })?.code).toBe('downgrade');
    expect(manifestRefusal(base, { ...dev, version: '2.0.0' })?.code).toBe('downgrade');
    expect(manifestRefusal(base, { ...dev, version: '0.9.9' })?.code).toBe('too-old');
    expect(manifestRefusal(base, { ...dev, slot: 0 })?.code).toBe('wrong-slot');
  });

  it('property: any manifest round-trips', () => {
    fc.assert(
      fc.property(manifestArb, (m) => {
        const v = verifyManifest(encodeManifest(m, pub, sign), [pub], verifyEd25519);
        expect(v.ok && v.value.manifest).toEqual(m);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses an unsigned envelope byte re-encoded in a longer form', () => {
    // The kid label 4 written as 0x18 0x04 decodes to the same map; only the bytes differ.
    const bytes = encodeManifest(base, pub, sign);
    const at = bytes.indexOf(0x04, 6);
    const longer = Uint8Array.from([...bytes.slice(0, at), 0x18, ...bytes.slice(at)]);
    const v = verifyManifest(longer, [pub], verifyEd25519);
    expect(!v.ok && v.error.code).toBe('firmware/not-canonical');
  });

  it('property: any mutation of a signed manifest is refused', () => {
    const bytes = encodeManifest(base, pub, sign);
    const mutation = fc.oneof(
      fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
        const b = bytes.slice();
        b[i]! ^= x;
        return b;
      }),
      fc.nat(bytes.length - 1).map((n) => bytes.slice(0, n)),
      fc.uint8Array({ minLength: 1, maxLength: 8 }).map((tail) => Uint8Array.from([...bytes, ...tail])),
      fc
        .tuple(fc.nat(bytes.length), fc.uint8Array({ minLength: 1, maxLength: 4 }))
        .map(([i, ins]) => Uint8Array.from([...bytes.slice(0, i), ...ins, ...bytes.slice(i)])),
    );
    fc.assert(
      fc.property(mutation, (b) => {
        expect(verifyManifest(b, [pub], verifyEd25519).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: decoding arbitrary bytes returns a result', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => {
        const r = decodeManifest(b);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses an oversized message before decoding it', () => {
    const r = decodeManifest(new Uint8Array(5000));
    expect(!r.ok && r.error.code).toBe('firmware/too-large');
  });
});

const reportArb: fc.Arbitrary<UpdateReport> = fc.record(
  {
    boot: fc.nat(),
    n: fc.nat(),
    time: fc.nat(),
    state: fc.constantFrom(...UPDATE_STATES),
    digest: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: null }),
    offset: fc.nat(),
    window: fc.nat(64),
    chunkSize: fc.nat(32 * 1024),
    running: versionArb,
    reason: fc.stringMatching(/^[a-z-]{1,32}$/),
    detail: fc.string({ maxLength: 200 }),
  },
  { requiredKeys: ['boot', 'n', 'time', 'state', 'digest', 'offset', 'window', 'chunkSize', 'running'] },
);

describe('firmware transfer messages', () => {
  it('property: reports, offers and chunks round-trip', () => {
    fc.assert(
      fc.property(reportArb, (r) => {
        const d = decodeReport(encodeReport(r));
        expect(d.ok && d.value).toEqual(r);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 4096 }),
        (digest, offset, data) => {
          const d = decodeDown(encodeChunk({ digest, offset, data }));
          expect(d.ok && d.value).toEqual({ type: 'chunk', digest, offset, data });
        },
      ),
      { numRuns: 200 },
    );
    const offer = decodeDown(encodeOffer({ manifest: new Uint8Array([1, 2]), rollout: 'r1' }));
    expect(offer.ok && offer.value).toEqual({ type: 'offer', manifest: new Uint8Array([1, 2]), rollout: 'r1' });
  });

  it('property: encodeChunk writes the bytes the general encoder writes for the same map', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 40 }),
        fc.oneof(fc.nat(300), fc.nat(70_000), fc.integer({ min: 0, max: 0xffffffff })),
        fc.uint8Array({ minLength: 1, maxLength: 32_768 }),
        (digest, offset, data) => {
          const general = encodeCbor(
            new Map<number, unknown>([
              [0, 18],
              [1, digest],
              [2, offset],
              [3, data],
              [4, crc32c(data)],
            ]),
          );
          expect(toHex(encodeChunk({ digest, offset, data }))).toBe(toHex(general));
        },
      ),
      { numRuns: 300 },
    );
    expect(() => encodeChunk({ digest: new Uint8Array(32), offset: 2 ** 32, data: new Uint8Array(1) })).toThrow(
      ProtocolUsageError,
    );
  });

  it('a chunk whose data was changed fails its CRC', () => {
    const bytes = encodeChunk({ digest: new Uint8Array(32), offset: 0, data: new Uint8Array(100).fill(1) });
    // The data sits just before the 5-byte CRC field at the end.
    bytes[bytes.length - 10]! ^= 0x40;
    const d = decodeDown(bytes);
    expect(!d.ok && d.error.code).toBe('firmware/bad-crc');
  });

  it('property: decoders return results on arbitrary input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 600 }),
          fc.anything().map((v) => encodeCbor(v)),
        ),
        (b) => {
          expect(typeof decodeDown(b).ok).toBe('boolean');
          expect(typeof decodeReport(b).ok).toBe('boolean');
        },
      ),
      { numRuns: 1000 },
    );
  });
});
