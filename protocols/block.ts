/**
 * Log blocks (DESIGN.md, "The log"): `{author, stream, seq, lamport, prev,
 * parents, policy, kind, body}` in canonical CBOR, addressed by the SHA-256 of
 * those bytes, signed once by the author gateway.
 *
 * Canonical form is RFC 8949 §4.2.1 core deterministic encoding: definite
 * lengths, shortest heads, map keys sorted bytewise by their encoded form, and
 * only integers (no floats), byte strings, text, arrays, maps, booleans and
 * null. cbor-x does not promise key order or shortest heads for every value,
 * so blocks use the small encoder below. The decoder is the bounded reader
 * from cbor.ts followed by a re-encode: bytes that are not exactly canonical
 * are refused (`block/non-canonical`), so one block has exactly one hash.
 *
 * Signature: a detached Ed25519 signature next to the block, over
 * `"outpost/block/v1\0" ‖ SHA-256(block bytes)`, not a COSE_Sign1 around it.
 * - The content address is the hash of the block bytes alone, so the
 *   signature is not part of what it names: tampering with the signature
 *   leaves the address intact and is reported as exactly that (a forged
 *   signature), not as a different block.
 * - Signing the 32-byte hash instead of the (up to megabytes of) block costs
 *   one fixed-size Ed25519 operation; the hash is computed anyway.
 * - The domain prefix keeps a block signature from ever being valid as a COSE
 *   Sig_structure (which starts with 0x84 "Signature1") signed by the same
 *   gateway key for downlink commands, and vice versa.
 * - COSE would add a protected header and a tag (~10 bytes) per block and
 *   nothing we need: the algorithm is fixed and the key is the `author` field.
 *
 * Stored and sent as the signed envelope: a CBOR array `[block bstr, signature bstr]`.
 * Hashing is computation, not I/O, so node:crypto's createHash is used here.
 */
import { createHash } from 'node:crypto';
import { type CborValue, decodeCbor, isBytes } from './cbor.js';
import { cborHeadBytes } from './cbor-head.js';
import { bytesEqual, concatBytes, toHex } from './bytes.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

export const BLOCK_VERSION = 1;
export const HASH_BYTES = 32;
const AUTHOR_BYTES = 32;
const BLOCK_SIGNATURE_BYTES = 64;
/** Most frames in one frames block (a larger ingest batch becomes several blocks). */
export const MAX_BLOCK_FRAMES = 1024;
const MAX_FRAME_IN_BLOCK_BYTES = 4096;
export const MAX_PARENTS = 64;
export const MAX_NAME_LENGTH = 64;
/** Largest block: MAX_BLOCK_FRAMES frames of MAX_FRAME_IN_BLOCK_BYTES plus metadata. */
export const MAX_BLOCK_BYTES = MAX_BLOCK_FRAMES * (MAX_FRAME_IN_BLOCK_BYTES + 96) + 64 * 1024;
/** Signs `blockSigningInput(hash)`; the domain-separation prefix. */
const BLOCK_SIGNING_DOMAIN = new TextEncoder().encode('outpost/block/v1\0');

// sealed: an encrypted body of a confidential policy; keys: data-key wraps (protocols/sealed.ts);
// firmware: releases, image blocks and rollouts (protocols/firmware-block.ts).
export const BlockKinds = {
  frames: 1,
  enrolment: 2,
  policy: 3,
  rule: 4,
  actuation: 5,
  retention: 6,
  sealed: 7,
  keys: 8,
  firmware: 9,
  /** An export sink's progress (protocols/export-cursor.ts), so a sibling can take the sink over. */
  cursor: 10,
  /** A device's desired settings (protocols/settings.ts); 16 leaves 11..15 to other kinds. */
  settings: 16,
} as const;
export type BlockKind = keyof typeof BlockKinds;
export type ReservedKind = Exclude<BlockKind, 'frames' | 'enrolment' | 'retention'>;
const KIND_BY_CODE = new Map<number, BlockKind>(Object.entries(BlockKinds).map(([k, v]) => [v, k as BlockKind]));

