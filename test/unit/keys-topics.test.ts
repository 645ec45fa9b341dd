/**
 * Identities and addressing: Ed25519 public keys as hex and did:key
 * (protocols/keys.ts), device/gateway ids (protocols/ids.ts) and the MQTT topic
 * scheme of DESIGN.md "Wire formats" (protocols/topics.ts).
 */
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { deviceIdToKid, ID_PATTERN, isValidId, kidToDeviceId } from '../../protocols/ids.js';
import {
  base58btcDecode,
  base58btcEncode,
  checkEd25519PublicKey,
  parsePublicKey,
  publicKeyHex,
  publicKeyToDidKey,
} from '../../protocols/keys.js';
import { ProtocolUsageError } from '../../protocols/result.js';
import { parseTopic, TOPIC_ROOT, topics } from '../../protocols/topics.js';
import { errorCode, hex, loadJson, okValue, toHex } from './vector-helpers.js';

interface DidVectors {
  seeded: { did: string; seed: string; publicKeyBase58: string }[];
  specExample: { did: string; publicKeyBase58: string };
  otherKeyTypes: { did: string; keyType: string }[];
  base58btc: ({ utf8: string; encoded: string } | { hex: string; encoded: string })[];
}
ed.hashes.sha512 = (m) => new Uint8Array(createHash('sha512').update(m).digest());
const dids = loadJson<DidVectors>('did-key-ed25519.json');
const usageCode = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return e instanceof ProtocolUsageError ? e.code : `not a ProtocolUsageError: ${String(e)}`;
  }
  return 'did not throw';
};

describe('base58btc (draft-msporny-base58 test vectors)', () => {
  // draft-msporny-base58 §5 test vectors
  it.each(dids.base58btc)('$encoded', (v) => {
    const bytes = 'utf8' in v ? new TextEncoder().encode(v.utf8) : hex(v.hex);
    expect(base58btcEncode(bytes)).toBe(v.encoded);
    expect(toHex(base58btcDecode(v.encoded)!)).toBe(toHex(bytes));
  });

  // draft-msporny-base58 §3 (leading zero bytes become '1')
  it('round-trips any bytes, leading zeros included; refuses characters outside the alphabet', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(4), (b, zeros) => {
        const bytes = new Uint8Array([...new Array<number>(zeros).fill(0), ...b]);
        expect(toHex(base58btcDecode(base58btcEncode(bytes))!)).toBe(toHex(bytes));
      }),
      { numRuns: 500 },
    );
    for (const s of ['0', 'O', 'I', 'l', 'ab+c', ' ']) expect(base58btcDecode(s)).toBeUndefined();
  });
});

describe('did:key (W3C CCG did:key method, multicodec ed25519-pub 0xed01)', () => {
  // did:key test vectors: seed → key (RFC 8032 §5.1.5, via node:crypto) → publicKeyBase58 and did.
  it.each(dids.seeded)('$did', (v) => {
    const pub = publicKeyFromSeed(hex(v.seed));
    expect(toHex(ed.getPublicKey(hex(v.seed)))).toBe(toHex(pub));
    expect(base58btcEncode(pub)).toBe(v.publicKeyBase58);
    expect(publicKeyToDidKey(pub)).toBe(v.did);
    expect(toHex(okValue(parsePublicKey(v.did)))).toBe(toHex(pub));
  });

  // did:key method spec, Ed25519 example DID document
  it('the did:key specification example resolves to its publicKeyBase58', () => {
    const { did, publicKeyBase58 } = dids.specExample;
    const pub = okValue(parsePublicKey(did));
    expect(base58btcEncode(pub)).toBe(publicKeyBase58);
    expect(publicKeyToDidKey(pub)).toBe(did);
  });

  // did:key method: 'z' + base58btc(0xed01 || key)
  it('round-trips every enrolable key through did:key and hex; Ed25519 did:keys start with z6Mk', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const pub = publicKeyFromSeed(seed);
        const did = publicKeyToDidKey(pub);
        expect(did.startsWith('did:key:z6Mk')).toBe(true);
        expect(toHex(okValue(parsePublicKey(did)))).toBe(toHex(pub));
        expect(toHex(okValue(parsePublicKey(publicKeyHex(pub))))).toBe(toHex(pub));
        expect(toHex(okValue(parsePublicKey(` ${publicKeyHex(pub).toUpperCase()}\n`)))).toBe(toHex(pub));
      }),
      { numRuns: 200 },
    );
  });

  // did:key method: the multicodec prefix names the key type
  it.each(dids.otherKeyTypes)('refuses a $keyType did:key with key/bad-did', ({ did }) => {
    expect(errorCode(parsePublicKey(did))).toBe('key/bad-did');
  });
});

