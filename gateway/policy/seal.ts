/**
 * The cryptography of confidential policies: block bodies sealed
 * under a per-(author, policy, epoch) data key, and data keys wrapped for each
 * reader's X25519 key, derived from its Ed25519 identity (the birational map
 * of RFC 7748 §4.1, `ed25519.utils.toMontgomery`), so a principal has one key
 * pair, its did:key.
 *
 * Wrap: a fresh ephemeral X25519 key per keys block; for each recipient
 * KEK = HKDF-SHA-256(X25519(e, R), salt = E ‖ R, info = "outpost/keywrap/v1"),
 * then XChaCha20-Poly1305(KEK, random nonce, data key, AAD = author, policy,
 * epoch, recipient, E). Bodies: AES-256-GCM (node:crypto) by default, or
 * XChaCha20-Poly1305 (@noble/ciphers); random nonces, AAD = the block header.
 * Wire shapes: protocols/sealed.ts.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  AEAD_TAG_BYTES,
  type Block,
  BLOCK_VERSION,
  BlockKinds,
  blockBodyValue,
  type CborValue,
  DATA_KEY_BYTES,
  decodeBlock,
  decodeCbor,
  decodeKeysBody,
  decodeSealedBody,
  encodeCanonical,
  fail,
  keysBodyValue,
  type KeysBody,
  keyWrapAad,
  MAX_BLOCK_BYTES,
  MAX_BLOCK_FRAMES,
  ok,
  type Result,
  SEAL_NONCE_BYTES,
  type SealAlg,
  type SealableKind,
  sealedAad,
  sealedBodyValue,
  WRAP_NONCE_BYTES,
} from '../../protocols/index.js';

/** Misuse of the policy crypto API (a bad key length, sealing a block twice). */
export class PolicyCryptoError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PolicyCryptoError';
  }
}

const WRAP_INFO = new TextEncoder().encode('outpost/keywrap/v1');

const montgomery = new Map<string, Uint8Array>();

/** The X25519 public key of an Ed25519 public key (cached). Throws PolicyCryptoError for a key that is not a point. */
export function x25519FromEd25519Public(pub: Uint8Array): Uint8Array {
  const id = Buffer.from(pub).toString('hex');
  let x = montgomery.get(id);
  if (x) return x;
  try {
    x = ed25519.utils.toMontgomery(pub);
  } catch (e) {
    throw new PolicyCryptoError('policy-crypto/bad-key', `not an Ed25519 public key: ${(e as Error).message}`);
  }
  if (montgomery.size >= 10_000) montgomery.delete(montgomery.keys().next().value!);
  montgomery.set(id, x);
  return x;
}

// X25519 itself through node:crypto (OpenSSL, ~30x the pure-JS speed): raw keys in their DER wrappers (RFC 8410).
const X_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const X_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
// Parsing a key costs far more than the ECDH itself (milliseconds for PKCS#8), so key objects are kept.
const privateKeys = new WeakMap<Uint8Array, KeyObject>();
const publicKeys = new Map<string, KeyObject>();

function xPrivate(secret: Uint8Array): KeyObject {
  let k = privateKeys.get(secret);
  if (!k)
    privateKeys.set(
      secret,
      (k = createPrivateKey({ key: Buffer.concat([X_PKCS8, secret]), format: 'der', type: 'pkcs8' })),
    );
  return k;
}

function xPublic(pub: Uint8Array): KeyObject {
  const id = Buffer.from(pub).toString('hex');
  let k = publicKeys.get(id);
  if (!k) {
    k = createPublicKey({ key: Buffer.concat([X_SPKI, pub]), format: 'der', type: 'spki' });
    if (publicKeys.size >= 10_000) publicKeys.delete(publicKeys.keys().next().value!);
    publicKeys.set(id, k);
  }
  return k;
}

/** X25519(secret, public); throws for a low-order public key (an all-zero shared secret). */
function x25519Shared(secret: KeyObject, pub: Uint8Array): Uint8Array {
  const out = diffieHellman({ privateKey: secret, publicKey: xPublic(pub) });
  if (out.every((b) => b === 0))
    throw new PolicyCryptoError('policy-crypto/low-order', 'X25519 with a low-order point');
  return new Uint8Array(out);
}

