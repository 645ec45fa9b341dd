/**
 * Ed25519 public keys: hex and did:key forms (did:key method, multicodec
 * ed25519-pub 0xed01, base58btc "z" multibase), and the enrolment checks of
 * RFC 8032 §5.1.3: the encoding must be canonical (y < p, no "negative zero" x)
 * and the point must not be of small order (OpenSSL accepts signatures under
 * some of those keys).
 */
import { Point } from '@noble/ed25519';
import { fromHex, toHex } from './bytes.js';
import { fail, ok, type Result } from './result.js';

const PUBLIC_KEY_BYTES = 32;
const ED25519_MULTICODEC = [0xed, 0x01];
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

export function base58btcEncode(bytes: Uint8Array): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = '';
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}

export function base58btcDecode(s: string): Uint8Array | undefined {
  if (s.length > 128) return undefined;
  let n = 0n;
  for (const ch of s) {
    const d = B58.indexOf(ch);
    if (d < 0) return undefined;
    n = n * 58n + BigInt(d);
  }
  const body: number[] = [];
  while (n > 0n) {
    body.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  let zeros = 0;
  while (zeros < s.length && s[zeros] === '1') zeros++;
  return new Uint8Array([...new Array<number>(zeros).fill(0), ...body]);
}

export function publicKeyToDidKey(pub: Uint8Array): string {
  return 'did:key:z' + base58btcEncode(new Uint8Array([...ED25519_MULTICODEC, ...pub]));
}

/** Checks that 32 bytes are a canonical Ed25519 point that is not of small order. */
export function checkEd25519PublicKey(pub: Uint8Array): Result<Uint8Array> {
  if (pub.length !== PUBLIC_KEY_BYTES)
    return fail('key/bad-length', `Ed25519 public key must be ${PUBLIC_KEY_BYTES} bytes, got ${pub.length}`);
  let point: Point;
  try {
    point = Point.fromBytes(pub, false); // zip215=false: strict RFC 8032 decoding
  } catch {
    return fail('key/non-canonical', 'public key is not a canonical encoding of a curve point');
  }
  if (point.isSmallOrder()) return fail('key/small-order', 'public key is a point of small order');
  return ok(pub);
}

/** Parses a public key given as 64 hex digits or as a did:key, and checks it. */
export function parsePublicKey(text: string): Result<Uint8Array> {
  const s = text.trim();
  let raw: Uint8Array | undefined;
  if (s.startsWith('did:key:')) {
    if (!s.startsWith('did:key:z')) return fail('key/bad-did', 'did:key must use base58btc multibase ("z")');
    const decoded = base58btcDecode(s.slice('did:key:z'.length));
    if (!decoded || decoded[0] !== ED25519_MULTICODEC[0] || decoded[1] !== ED25519_MULTICODEC[1]) {
      return fail('key/bad-did', 'did:key is not an Ed25519 (0xed01) key');
    }
    raw = decoded.subarray(2);
  } else {
    raw = fromHex(s);
    if (!raw) return fail('key/bad-hex', 'public key must be 64 hex digits or a did:key');
  }
  return checkEd25519PublicKey(raw);
}

export const publicKeyHex = (pub: Uint8Array): string => toHex(pub);
