/**
 * Confidential blocks: the wire shapes of a sealed body and of a
 * data-key wrap, and the additional authenticated data (AAD) each binds to.
 * Pure codecs; the cryptography itself is in gateway/policy/seal.ts.
 *
 * A sealed block keeps its header in clear (author, stream, seq, lamport, prev,
 * parents, policy), so a relay that cannot read it can still hold, chain-verify
 * and sync it. Its kind is `sealed` and its body
 *
 *   {1: inner kind, 2: epoch, 3: alg, 4: nonce, 5: ciphertext ‖ tag}
 *
 * where the plaintext is the canonical CBOR of the inner block's body (for a
 * frames block: the verbatim COSE frames, so a reader can check every device
 * signature after decryption). The AAD is the canonical CBOR of
 * `["outpost/sealed/v1", author, stream, seq, lamport, prev, parents, policy,
 * inner kind, epoch, alg]`: the ciphertext cannot be moved under another header.
 *
 * A `keys` block carries one epoch's data key wrapped for each reader:
 *
 *   {1: epoch, 2: ephemeral X25519 public key, 3: [[recipient Ed25519 key, nonce, wrapped key ‖ tag], …]}
 *
 * sorted by recipient; the wrap's AAD is
 * `["outpost/keywrap/v1", author, policy, epoch, recipient, ephemeral]`.
 */
import type { CborValue } from './cbor.js';
import { type Block, BlockKinds, type BlockKind, type Canon, encodeCanonical } from './block.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

/** Body ciphers: AES-256-GCM (node:crypto, hardware AES) or XChaCha20-Poly1305 (@noble/ciphers). */
export const SealAlgs = { 'aes-256-gcm': 1, 'xchacha20-poly1305': 2 } as const;
export type SealAlg = keyof typeof SealAlgs;
const ALG_BY_CODE = new Map<number, SealAlg>(Object.entries(SealAlgs).map(([k, v]) => [v, k as SealAlg]));
export const SEAL_NONCE_BYTES: Readonly<Record<SealAlg, number>> = { 'aes-256-gcm': 12, 'xchacha20-poly1305': 24 };
export const AEAD_TAG_BYTES = 16;
export const DATA_KEY_BYTES = 32;
/** Key wraps use XChaCha20-Poly1305 (random 24-byte nonces are safe). */
export const WRAP_NONCE_BYTES = 24;
const WRAPPED_KEY_BYTES = DATA_KEY_BYTES + AEAD_TAG_BYTES;
const X25519_KEY_BYTES = 32;
/** Most recipients in one keys block. */
const MAX_RECIPIENTS = 256;
/** Epochs are counted from 0; far below 2^53 in practice. */
const MAX_EPOCH = 0xffffffff;

const SEALED_DOMAIN = 'outpost/sealed/v1';
const KEYWRAP_DOMAIN = 'outpost/keywrap/v1';

/** Block kinds that may be sealed (the others stay readable: enrolments carry only public keys). */
export type SealableKind = Exclude<BlockKind, 'sealed' | 'keys'>;

export interface SealedBody {
  readonly kind: SealableKind;
  readonly epoch: number;
  readonly alg: SealAlg;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export interface KeyWrap {
  /** The reader's raw Ed25519 public key (its X25519 key is derived from it). */
  readonly recipient: Uint8Array;
  readonly nonce: Uint8Array;
  readonly wrapped: Uint8Array;
}

export interface KeysBody {
  readonly epoch: number;
  readonly ephemeral: Uint8Array;
  readonly wraps: readonly KeyWrap[];
}

const KIND_BY_CODE = new Map<number, BlockKind>(Object.entries(BlockKinds).map(([k, v]) => [v, k as BlockKind]));
const isEpoch = (v: CborValue | undefined): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_EPOCH;
const isBytesOf = (v: CborValue | undefined, n: number): v is Uint8Array => v instanceof Uint8Array && v.length === n;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The body value of a sealed block. Throws ProtocolUsageError on misuse. */
export function sealedBodyValue(s: SealedBody): Canon {
  if (!isEpoch(s.epoch)) throw new ProtocolUsageError('sealed/bad-epoch', `epoch must be 0..${MAX_EPOCH}`);
  if (s.nonce.length !== SEAL_NONCE_BYTES[s.alg])
    throw new ProtocolUsageError('sealed/bad-nonce', `${s.alg} takes a ${SEAL_NONCE_BYTES[s.alg]}-byte nonce`);
  if (s.ciphertext.length < AEAD_TAG_BYTES)
    throw new ProtocolUsageError('sealed/bad-ciphertext', 'ciphertext shorter than its tag');
  if ((s.kind as string) === 'sealed' || (s.kind as string) === 'keys')
    throw new ProtocolUsageError('sealed/bad-kind', `a ${s.kind} block cannot be sealed`);
  return new Map<number, Canon>([
    [1, BlockKinds[s.kind]],
    [2, s.epoch],
    [3, SealAlgs[s.alg]],
    [4, s.nonce],
    [5, s.ciphertext],
  ]);
}

/** Parses a sealed block's body. Never throws. */
export function decodeSealedBody(v: CborValue): Result<SealedBody> {
  if (!(v instanceof Map)) return fail('sealed/bad-body', 'a sealed body is a map');
  for (const k of v.keys())
    if (typeof k !== 'number' || k < 1 || k > 5) return fail('sealed/bad-body', `unknown sealed body key ${String(k)}`);
  const kindCode = v.get(1);
  const kind = typeof kindCode === 'number' ? KIND_BY_CODE.get(kindCode) : undefined;
  if (kind === undefined || kind === 'sealed' || kind === 'keys')
    return fail('sealed/bad-kind', `inner kind ${String(kindCode)} cannot be sealed`);
  const epoch = v.get(2);
  if (!isEpoch(epoch)) return fail('sealed/bad-epoch', 'epoch must be an unsigned integer');
  const algCode = v.get(3);
  const alg = typeof algCode === 'number' ? ALG_BY_CODE.get(algCode) : undefined;
  if (alg === undefined) return fail('sealed/unknown-alg', `unknown cipher ${String(algCode)}`);
  const nonce = v.get(4);
  if (!isBytesOf(nonce, SEAL_NONCE_BYTES[alg]))
    return fail('sealed/bad-nonce', `${alg} takes a ${SEAL_NONCE_BYTES[alg]}-byte nonce`);
  const ciphertext = v.get(5);
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < AEAD_TAG_BYTES)
    return fail('sealed/bad-ciphertext', 'ciphertext missing or shorter than its tag');
  return ok({ kind, epoch, alg, nonce, ciphertext });
}