/** Block map keys. */
const K = {
  version: 0,
  author: 1,
  stream: 2,
  seq: 3,
  lamport: 4,
  prev: 5,
  parents: 6,
  policy: 7,
  kind: 8,
  body: 9,
} as const;

/** One device frame as the author gateway received it. */
export interface FrameEntry {
  /** The COSE_Sign1 bytes exactly as received (anyone can re-verify the device signature). */
  readonly frame: Uint8Array;
  /** Receive time at the author, ms since the epoch. */
  readonly rxTime: number;
  /** mqtt, serial, ble, … */
  readonly transport: string;
}

/** A device enrolment (or revocation, with `revokedAt`). */
export interface EnrolmentBody {
  readonly device: string;
  readonly publicKey: Uint8Array;
  readonly enrolledAt: number;
  readonly revokedAt?: number;
  readonly site?: string;
  readonly model?: string;
  readonly name?: string;
}

/**
 * A low-water mark (kind 6), logged by a stream's author in that same stream: blocks of the
 * stream below seq `low` may be pruned by every replica (frames and older retention blocks;
 * enrolment and other registry blocks are kept). `low` is at most the retention block's own
 * seq, so a mark never prunes the block that sets it. `cutoff`: the age limit it applied
 * (receive times before it), for the record.
 */
export interface RetentionBody {
  readonly stream: string;
  readonly low: number;
  readonly cutoff: number;
}

interface BlockHeader {
  /** The author gateway's raw Ed25519 public key. */
  readonly author: Uint8Array;
  /** The author's chain this block extends (one per policy). */
  readonly stream: string;
  /** Position in the stream, from 0. */
  readonly seq: number;
  /** Lamport time: greater than that of `prev` and every parent. */
  readonly lamport: number;
  /** Hash of the previous block of the stream; null exactly when seq is 0. */
  readonly prev: Uint8Array | null;
  /** Heads of other streams the author had seen (sorted, distinct). */
  readonly parents: readonly Uint8Array[];
  readonly policy: string;
}

export type Block =
  | (BlockHeader & { readonly kind: 'frames'; readonly body: readonly FrameEntry[] })
  | (BlockHeader & { readonly kind: 'enrolment'; readonly body: EnrolmentBody })
  | (BlockHeader & { readonly kind: 'retention'; readonly body: RetentionBody })
  | (BlockHeader & { readonly kind: ReservedKind; readonly body: CborValue });

export interface SignedBlock {
  readonly block: Block;
  /** Canonical block bytes (what the hash and signature cover). */
  readonly bytes: Uint8Array;
  readonly hash: Uint8Array;
  readonly signature: Uint8Array;
  /** The envelope `[bytes, signature]` as stored and sent. */
  readonly envelope: Uint8Array;
}

// ---------------------------------------------------------------------------
// Deterministic encoder (RFC 8949 §4.2.1)

export type Canon =
  | number
  | string
  | boolean
  | null
  | Uint8Array
  | readonly Canon[]
  | ReadonlyMap<number | string, Canon>;

const utf8 = new TextEncoder();