const rawPublic = (k: KeyObject): Uint8Array =>
  new Uint8Array(k.export({ format: 'der', type: 'spki' }).subarray(X_SPKI.length));
const ownPublic = new WeakMap<Uint8Array, Uint8Array>();
function x25519PublicOf(secret: Uint8Array): Uint8Array {
  let p = ownPublic.get(secret);
  if (!p) ownPublic.set(secret, (p = rawPublic(createPublicKey(xPrivate(secret)))));
  return p;
}

/** The X25519 secret of an Ed25519 seed (RFC 8032 §5.1.5 clamped scalar). */
export function x25519FromEd25519Seed(seed: Uint8Array): Uint8Array {
  if (seed.length !== 32) throw new PolicyCryptoError('policy-crypto/bad-key', 'an Ed25519 seed is 32 bytes');
  return ed25519.utils.toMontgomerySecret(seed);
}

function aesGcm(
  encrypt: boolean,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  data: Uint8Array,
): Uint8Array | undefined {
  if (encrypt) {
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(aad);
    const out = Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  if (data.length < AEAD_TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(aad);
    d.setAuthTag(data.subarray(data.length - AEAD_TAG_BYTES));
    const out = Buffer.concat([d.update(data.subarray(0, data.length - AEAD_TAG_BYTES)), d.final()]);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch {
    return undefined; // tag mismatch: wrong key, or bytes changed
  }
}

function xchacha(
  encrypt: boolean,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  data: Uint8Array,
): Uint8Array | undefined {
  const c = xchacha20poly1305(key, nonce, aad);
  if (encrypt) return c.encrypt(data);
  try {
    return c.decrypt(data);
  } catch {
    return undefined;
  }
}

const AEAD: Record<SealAlg, typeof aesGcm> = { 'aes-256-gcm': aesGcm, 'xchacha20-poly1305': xchacha };

export interface DataKey {
  readonly epoch: number;
  readonly key: Uint8Array;
}

export function newDataKey(epoch: number): DataKey {
  return { epoch, key: new Uint8Array(randomBytes(DATA_KEY_BYTES)) };
}

/** The block with its body encrypted (kind `sealed`); the header is unchanged. */
export function sealBlock(block: Block, dk: DataKey, alg: SealAlg = 'aes-256-gcm'): Block {
  if (dk.key.length !== DATA_KEY_BYTES)
    throw new PolicyCryptoError('policy-crypto/bad-key', `a data key is ${DATA_KEY_BYTES} bytes`);
  if (block.kind === 'sealed' || block.kind === 'keys')
    throw new PolicyCryptoError('policy-crypto/not-sealable', `a ${block.kind} block cannot be sealed`);
  const kind = block.kind as SealableKind;
  const nonce = new Uint8Array(randomBytes(SEAL_NONCE_BYTES[alg]));
  const plaintext = encodeCanonical(blockBodyValue(block));
  const ciphertext = AEAD[alg](true, dk.key, nonce, sealedAad(block, kind, dk.epoch, alg), plaintext)!;
  const { body: _body, kind: _kind, ...header } = block;
  return {
    ...header,
    kind: 'sealed',
    body: sealedBodyValue({ kind, epoch: dk.epoch, alg, nonce, ciphertext }) as CborValue,
  };
}

/** Which epoch's key a sealed block needs; a wire error for a malformed sealed body. */
export function sealedEpoch(block: Block): Result<number> {
  if (block.kind !== 'sealed') return fail('sealed/not-sealed', `a ${block.kind} block is not sealed`);
  const s = decodeSealedBody(block.body);
  return s.ok ? ok(s.value.epoch) : s;
}

const plaintextLimits = {
  maxBytes: MAX_BLOCK_BYTES,
  maxDepth: 5,
  maxItems: 4 * MAX_BLOCK_FRAMES + 256,
  maxContainerLength: MAX_BLOCK_FRAMES,
};

/**
 * Decrypts a sealed block into the block it was (same header, inner kind and body),
 * fully validated like any received block. Never throws: a wrong key or changed bytes
 * is `sealed/auth-failed`, a bad plaintext a `block/…` error.
 */
export function openBlock(block: Block, key: Uint8Array): Result<Block> {
  if (block.kind !== 'sealed') return fail('sealed/not-sealed', `a ${block.kind} block is not sealed`);
  const s = decodeSealedBody(block.body);
  if (!s.ok) return s;
  const { kind, epoch, alg, nonce, ciphertext } = s.value;
  const plaintext = AEAD[alg](false, key, nonce, sealedAad(block, kind, epoch, alg), ciphertext);
  if (plaintext === undefined)
    return fail('sealed/auth-failed', `cannot decrypt: wrong key for epoch ${epoch} or the ciphertext was changed`);
  const body = decodeCbor(plaintext, plaintextLimits);
  if (!body.ok) return body;
  // Rebuild the block as it would be unsealed and decode it, so the inner body gets every check a block gets.
  const inner = new Map<number, CborValue>([
    [0, BLOCK_VERSION],
    [1, block.author],
    [2, block.stream],
    [3, block.seq],
    [4, block.lamport],
    [5, block.prev],
    [6, [...block.parents]],
    [7, block.policy],
    [8, BlockKinds[kind]],
    [9, body.value],
  ]);
  let bytes: Uint8Array;
  try {
    bytes = encodeCanonical(inner);
  } catch (e) {
    return fail('sealed/bad-plaintext', `decrypted body is not canonical CBOR: ${(e as Error).message}`);
  }
  return decodeBlock(bytes);
}

function kek(shared: Uint8Array, ephemeral: Uint8Array, recipientX: Uint8Array): Uint8Array {
  const salt = new Uint8Array(64);
  salt.set(ephemeral, 0);
  salt.set(recipientX, 32);
  return new Uint8Array(hkdfSync('sha256', shared, salt, WRAP_INFO, 32));
}

/** A keys block body: `dk` wrapped for each recipient (raw Ed25519 public keys). */
export function wrapDataKey(
  author: Uint8Array,
  policy: string,
  dk: DataKey,
  recipients: readonly Uint8Array[],
): KeysBody {
  const e = generateKeyPairSync('x25519');
  const eSecret = e.privateKey;
  const ephemeral = rawPublic(e.publicKey);
  const wraps = recipients.map((recipient) => {
    const rx = x25519FromEd25519Public(recipient);
    const shared = x25519Shared(eSecret, rx);
    const nonce = new Uint8Array(randomBytes(WRAP_NONCE_BYTES));
    const wrapped = xchacha20poly1305(
      kek(shared, ephemeral, rx),
      nonce,
      keyWrapAad(author, policy, dk.epoch, recipient, ephemeral),
    ).encrypt(dk.key);
    return { recipient, nonce, wrapped };
  });
  const body = { epoch: dk.epoch, ephemeral, wraps };
  keysBodyValue(body); // throws on misuse (no recipients, duplicates) here, not at signing
  return body;
}

/** The canonical body value of a keys block (for `Block.body`). */
export const keysBlockBody = (k: KeysBody): CborValue => keysBodyValue(k) as CborValue;

export interface Recipient {
  /** Raw Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** x25519FromEd25519Seed of its seed. */
  readonly x25519Secret: Uint8Array;
}

/**
 * This recipient's data key from a keys block (`block.kind === 'keys'`): undefined when the
 * block holds no wrap for it; a wire error when the block or its wrap is bad.
 */
export function unwrapDataKey(block: Block, me: Recipient): Result<DataKey | undefined> {
  if (block.kind !== 'keys') return fail('keys/not-keys', `a ${block.kind} block holds no key wraps`);
  const k = decodeKeysBody(block.body);
  if (!k.ok) return k;
  const w = k.value.wraps.find((x) => Buffer.compare(x.recipient, me.publicKey) === 0);
  if (!w) return ok(undefined);
  let shared: Uint8Array;
  try {
    shared = x25519Shared(xPrivate(me.x25519Secret), k.value.ephemeral);
  } catch {
    return fail('keys/bad-ephemeral', 'the ephemeral key is a low-order point');
  }
  const rx = x25519PublicOf(me.x25519Secret);
  const aad = keyWrapAad(block.author, block.policy, k.value.epoch, w.recipient, k.value.ephemeral);
  try {
    const key = xchacha20poly1305(kek(shared, k.value.ephemeral, rx), w.nonce, aad).decrypt(w.wrapped);
    return ok({ epoch: k.value.epoch, key });
  } catch {
    return fail('keys/auth-failed', `the wrap for this recipient does not open (epoch ${k.value.epoch})`);
  }
}
