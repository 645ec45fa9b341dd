/**
 * Ed25519 through node:crypto (OpenSSL). Public keys become KeyObjects once
 * and are cached, since building one costs about as much as a verify.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

// SPKI DER prefix for an Ed25519 public key (RFC 8410 §4): the raw 32 bytes follow.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
// PKCS#8 DER prefix for an Ed25519 private key seed (RFC 8410 §7).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const MAX_CACHED = 100_000;
const cache = new Map<string, KeyObject>();

function publicKeyObject(pub: Uint8Array): KeyObject {
  const id = Buffer.from(pub).toString('hex');
  let key = cache.get(id);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' });
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(id, key);
  }
  return key;
}

export function privateKeyObject(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** RFC 8032 §5.1.7 verification; false for any malformed key or signature, never throws. */
export function verifyEd25519(pub: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (pub.length !== 32 || signature.length !== 64) return false;
  try {
    return verify(null, message, publicKeyObject(pub), signature);
  } catch {
    return false;
  }
}

export function signEd25519(seed: Uint8Array | KeyObject, message: Uint8Array): Uint8Array {
  const key = seed instanceof Uint8Array ? privateKeyObject(seed) : seed;
  return new Uint8Array(sign(null, message, key));
}

export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyObject(seed)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
}