describe('parsePublicKey errors', () => {
  const good = dids.seeded[0]!;
  // did:key method (multibase 'z', multicodec 0xed01); RFC 8032 §5.1.5 (32-byte keys)
  it.each([
    ['did:key:' + good.did.slice('did:key:z'.length), 'key/bad-did'], // no multibase prefix
    ['did:key:f' + toHex(hex(good.seed)), 'key/bad-did'], // base16 multibase, not base58btc
    ['did:key:z', 'key/bad-did'],
    ['did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW0', 'key/bad-did'], // '0' is not base58
    ['did:key:z' + 'z'.repeat(129), 'key/bad-did'], // longer than any key
    ['abc', 'key/bad-hex'],
    ['0'.repeat(63), 'key/bad-hex'],
    ['g'.repeat(64), 'key/bad-hex'],
    ['0x' + '00'.repeat(32), 'key/bad-hex'],
    ['00'.repeat(31), 'key/bad-length'],
    ['00'.repeat(33), 'key/bad-length'],
    ['', 'key/bad-length'],
  ])('%s → %s', (text, code) => {
    expect(errorCode(parsePublicKey(text))).toBe(code);
  });

  // did:key must still pass the enrolment checks (RFC 8032 §5.1.3; DESIGN.md "Identities and trust").
  it('a did:key of a small-order or non-canonical key, or of the wrong length, is refused like the raw key', () => {
    const didOf = (bytes: Uint8Array) => 'did:key:z' + base58btcEncode(new Uint8Array([0xed, 0x01, ...bytes]));
    expect(errorCode(parsePublicKey(didOf(hex('01'.padEnd(64, '0')))))).toBe('key/small-order');
    expect(errorCode(parsePublicKey(didOf(hex('ed' + 'ff'.repeat(30) + '7f'))))).toBe('key/non-canonical');
    expect(errorCode(parsePublicKey(didOf(publicKeyFromSeed(new Uint8Array(32)).subarray(0, 31))))).toBe(
      'key/bad-length',
    );
    expect(errorCode(parsePublicKey(didOf(new Uint8Array([...publicKeyFromSeed(new Uint8Array(32)), 0]))))).toBe(
      'key/bad-length',
    );
    expect(checkEd25519PublicKey(publicKeyFromSeed(new Uint8Array(32))).ok).toBe(true);
  });
});