class Writer {
  private buf: Uint8Array;
  len = 0;
  /** `size`: the bytes expected, when known (a re-encoding to compare): no growing, no copy at the end. */
  constructor(size = 256) {
    this.buf = new Uint8Array(Math.max(16, size));
  }
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  head(major: number, n: number): void {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new ProtocolUsageError('block/bad-integer', `integer ${n} cannot be encoded`);
    this.ensure(9);
    const m = major << 5;
    const b = this.buf;
    if (n < 24) b[this.len++] = m | n;
    else if (n < 0x100) {
      b[this.len++] = m | 24;
      b[this.len++] = n;
    } else if (n < 0x10000) {
      b[this.len++] = m | 25;
      b[this.len++] = n >> 8;
      b[this.len++] = n & 0xff;
    } else if (n < 0x100000000) {
      b[this.len++] = m | 26;
      new DataView(b.buffer).setUint32(this.len, n);
      this.len += 4;
    } else {
      b[this.len++] = m | 27;
      new DataView(b.buffer).setBigUint64(this.len, BigInt(n));
      this.len += 8;
    }
  }
  bytes(major: number, data: Uint8Array): void {
    this.head(major, data.length);
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }
  raw(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }
  result(): Uint8Array {
    return this.len === this.buf.length ? this.buf : this.buf.slice(0, this.len);
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Made once, not per value: canonical encoding runs for every block written and read (a read
 * re-encodes to check the form), and per-key Writers were most of a busy gateway's garbage
 * (bench/firmware-rollout.ts). The compiled build turns a `\p{…}` literal into a RegExp
 * constructed where it stands, hence the constant.
 */
const LONE_SURROGATE = /\p{Surrogate}/u;
const TRUE = Uint8Array.of(0xf5);
const FALSE = Uint8Array.of(0xf4);
const NULL = Uint8Array.of(0xf6);
/** The encodings of the unsigned integers 0..23 (one byte each): nearly every map key. */
const SMALL_UINTS = Array.from({ length: 24 }, (_, i) => Uint8Array.of(i));
const keyBytes = (k: number | string): Uint8Array =>
  typeof k === 'number' && Number.isInteger(k) && k >= 0 && k < 24 ? SMALL_UINTS[k]! : encodeCanonical(k);

function write(w: Writer, v: Canon): void {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw new ProtocolUsageError('block/bad-integer', `${v} is not a safe integer (blocks hold no floats)`);
    if (v >= 0) w.head(0, v);
    else w.head(1, -1 - v);
  } else if (typeof v === 'string') {
    if (LONE_SURROGATE.test(v)) throw new ProtocolUsageError('block/bad-text', 'text with a lone surrogate');
    w.bytes(3, utf8.encode(v));
  } else if (typeof v === 'boolean') w.raw(v ? TRUE : FALSE);
  else if (v === null) w.raw(NULL);
  else if (v instanceof Uint8Array) w.bytes(2, v);
  else if (Array.isArray(v)) {
    w.head(4, v.length);
    for (const x of v as readonly Canon[]) write(w, x);
  } else if (v instanceof Map) {
    const entries = [...(v as ReadonlyMap<number | string, Canon>)].map(([k, x]) => [keyBytes(k), x] as const);
    entries.sort((a, b) => compareBytes(a[0], b[0]));
    w.head(5, entries.length);
    for (let i = 0; i < entries.length; i++) {
      if (i > 0 && compareBytes(entries[i - 1]![0], entries[i]![0]) === 0)
        throw new ProtocolUsageError('block/duplicate-key', 'duplicate map key');
      w.raw(entries[i]![0]);
      write(w, entries[i]![1]);
    }
  } else {
    throw new ProtocolUsageError('block/bad-value', `cannot encode ${typeof v} canonically`);
  }
}

/**
 * RFC 8949 §4.2.1 deterministic encoding of integers, text, bytes, arrays, maps
 * (keys sorted bytewise by encoding), booleans and null. Throws ProtocolUsageError
 * for anything else (floats, bigints, undefined, tags).
 */
export function encodeCanonical(v: Canon | CborValue, sizeHint?: number): Uint8Array {
  const w = new Writer(sizeHint);
  write(w, v as Canon);
  return w.result();
}

// ---------------------------------------------------------------------------
// Blocks

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/** The message an author signs for a block whose canonical bytes hash to `hash`. */
export function blockSigningInput(hash: Uint8Array): Uint8Array {
  return concatBytes(BLOCK_SIGNING_DOMAIN, hash);
}

function checkName(what: string, s: string): void {
  if (s.length === 0 || s.length > MAX_NAME_LENGTH)
    throw new ProtocolUsageError('block/bad-name', `${what} must be 1..${MAX_NAME_LENGTH} characters`);
}

/** The canonical CBOR value of a block's body (what a sealed block encrypts). */
export function blockBodyValue(b: Block): Canon {
  switch (b.kind) {
    case 'frames':
      if (b.body.length === 0 || b.body.length > MAX_BLOCK_FRAMES)
        throw new ProtocolUsageError('block/bad-frames', `a frames block holds 1..${MAX_BLOCK_FRAMES} frames`);
      return b.body.map((f) => {
        if (f.frame.length === 0 || f.frame.length > MAX_FRAME_IN_BLOCK_BYTES)
          throw new ProtocolUsageError('block/bad-frames', 'frame size out of range');
        return [f.frame, f.rxTime, f.transport];
      });
    case 'enrolment': {
      const e = b.body;
      const m = new Map<number, Canon>([
        [1, e.device],
        [2, e.publicKey],
        [3, e.enrolledAt],
      ]);
      if (e.revokedAt !== undefined) m.set(4, e.revokedAt);
      if (e.site !== undefined) m.set(5, e.site);
      if (e.model !== undefined) m.set(6, e.model);
      if (e.name !== undefined) m.set(7, e.name);
      return m;
    }
    case 'retention': {
      const r = b.body;
      checkName('retention stream', r.stream);
      if (r.stream !== b.stream)
        throw new ProtocolUsageError('block/bad-retention', 'a retention block names its own stream');
      if (!Number.isSafeInteger(r.low) || r.low < 0 || r.low > b.seq)
        throw new ProtocolUsageError('block/bad-retention', "retention low must be 0..the block's own seq");
      return new Map<number, Canon>([
        [1, r.stream],
        [2, r.low],
        [3, r.cutoff],
      ]);
    }
    default:
      return b.body as Canon;
  }
}

/** The canonical bytes of a block. Throws ProtocolUsageError for an invalid block. */
export function encodeBlock(b: Block, sizeHint?: number): Uint8Array {
  if (b.author.length !== AUTHOR_BYTES)
    throw new ProtocolUsageError('block/bad-author', 'author must be a 32-byte Ed25519 public key');
  checkName('stream', b.stream);
  checkName('policy', b.policy);
  if ((b.seq === 0) !== (b.prev === null))
    throw new ProtocolUsageError('block/bad-prev', 'prev is null exactly for seq 0');
  if (b.prev !== null && b.prev.length !== HASH_BYTES)
    throw new ProtocolUsageError('block/bad-prev', 'prev must be a 32-byte hash');
  if (b.parents.length > MAX_PARENTS)
    throw new ProtocolUsageError('block/bad-parents', `at most ${MAX_PARENTS} parents`);
  const parents = [...b.parents].sort(compareBytes);
  for (let i = 0; i < parents.length; i++) {
    if (parents[i]!.length !== HASH_BYTES)
      throw new ProtocolUsageError('block/bad-parents', 'parents must be 32-byte hashes');
    if (i > 0 && compareBytes(parents[i - 1]!, parents[i]!) === 0)
      throw new ProtocolUsageError('block/bad-parents', 'duplicate parent');
  }
  const m = new Map<number, Canon>([
    [K.version, BLOCK_VERSION],
    [K.author, b.author],
    [K.stream, b.stream],
    [K.seq, b.seq],
    [K.lamport, b.lamport],
    [K.prev, b.prev],
    [K.parents, parents],
    [K.policy, b.policy],
    [K.kind, BlockKinds[b.kind]],
    [K.body, blockBodyValue(b)],
  ]);
  const out = encodeCanonical(m, sizeHint);
  if (out.length > MAX_BLOCK_BYTES)
    throw new ProtocolUsageError('block/too-large', `block of ${out.length} bytes exceeds ${MAX_BLOCK_BYTES}`);
  return out;
}

/** Encodes, hashes and signs a block (`sign` is the author gateway's Ed25519 signer). */
export function signBlock(b: Block, sign: (message: Uint8Array) => Uint8Array): SignedBlock {
  const bytes = encodeBlock(b);
  const hash = sha256(bytes);
  const signature = sign(blockSigningInput(hash));
  if (signature.length !== BLOCK_SIGNATURE_BYTES)
    throw new ProtocolUsageError('block/bad-signature-length', 'signer returned a non-64-byte signature');
  return { block: b, bytes, hash, signature, envelope: encodeCanonical([bytes, signature]) };
}

const blockLimits = {
  maxBytes: MAX_BLOCK_BYTES,
  maxDepth: 6,
  maxItems: 4 * MAX_BLOCK_FRAMES + 4 * MAX_PARENTS + 256,
  maxContainerLength: Math.max(MAX_BLOCK_FRAMES, MAX_PARENTS),
};

const isInt = (v: CborValue | undefined): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isName = (v: CborValue | undefined): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= MAX_NAME_LENGTH;
const isHash = (v: CborValue | undefined): v is Uint8Array => v instanceof Uint8Array && v.length === HASH_BYTES;

/** Decodes canonical block bytes. Never throws; every fault is a `block/…` or `cbor/…` error. */
export function decodeBlock(bytes: Uint8Array): Result<Block> {
  return decodeBlockBytes(bytes, true);
}

/** `canonical`: re-encode and compare (false only for bytes already known to be a canonical block's, by their hash). */
function decodeBlockBytes(bytes: Uint8Array, canonical: boolean): Result<Block> {
  const r = decodeCbor(bytes, blockLimits);
  if (!r.ok) return r;
  const m = r.value;
  if (!(m instanceof Map)) return fail('block/not-a-map', 'a block is a CBOR map');
  for (const k of m.keys())
    if (typeof k !== 'number' || k < 0 || k > 9) return fail('block/unknown-key', `unknown block key ${String(k)}`);
  if (m.get(K.version) !== BLOCK_VERSION)
    return fail('block/bad-version', `block version ${String(m.get(K.version))} is not ${BLOCK_VERSION}`);
  const author = m.get(K.author);
  if (!(author instanceof Uint8Array) || author.length !== AUTHOR_BYTES)
    return fail('block/bad-author', 'author must be a 32-byte key');
  const stream = m.get(K.stream);
  const policy = m.get(K.policy);
  if (!isName(stream) || !isName(policy)) return fail('block/bad-name', 'stream and policy must be 1..64 characters');
  const seq = m.get(K.seq);
  const lamport = m.get(K.lamport);
  if (!isInt(seq) || !isInt(lamport)) return fail('block/bad-integer', 'seq and lamport must be unsigned integers');
  const prev = m.get(K.prev);
  if (!(prev === null || isHash(prev)) || (seq === 0) !== (prev === null))
    return fail('block/bad-prev', 'prev must be a hash, null exactly for seq 0');
  const parents = m.get(K.parents);
  if (!Array.isArray(parents) || parents.length > MAX_PARENTS || !parents.every(isHash))
    return fail('block/bad-parents', 'parents must be an array of hashes');
  const kindCode = m.get(K.kind);
  const kind = typeof kindCode === 'number' ? KIND_BY_CODE.get(kindCode) : undefined;
  if (kind === undefined) return fail('block/unknown-kind', `unknown block kind ${String(kindCode)}`);
  if (!m.has(K.body)) return fail('block/bad-body', 'missing body');
  const raw = m.get(K.body)!;
  const header = { author, stream, seq, lamport, prev, parents: parents as Uint8Array[], policy };
  let block: Block;
  if (kind === 'frames') {
    if (!Array.isArray(raw) || raw.length === 0) return fail('block/bad-body', 'a frames body is a non-empty array');
    const frames: FrameEntry[] = [];
    for (const e of raw) {
      if (!Array.isArray(e) || e.length !== 3)
        return fail('block/bad-body', 'a frame entry is [frame, rxTime, transport]');
      const [frame, rxTime, transport] = e;
      if (!isBytes(frame!) || frame.length === 0 || frame.length > MAX_FRAME_IN_BLOCK_BYTES)
        return fail('block/bad-body', 'frame bytes out of range');
      if (!isInt(rxTime) || !isName(transport)) return fail('block/bad-body', 'bad receive metadata');
      frames.push({ frame, rxTime, transport });
    }
    block = { ...header, kind, body: frames };
  } else if (kind === 'enrolment') {
    if (!(raw instanceof Map)) return fail('block/bad-body', 'an enrolment body is a map');
    const device = raw.get(1);
    const publicKey = raw.get(2);
    const enrolledAt = raw.get(3);
    if (!isName(device) || !(publicKey instanceof Uint8Array) || publicKey.length !== 32 || !isInt(enrolledAt))
      return fail('block/bad-body', 'enrolment needs device, a 32-byte key and enrolledAt');
    const body: { -readonly [P in keyof EnrolmentBody]: EnrolmentBody[P] } = { device, publicKey, enrolledAt };
    const opt = (k: number): CborValue | undefined => raw.get(k);
    for (const k of raw.keys())
      if (typeof k !== 'number' || k < 1 || k > 7) return fail('block/bad-body', `unknown enrolment key ${String(k)}`);
    const revokedAt = opt(4);
    if (revokedAt !== undefined) {
      if (!isInt(revokedAt)) return fail('block/bad-body', 'revokedAt must be an integer');
      body.revokedAt = revokedAt;
    }
    for (const [k, name] of [
      [5, 'site'],
      [6, 'model'],
      [7, 'name'],
    ] as const) {
      const v = opt(k);
      if (v === undefined) continue;
      if (typeof v !== 'string' || v.length > 256) return fail('block/bad-body', `${name} must be text`);
      body[name] = v;
    }
    block = { ...header, kind, body };
  } else if (kind === 'retention') {
    if (!(raw instanceof Map) || raw.size !== 3)
      return fail('block/bad-body', 'a retention body is {1: stream, 2: low, 3: cutoff}');
    const [st, low, cutoff] = [raw.get(1), raw.get(2), raw.get(3)];
    if (!isName(st) || !isInt(low) || !isInt(cutoff))
      return fail('block/bad-body', 'a retention body is {1: stream, 2: low, 3: cutoff}');
    if (st !== stream || low > seq)
      return fail('block/bad-body', 'a retention block names its own stream and a low at most its own seq');
    block = { ...header, kind, body: { stream: st, low, cutoff } };
  } else {
    block = { ...header, kind, body: raw };
  }
  if (!canonical) return ok(block);
  // One block, one encoding, one hash: anything but the exact canonical bytes is refused.
  let again: Uint8Array;
  try {
    again = encodeBlock(block, bytes.length); // sized as the bytes it is compared with (a 64 KiB image block)
  } catch (e) {
    return fail('block/non-canonical', `not a canonical block: ${(e as Error).message}`);
  }
  if (!bytesEqual(again, bytes))
    return fail('block/non-canonical', 'block bytes are not in canonical CBOR (RFC 8949 §4.2.1)');
  return ok(block);
}

const envelopeLimits = { maxBytes: MAX_BLOCK_BYTES + 128, maxDepth: 2, maxItems: 4, maxContainerLength: 2 };

/**
 * Decodes a signed envelope `[block bytes, signature]` and the block inside; computes the hash.
 * Never throws. `storedAs`: the hash a log stored the envelope under, where every block was
 * checked canonical on the way in: bytes whose hash is still that one are those bytes (so
 * still canonical, and not re-encoded to check: a 64 KiB firmware image block on every read);
 * any other is `block/hash-mismatch`.
 */
export function decodeSignedBlock(envelope: Uint8Array, storedAs?: Uint8Array): Result<SignedBlock> {
  const r = decodeCbor(envelope, envelopeLimits);
  if (!r.ok) return r;
  const v = r.value;
  if (!Array.isArray(v) || v.length !== 2 || !isBytes(v[0]!) || !isBytes(v[1]!))
    return fail('block/bad-envelope', 'a signed block is [block bytes, signature]');
  const [bytes, signature] = v as [Uint8Array, Uint8Array];
  if (signature.length !== BLOCK_SIGNATURE_BYTES) return fail('block/bad-envelope', 'signature must be 64 bytes');
  // The envelope must be canonical too (shortest heads), so it has one byte form. Checked by
  // its length, not a re-encoding (a 64 KiB image block's copy on every read): the decoder took
  // the whole envelope as an array of two byte strings with nothing after it, and any head
  // not the shortest, or an indefinite length, only makes it longer.
  if (envelope.length !== 1 + cborHeadBytes(bytes.length) + bytes.length + cborHeadBytes(signature.length) + 64)
    return fail('block/non-canonical', 'envelope is not canonical');
  const hash = sha256(bytes);
  if (storedAs && !bytesEqual(hash, storedAs))
    return fail('block/hash-mismatch', 'block bytes do not hash to the hash they were stored under');
  const block = decodeBlockBytes(bytes, !storedAs);
  if (!block.ok) return block;
  return ok({ block: block.value, bytes, hash, signature, envelope });
}

/** Lowercase hex of a block hash (the form used in keys, CLI output and logs). */
export const hashHex = (h: Uint8Array): string => toHex(h);
