/**
 * COSE_Sign1 (RFC 9052 §4.2) with EdDSA (RFC 9053 §2.2; -19 "Ed25519" from RFC 9864).
 *
 * Decoding is bounded and returns typed errors; the Sig_structure (RFC 9052 §4.4)
 * is built over the protected header bytes exactly as received. Signature
 * checking itself lives with the caller (node:crypto in the gateway,
 * @noble/ed25519 in firmware-sim) so this module stays free of I/O and keys.
 */
import { cborHeadBytes, writeCborHead } from './cbor-head.js';
import {
  type CborKey,
  type CborLimits,
  type CborValue,
  Tagged,
  decodeCbor,
  encodeCbor,
  isBytes,
  isMap,
} from './cbor.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

/** CBOR tag of COSE_Sign1 (RFC 9052 §2). */
export const COSE_SIGN1_TAG = 18;
/** Header labels (RFC 9052 §3.1). */
export const HeaderLabel = { alg: 1, crit: 2, contentType: 3, kid: 4 } as const;
/** EdDSA (RFC 9053 §2.2). */
export const ALG_EDDSA = -8;
/** Fully specified Ed25519 (RFC 9864). */
export const ALG_ED25519 = -19;
const ACCEPTED_ALGS: ReadonlySet<number> = new Set([ALG_EDDSA, ALG_ED25519]);
/**
 * Whether `alg` is one this profile verifies (EdDSA or Ed25519). decodeSign1 already refuses
 * any other unless asked for `anyAlg` (inspection), so only such a caller needs this.
 */
export const isAcceptedAlg = (alg: number): boolean => ACCEPTED_ALGS.has(alg);

export const MAX_FRAME_BYTES = 4096;
export const MAX_KID_BYTES = 64;
const SIGNATURE_BYTES = 64;

export interface Sign1 {
  /** The protected header as received: the signature covers these exact bytes. */
  readonly protectedBytes: Uint8Array;
  readonly protectedHeader: ReadonlyMap<CborKey, CborValue>;
  readonly unprotectedHeader: ReadonlyMap<CborKey, CborValue>;
  readonly alg: number;
  readonly kid: Uint8Array;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
  /** Whether the message carried tag 18. */
  readonly tagged: boolean;
}

export interface DecodeSign1Options {
  /** Require tag 18 (default true; the `frame decode` CLI relaxes it for foreign messages). */
  readonly requireTag?: boolean;
  /** Require a kid (default true). */
  readonly requireKid?: boolean;
  /** Accept algorithms outside EdDSA/Ed25519 (for inspection only). */
  readonly anyAlg?: boolean;
  readonly maxBytes?: number;
}

const envelopeLimits = (maxBytes: number): Partial<CborLimits> => ({
  maxBytes,
  maxDepth: 4,
  maxItems: 64,
  maxContainerLength: 16,
  allowedTags: new Set([COSE_SIGN1_TAG]),
});
const headerLimits: Partial<CborLimits> = { maxBytes: 512, maxDepth: 3, maxItems: 64, maxContainerLength: 16 };

/**
 * The tag number when `bytes` starts with a complete tag head (RFC 8949 §3.4),
 * else undefined. The bounded reader only lets tag 18 through, so without this
 * peek another COSE message type (tag 16, 17, 96, 97, 98) would be reported as
 * a generic CBOR error instead of `cose/bad-tag`.
 */
function leadingTag(bytes: Uint8Array): bigint | undefined {
  const ib = bytes[0];
  if (ib === undefined || ib >> 5 !== 6) return undefined;
  const info = ib & 0x1f;
  if (info < 24) return BigInt(info);
  const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
  if (size === 0 || bytes.length < 1 + size) return undefined; // malformed head: the CBOR reader reports it
  let tag = 0n;
  for (let i = 1; i <= size; i++) tag = (tag << 8n) | BigInt(bytes[i]!);
  return tag;
}