describe('ids (ids.ts: 1..64 of letters, digits, ".", "_", "-", not starting with punctuation)', () => {
  // ids.ts ID_PATTERN; DESIGN.md kid = device id bytes
  it.each(['a', 'Z', '0', 'dev-1', 'pump_7.left', 'x'.repeat(64), 'A-b_C.d-9'])('valid: %s', (id) => {
    expect(isValidId(id)).toBe(true);
    expect(kidToDeviceId(deviceIdToKid(id))).toBe(id);
  });

  // ids.ts ID_PATTERN
  it.each(['', '-a', '.a', '_a', 'x'.repeat(65), 'a b', 'a/b', 'a+b', 'a#', 'dév', 'a\n', 'a\u0000'])(
    'invalid: %j',
    (id) => {
      expect(isValidId(id)).toBe(false);
      expect(usageCode(() => deviceIdToKid(id))).toBe('id/invalid');
    },
  );

  // RFC 9052 §3.1 (kid is opaque bytes: may not be an id)
  it('kidToDeviceId: undefined for invalid UTF-8 or text that is not an id', () => {
    expect(kidToDeviceId(new Uint8Array([0xc3, 0x28]))).toBeUndefined();
    expect(kidToDeviceId(new Uint8Array([0xff]))).toBeUndefined();
    expect(kidToDeviceId(new TextEncoder().encode('has space'))).toBeUndefined();
    expect(kidToDeviceId(new Uint8Array(0))).toBeUndefined();
    expect(kidToDeviceId(new TextEncoder().encode('x'.repeat(65)))).toBeUndefined();
  });

  // ids.ts: kid = UTF-8 of the id
  it('the kid is the UTF-8 of the id, and any kid that names an id maps back to it', () => {
    expect(toHex(deviceIdToKid('dev-1'))).toBe('6465762d31');
    const idArb = fc.stringMatching(ID_PATTERN);
    fc.assert(
      fc.property(idArb, (id) => {
        expect(kidToDeviceId(deviceIdToKid(id))).toBe(id);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), (kid) => {
        const id = kidToDeviceId(kid);
        if (id !== undefined) expect(toHex(deviceIdToKid(id))).toBe(toHex(kid));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('MQTT topics (DESIGN.md "Wire formats")', () => {
  // DESIGN.md "Wire formats" MQTT topics
  it('builds the documented topics', () => {
    expect(TOPIC_ROOT).toBe('outpost/v1');
    expect(topics.up('dev-1')).toBe('outpost/v1/dev/dev-1/up');
    expect(topics.cmd('dev-1')).toBe('outpost/v1/dev/dev-1/cmd');
    expect(topics.gatewayStatus('gw.a')).toBe('outpost/v1/gw/gw.a/status');
    expect(topics.upWildcard).toBe('outpost/v1/dev/+/up');
  });

  // DESIGN.md "Wire formats" MQTT topics
  it('parses what it builds', () => {
    expect(parseTopic(topics.up('d_1'))).toEqual({ kind: 'up', device: 'd_1' });
    expect(parseTopic(topics.cmd('d_1'))).toEqual({ kind: 'cmd', device: 'd_1' });
    expect(parseTopic(topics.gatewayStatus('g-9'))).toEqual({ kind: 'gateway-status', gateway: 'g-9' });
  });

  // MQTT 3.1.1 §4.7: "+", "#" and "/" have topic meaning, so an id never contains them.
  it('refuses ids that would change the topic structure (ProtocolUsageError id/invalid)', () => {
    for (const bad of ['+', '#', 'a/b', '', '..', 'x'.repeat(65)]) {
      expect(usageCode(() => topics.up(bad))).toBe('id/invalid');
      expect(usageCode(() => topics.cmd(bad))).toBe('id/invalid');
      expect(usageCode(() => topics.gatewayStatus(bad))).toBe('id/invalid');
    }
  });

  // DESIGN.md "Wire formats"; MQTT 3.1.1 §4.7 (wildcards are not ids)
  it.each([
    'outpost/v1/dev/+/up',
    'outpost/v1/dev/#',
    'outpost/v1/dev/d1/status',
    'outpost/v1/gw/g1/up',
    'outpost/v1/gw/g1/cmd',
    'outpost/v2/dev/d1/up',
    'other/v1/dev/d1/up',
    'outpost/v1/dev/d1/up/extra',
    'outpost/v1/dev/d1',
    '/outpost/v1/dev/d1/up',
    'outpost/v1/dev//up',
    'outpost/v1/dev/-d1/up',
    'outpost/v1/DEV/d1/up',
    '',
  ])('parseTopic(%j) is undefined', (t) => {
    expect(parseTopic(t)).toBeUndefined();
  });

  // DESIGN.md "Wire formats" MQTT topics
  it('any string either fails to parse or parses to ids that rebuild the same topic', () => {
    const topicArb = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc
        .tuple(
          fc.constantFrom('dev', 'gw', 'x'),
          fc.string({ maxLength: 10 }),
          fc.constantFrom('up', 'cmd', 'status', 'x'),
        )
        .map(([s, n, l]) => `outpost/v1/${s}/${n}/${l}`),
    );
    fc.assert(
      fc.property(topicArb, (t) => {
        const p = parseTopic(t);
        if (p === undefined) return;
        const rebuilt =
          p.kind === 'gateway-status'
            ? topics.gatewayStatus(p.gateway)
            : p.kind === 'up'
              ? topics.up(p.device)
              : topics.cmd(p.device);
        expect(rebuilt).toBe(t);
      }),
      { numRuns: 3000 },
    );
  });
});
