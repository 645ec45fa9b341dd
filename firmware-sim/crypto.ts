/**
 * Device-side Ed25519. Signing uses @noble/ed25519 (pure JS) on purpose: the
 * gateway verifies with node:crypto (OpenSSL), so every simulated frame is a
 * cross-implementation check. A node:crypto signer is offered for load tests
 * where the simulator, not the gateway, would otherwise be the bottleneck.
 */
import * as ed from '@noble/ed25519';
import { createHash, createPrivateKey, randomBytes, sign as nodeSign } from 'node:crypto';
import { fromHex, publicKeyToDidKey, type SignFn, toHex } from '../protocols/index.js';

// noble's synchronous API needs a sync SHA-512; node:crypto provides one.
if (ed.hashes.sha512 === undefined) {
  ed.hashes.sha512 = (message) => new Uint8Array(createHash('sha512').update(message).digest());
}

const SEED_BYTES = 32;

/** Which library signs frames: `noble` (default, pure JS) or `node` (OpenSSL, faster). */
export type SignerImpl = 'noble' | 'node';

/** A device key pair: the RFC 8032 32-byte seed and its public key. */
export interface DeviceKeys {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  /** The public key as a did:key (the form the manifest and registry use). */
  readonly didKey: string;
}

/** A fresh random 32-byte secret seed from the OS CSPRNG. */
export function randomSeed(): Uint8Array {
  return new Uint8Array(randomBytes(SEED_BYTES));
}

export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  checkSeed(seed);
  return ed.getPublicKey(seed);
}

export function deviceKeysFromSeed(seed: Uint8Array): DeviceKeys {
  const publicKey = publicKeyFromSeed(seed);
  return { seed, publicKey, didKey: publicKeyToDidKey(publicKey) };
}

export const generateDeviceKeys = (): DeviceKeys => deviceKeysFromSeed(randomSeed());

/** Parses a 64-hex-digit seed; undefined when malformed. */
export function seedFromHex(hex: string): Uint8Array | undefined {
  const b = fromHex(hex);
  return b && b.length === SEED_BYTES ? b : undefined;
}

export const seedToHex = (seed: Uint8Array): string => toHex(seed);

// PKCS#8 DER prefix for an Ed25519 private key seed (RFC 8410 §7).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A COSE SignFn for the seed. */
export function createSigner(seed: Uint8Array, impl: SignerImpl = 'noble'): SignFn {
  checkSeed(seed);
  if (impl === 'node') {
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    // The Buffer as it comes (a Uint8Array): the frame encoders copy the 64 bytes into place anyway.
    return (message) => nodeSign(null, message, key);
  }
  const copy = Uint8Array.from(seed);
  return (message) => ed.sign(message, copy);
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES) {
    throw new TypeError(`an Ed25519 seed must be ${SEED_BYTES} bytes`);
  }
}

/** Checks an Ed25519 signature (@noble/ed25519, RFC 8032 cofactorless); false for malformed input. */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return ed.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}