/** Decodes a COSE_Sign1 message without checking its signature. */
export function decodeSign1(bytes: Uint8Array, opts: DecodeSign1Options = {}): Result<Sign1> {
  const requireTag = opts.requireTag ?? true;
  const lead = leadingTag(bytes);
  if (lead !== undefined && lead !== BigInt(COSE_SIGN1_TAG))
    return fail('cose/bad-tag', `tag ${lead} is not COSE_Sign1 (18)`);
  const top = decodeCbor(bytes, envelopeLimits(opts.maxBytes ?? MAX_FRAME_BYTES));
  if (!top.ok) return top;
  let body = top.value;
  const tagged = body instanceof Tagged;
  if (body instanceof Tagged) {
    if (body.tag !== COSE_SIGN1_TAG) return fail('cose/bad-tag', `tag ${body.tag} is not COSE_Sign1 (18)`);
    body = body.value;
  } else if (requireTag) {
    return fail('cose/bad-tag', 'message is not tagged as COSE_Sign1 (18)');
  }
  if (!Array.isArray(body) || body.length !== 4)
    return fail('cose/bad-structure', 'COSE_Sign1 must be an array of 4 items');
  const [prot, unprot, payload, signature] = body as [CborValue, CborValue, CborValue, CborValue];
  if (!isBytes(prot)) return fail('cose/bad-protected', 'protected header must be a byte string');
  if (!isMap(unprot)) return fail('cose/bad-unprotected', 'unprotected header must be a map');
  if (payload === null) return fail('cose/detached-payload', 'detached payloads are not supported');
  if (!isBytes(payload)) return fail('cose/bad-payload', 'payload must be a byte string');
  if (!isBytes(signature)) return fail('cose/bad-signature-field', 'signature must be a byte string');

  let protectedHeader: Map<CborKey, CborValue> = new Map();
  // RFC 9052 §3: a zero-length bstr encodes an empty protected header.
  if (prot.length > 0) {
    const ph = decodeCbor(prot, headerLimits);
    if (!ph.ok) return fail('cose/bad-protected', `protected header: ${ph.error.message}`);
    if (!isMap(ph.value)) return fail('cose/bad-protected', 'protected header must encode a map');
    protectedHeader = ph.value;
  }
  for (const k of protectedHeader.keys()) {
    if (unprot.has(k)) return fail('cose/duplicate-label', `header label ${String(k)} is in both buckets`);
  }
  // RFC 9052 §3.1: crit MUST be placed in the protected bucket.
  if (unprot.has(HeaderLabel.crit)) return fail('cose/bad-unprotected', 'crit must be in the protected header');
  const crit = protectedHeader.get(HeaderLabel.crit);
  if (crit !== undefined) {
    if (!Array.isArray(crit) || crit.length === 0) return fail('cose/bad-protected', 'crit must be a non-empty array');
    const understood = new Set<CborValue>([HeaderLabel.alg, HeaderLabel.contentType, HeaderLabel.kid]);
    const unknown = crit.find((l) => !understood.has(l));
    if (unknown !== undefined)
      return fail('cose/unknown-critical', `critical header ${String(unknown)} is not understood`);
  }
  if (unprot.has(HeaderLabel.alg)) return fail('cose/alg-unprotected', 'alg must be in the protected header');
  const alg = protectedHeader.get(HeaderLabel.alg);
  if (alg === undefined) return fail('cose/missing-alg', 'protected header has no alg');
  if (typeof alg !== 'number' || (!opts.anyAlg && !isAcceptedAlg(alg))) {
    return fail('cose/unsupported-alg', `alg ${String(alg)} is not EdDSA (-8) or Ed25519 (-19)`);
  }
  const kid = unprot.get(HeaderLabel.kid) ?? protectedHeader.get(HeaderLabel.kid);
  if (kid === undefined) {
    if (opts.requireKid ?? true) return fail('cose/missing-kid', 'no kid header');
  } else if (!isBytes(kid) || kid.length === 0 || kid.length > MAX_KID_BYTES) {
    return fail('cose/bad-kid', `kid must be a byte string of 1..${MAX_KID_BYTES} bytes`);
  }
  if (!opts.anyAlg && signature.length !== SIGNATURE_BYTES) {
    return fail(
      'cose/bad-signature-length',
      `EdDSA signature must be ${SIGNATURE_BYTES} bytes, got ${signature.length}`,
    );
  }
  return ok({
    protectedBytes: prot,
    protectedHeader,
    unprotectedHeader: unprot,
    alg,
    kid: (kid as Uint8Array | undefined) ?? new Uint8Array(0),
    payload,
    signature,
    tagged,
  });
}