type Header = Pick<Block, 'author' | 'stream' | 'seq' | 'lamport' | 'prev' | 'parents' | 'policy'>;

/** The AAD of a sealed body: its block's header, inner kind, epoch and cipher. */
export function sealedAad(h: Header, kind: SealableKind, epoch: number, alg: SealAlg): Uint8Array {
  const parents = [...h.parents].sort(compareBytes);
  return encodeCanonical([
    SEALED_DOMAIN,
    h.author,
    h.stream,
    h.seq,
    h.lamport,
    h.prev,
    parents,
    h.policy,
    BlockKinds[kind],
    epoch,
    SealAlgs[alg],
  ]);
}

/** The body value of a keys block (wraps sorted by recipient). Throws ProtocolUsageError on misuse. */
export function keysBodyValue(k: KeysBody): Canon {
  if (!isEpoch(k.epoch)) throw new ProtocolUsageError('keys/bad-epoch', `epoch must be 0..${MAX_EPOCH}`);
  if (k.ephemeral.length !== X25519_KEY_BYTES)
    throw new ProtocolUsageError('keys/bad-ephemeral', 'ephemeral key must be 32 bytes');
  if (k.wraps.length === 0 || k.wraps.length > MAX_RECIPIENTS)
    throw new ProtocolUsageError('keys/bad-wraps', `a keys block holds 1..${MAX_RECIPIENTS} wraps`);
  const wraps = [...k.wraps].sort((a, b) => compareBytes(a.recipient, b.recipient));
  for (let i = 0; i < wraps.length; i++) {
    const w = wraps[i]!;
    if (w.recipient.length !== 32 || w.nonce.length !== WRAP_NONCE_BYTES || w.wrapped.length !== WRAPPED_KEY_BYTES)
      throw new ProtocolUsageError('keys/bad-wraps', 'wrap field of the wrong size');
    if (i > 0 && compareBytes(wraps[i - 1]!.recipient, w.recipient) === 0)
      throw new ProtocolUsageError('keys/bad-wraps', 'two wraps for one recipient');
  }
  return new Map<number, Canon>([
    [1, k.epoch],
    [2, k.ephemeral],
    [3, wraps.map((w) => [w.recipient, w.nonce, w.wrapped])],
  ]);
}

/** Parses a keys block's body. Never throws. */
export function decodeKeysBody(v: CborValue): Result<KeysBody> {
  if (!(v instanceof Map)) return fail('keys/bad-body', 'a keys body is a map');
  for (const k of v.keys())
    if (typeof k !== 'number' || k < 1 || k > 3) return fail('keys/bad-body', `unknown keys body key ${String(k)}`);
  const epoch = v.get(1);
  if (!isEpoch(epoch)) return fail('keys/bad-epoch', 'epoch must be an unsigned integer');
  const ephemeral = v.get(2);
  if (!isBytesOf(ephemeral, X25519_KEY_BYTES)) return fail('keys/bad-ephemeral', 'ephemeral key must be 32 bytes');
  const raw = v.get(3);
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_RECIPIENTS)
    return fail('keys/bad-wraps', `1..${MAX_RECIPIENTS} wraps`);
  const wraps: KeyWrap[] = [];
  for (const w of raw) {
    if (!Array.isArray(w) || w.length !== 3) return fail('keys/bad-wraps', 'a wrap is [recipient, nonce, wrapped]');
    const [recipient, nonce, wrapped] = w;
    if (!isBytesOf(recipient, 32) || !isBytesOf(nonce, WRAP_NONCE_BYTES) || !isBytesOf(wrapped, WRAPPED_KEY_BYTES))
      return fail('keys/bad-wraps', 'wrap field of the wrong size');
    const last = wraps.at(-1);
    if (last && compareBytes(last.recipient, recipient) >= 0)
      return fail('keys/bad-wraps', 'wraps must be sorted by recipient, one each');
    wraps.push({ recipient, nonce, wrapped });
  }
  return ok({ epoch, ephemeral, wraps });
}

/** The AAD of one wrap: author gateway, policy, epoch, recipient and the ephemeral key. */
export function keyWrapAad(
  author: Uint8Array,
  policy: string,
  epoch: number,
  recipient: Uint8Array,
  ephemeral: Uint8Array,
): Uint8Array {
  return encodeCanonical([KEYWRAP_DOMAIN, author, policy, epoch, recipient, ephemeral]);
}