// CBOR head of an array of 4 followed by the text "Signature1" (RFC 9052 §4.4).
const SIG1_PREFIX = new Uint8Array([0x84, 0x6a, ...new TextEncoder().encode('Signature1')]);

/**
 * Sig_structure for COSE_Sign1 (RFC 9052 §4.4):
 * `["Signature1", body_protected, external_aad, payload]`, written directly
 * (it is on the hot path of every verify) with the shortest CBOR heads.
 */
export function sigStructure(
  protectedBytes: Uint8Array,
  payload: Uint8Array,
  externalAad = new Uint8Array(0),
): Uint8Array {
  const out = new Uint8Array(SIG1_PREFIX.length + 15 + protectedBytes.length + externalAad.length + payload.length);
  out.set(SIG1_PREFIX, 0);
  let off = SIG1_PREFIX.length;
  for (const part of [protectedBytes, externalAad, payload]) {
    off = writeCborHead(out, off, 2, part.length);
    out.set(part, off);
    off += part.length;
  }
  return out.subarray(0, off);
}

export type SignFn = (message: Uint8Array) => Uint8Array;

export interface Sign1Input {
  readonly kid: Uint8Array;
  readonly payload: Uint8Array;
  readonly alg?: number;
  /** Extra protected header parameters (alg is always set from `alg`). */
  readonly protectedExtra?: ReadonlyMap<number, unknown>;
}

/** Builds and signs a tagged COSE_Sign1 with alg in the protected and kid in the unprotected header. */
export function encodeSign1(input: Sign1Input, sign: SignFn): Uint8Array {
  if (input.kid.length === 0 || input.kid.length > MAX_KID_BYTES) {
    throw new ProtocolUsageError('cose/bad-kid', `kid must be 1..${MAX_KID_BYTES} bytes`);
  }
  const header = new Map<number, unknown>([[HeaderLabel.alg, input.alg ?? ALG_EDDSA]]);
  for (const [k, v] of input.protectedExtra ?? []) {
    if (k === HeaderLabel.alg || k === HeaderLabel.kid) {
      throw new ProtocolUsageError('cose/bad-header', 'alg and kid are set by encodeSign1, not through protectedExtra');
    }
    header.set(k, v);
  }
  const protectedBytes = header.size === 1 ? algHeader(input.alg ?? ALG_EDDSA) : encodeCbor(header);
  const signature = sign(sigStructure(protectedBytes, input.payload));
  if (signature.length !== SIGNATURE_BYTES)
    throw new ProtocolUsageError('cose/bad-signature-length', 'signer returned a non-64-byte signature');
  const out = writeSign1(protectedBytes, input.kid, input.payload, signature);
  if (out.length > MAX_FRAME_BYTES)
    throw new ProtocolUsageError('cose/too-large', `message of ${out.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  return out;
}

/** The protected header {1: alg} (encoded once per alg: every frame a device signs carries it). */
const algHeaders = new Map<number, Uint8Array>();
function algHeader(alg: number): Uint8Array {
  let h = algHeaders.get(alg);
  if (h === undefined) algHeaders.set(alg, (h = encodeCbor(new Map([[HeaderLabel.alg, alg]]))));
  return h;
}

/** Bytes of a byte-string head for `len` (RFC 8949 §3.1, shortest form). */

/**
 * 18([protected, {4: kid}, payload, signature]) written directly, byte for byte what the CBOR
 * encoder makes of it (RFC 8949 §4.2.1 shortest heads; tag 18 is one byte, 0xd2), in one buffer.
 */
function writeSign1(protectedBytes: Uint8Array, kid: Uint8Array, payload: Uint8Array, sig: Uint8Array): Uint8Array {
  const parts = [protectedBytes, kid, payload, sig];
  let size = 4; // tag, array head, map head, kid label
  for (const p of parts) size += cborHeadBytes(p.length) + p.length;
  const out = new Uint8Array(size);
  out[0] = 0xd0 | COSE_SIGN1_TAG; // tag 18 (< 24: in the initial byte)
  out[1] = 0x84; // array(4)
  let off = 2;
  for (let i = 0; i < parts.length; i++) {
    if (i === 1) {
      out[off++] = 0xa1; // map(1)
      out[off++] = HeaderLabel.kid;
    }
    const p = parts[i]!;
    off = writeCborHead(out, off, 2, p.length);
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Bytes `encodeSign1Over` needs free before the payload: the Sig_structure's head. */
export const SIGN1_PAYLOAD_ROOM = 24;

/** Frames are carved from shared 64 KiB slabs: a fresh ArrayBuffer per frame costs more than its bytes (GC). */
const SLAB_BYTES = 64 * 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;
function frameBytes(n: number): Uint8Array {
  if (n > SLAB_BYTES) return new Uint8Array(n);
  if (slabUsed + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed += n;
  return out;
}

/**
 * What `encodeSign1({ kid, payload: buf.subarray(start, end) }, sign)` makes (alg EdDSA, no extra
 * header), for a payload already written in a scratch buffer with `SIGN1_PAYLOAD_ROOM` bytes free
 * before `start`: the Sig_structure is written around it in place (no copy of the payload to
 * sign) and the message is one copy out. The bytes before `start` are overwritten.
 */
export function encodeSign1Over(
  kid: Uint8Array,
  buf: Uint8Array,
  start: number,
  end: number,
  sign: SignFn,
): Uint8Array {
  if (kid.length === 0 || kid.length > MAX_KID_BYTES) {
    throw new ProtocolUsageError('cose/bad-kid', `kid must be 1..${MAX_KID_BYTES} bytes`);
  }
  if (start < SIGN1_PAYLOAD_ROOM) throw new RangeError(`the payload needs ${SIGN1_PAYLOAD_ROOM} bytes before it`);
  const prot = algHeader(ALG_EDDSA);
  const len = end - start;
  const head = cborHeadBytes(len);
  // ["Signature1", protected, h'', payload] (RFC 9052 §4.4), ending where the payload ends.
  let off = start - head - 1 - (1 + prot.length) - SIG1_PREFIX.length;
  const from = off;
  buf.set(SIG1_PREFIX, off);
  off = writeCborHead(buf, off + SIG1_PREFIX.length, 2, prot.length);
  buf.set(prot, off);
  buf[off + prot.length] = 0x40; // external_aad: empty
  writeCborHead(buf, off + prot.length + 1, 2, len);
  const signature = sign(buf.subarray(from, end));
  if (signature.length !== SIGNATURE_BYTES)
    throw new ProtocolUsageError('cose/bad-signature-length', 'signer returned a non-64-byte signature');
  const size = 4 + 1 + prot.length + cborHeadBytes(kid.length) + kid.length + head + len + 2 + SIGNATURE_BYTES;
  if (size > MAX_FRAME_BYTES)
    throw new ProtocolUsageError('cose/too-large', `message of ${size} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = frameBytes(size);
  out[0] = 0xd0 | COSE_SIGN1_TAG;
  out[1] = 0x84;
  off = writeCborHead(out, 2, 2, prot.length);
  out.set(prot, off);
  off += prot.length;
  out[off++] = 0xa1; // {4: kid}
  out[off++] = HeaderLabel.kid;
  off = writeCborHead(out, off, 2, kid.length);
  out.set(kid, off);
  off = writeCborHead(out, off + kid.length, 2, len);
  out.set(buf.subarray(start, end), off);
  off = writeCborHead(out, off + len, 2, SIGNATURE_BYTES);
  out.set(signature, off);
  return out;
}
