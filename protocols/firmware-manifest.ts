/**
 * Firmware manifest: what a release key vouches for about one image, as a COSE_Sign1
 * (RFC 9052 §4.2) whose payload carries fields in the spirit of IETF SUIT (RFC 9019 §3,
 * RFC 9124 §3.4: vendor/class identifier, sequence number, image digest and size,
 * dependency on what runs now) without SUIT's command sequences:
 *
 *   {0: 16 (type), 1: model, 2: version "M.m.p", 3: [-16, SHA-256 of the image],
 *    4: size, 5: minimum version it upgrades from, 6: slot, 7: issued ms}
 *
 * The digest is a COSE_Hash-like pair (RFC 9054 §2: alg -16 = SHA-256). The kid is the key
 * id of the release key (first 8 bytes of SHA-256 of its public key) and `verifyManifest`
 * requires it to match, so no byte of the message — the unprotected kid included — can
 * change without the manifest being refused. Pure: the signature check is the caller's.
 */
import { createHash } from 'node:crypto';
import { type CborValue, decodeCbor, encodeCbor, isBytes, isMap, isUint, Tagged } from './cbor.js';
import { COSE_SIGN1_TAG, decodeSign1, encodeSign1, HeaderLabel, type SignFn, sigStructure } from './cose.js';
import { bytesEqual } from './bytes.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

const MANIFEST_TYPE = 16;
/** COSE algorithm id of SHA-256 (RFC 9054 §2.1). */
const ALG_SHA256 = -16;
export const MAX_MANIFEST_BYTES = 1024;
/** Largest image a manifest may describe (16 MiB: far above a microcontroller's flash). */
export const MAX_IMAGE_BYTES = 16 * 1024 * 1024;
const MAX_SLOT = 15;
const KEY_ID_BYTES = 8;
const VERSION = /^(0|[1-9]\d{0,4})\.(0|[1-9]\d{0,4})\.(0|[1-9]\d{0,4})$/;
const MODEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const K = { type: 0, model: 1, version: 2, digest: 3, size: 4, minVersion: 5, slot: 6, issued: 7 } as const;

export interface FirmwareManifest {
  /** Class of device the image is for (the device's model). */
  readonly model: string;
  /** `MAJOR.MINOR.PATCH`, each 0..99999. */
  readonly version: string;
  /** SHA-256 of the image. */
  readonly digest: Uint8Array;
  readonly size: number;
  /** Devices running an older version must not take this image. */
  readonly minVersion: string;
  /** The slot the image is written to (1: the secondary, test-booted slot). */
  readonly slot: number;
  /** When the release was signed, ms since the epoch. */
  readonly issued: number;
}

export interface SignedManifest {
  readonly manifest: FirmwareManifest;
  /** The COSE_Sign1 bytes, as signed. */
  readonly bytes: Uint8Array;
  readonly kid: Uint8Array;
  /** What the signature covers (RFC 9052 §4.4) and the signature, for the caller's check. */
  readonly signed: Uint8Array;
  readonly signature: Uint8Array;
}

/** `[major, minor, patch]`, or undefined when not a version. */
function parseVersion(v: string): [number, number, number] | undefined {
  const m = VERSION.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Negative, 0 or positive as `a` is older than, the same as or newer than `b` (both valid versions). */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) throw new ProtocolUsageError('firmware/bad-version', `"${!x ? a : b}" is not MAJOR.MINOR.PATCH`);
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
}

export const isFirmwareVersion = (v: string): boolean => parseVersion(v) !== undefined;
export const isFirmwareModel = (m: string): boolean => MODEL.test(m);

/** The release key's id: the first 8 bytes of SHA-256 of its public key. */
export function releaseKeyId(publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(publicKey).digest().subarray(0, KEY_ID_BYTES));
}

function check(m: FirmwareManifest): string | undefined {
  if (!isFirmwareModel(m.model)) return `model "${m.model}" must match ${MODEL.source}`;
  if (!isFirmwareVersion(m.version)) return `version "${m.version}" is not MAJOR.MINOR.PATCH`;
  if (!isFirmwareVersion(m.minVersion)) return `minimum version "${m.minVersion}" is not MAJOR.MINOR.PATCH`;
  if (compareVersions(m.minVersion, m.version) > 0) return 'minimum version is above the version';
  if (m.digest.length !== 32) return 'digest must be 32 bytes (SHA-256)';
  if (!Number.isSafeInteger(m.size) || m.size < 1 || m.size > MAX_IMAGE_BYTES)
    return `size must be 1..${MAX_IMAGE_BYTES} bytes`;
  if (!Number.isInteger(m.slot) || m.slot < 0 || m.slot > MAX_SLOT) return `slot must be 0..${MAX_SLOT}`;
  if (!Number.isSafeInteger(m.issued) || m.issued < 0) return 'issued must be ms since the epoch';
  return undefined;
}

/** Signs a manifest with the release key (`sign` over the Sig_structure); throws on a bad field (misuse). */
export function encodeManifest(m: FirmwareManifest, releasePublicKey: Uint8Array, sign: SignFn): Uint8Array {
  const problem = check(m);
  if (problem) throw new ProtocolUsageError('firmware/bad-manifest', problem);
  const payload = encodeCbor(
    new Map<number, unknown>([
      [K.type, MANIFEST_TYPE],
      [K.model, m.model],
      [K.version, m.version],
      [K.digest, [ALG_SHA256, m.digest]],
      [K.size, m.size],
      [K.minVersion, m.minVersion],
      [K.slot, m.slot],
      [K.issued, m.issued],
    ]),
  );
  return encodeSign1({ kid: releaseKeyId(releasePublicKey), payload }, sign);
}

const text = (v: CborValue | undefined): v is string => typeof v === 'string';

/** Decodes a manifest without checking its signature (bounded; a result, never an exception). */
export function decodeManifest(bytes: Uint8Array): Result<SignedManifest> {
  if (bytes.length > MAX_MANIFEST_BYTES)
    return fail('firmware/too-large', `manifest of ${bytes.length} bytes exceeds ${MAX_MANIFEST_BYTES}`);
  const s = decodeSign1(bytes, { maxBytes: MAX_MANIFEST_BYTES });
  if (!s.ok) return s;
  // Only kid unprotected (RFC 9052 §3: anything else there would be unsigned and meaningless).
  if (s.value.unprotectedHeader.size !== 1 || s.value.protectedHeader.size !== 1)
    return fail('firmware/bad-header', 'a manifest carries alg (protected) and kid (unprotected) only');
  if (s.value.kid.length !== KEY_ID_BYTES) return fail('firmware/bad-kid', `kid must be a ${KEY_ID_BYTES}-byte key id`);
  // The envelope outside the signature (tag, array and string heads, the kid map) must be in
  // preferred encoding (RFC 8949 §4.2.1), as encodeManifest writes it: otherwise a byte such as
  // a label re-encoded as 0x18 0x04 would change the message without touching what is signed.
  const { protectedBytes, payload, signature, kid } = s.value;
  const canonical = encodeCbor(
    new Tagged(COSE_SIGN1_TAG, [protectedBytes, new Map([[HeaderLabel.kid, kid]]), payload, signature]),
  );
  if (!bytesEqual(canonical, bytes))
    return fail('firmware/not-canonical', 'manifest envelope is not in preferred encoding');
  const body = decodeCbor(s.value.payload, { maxBytes: 512, maxDepth: 2, maxItems: 32, maxContainerLength: 16 });
  if (!body.ok) return fail('firmware/bad-payload', body.error.message);
  const p = body.value;
  if (!isMap(p)) return fail('firmware/bad-payload', 'payload must be a map');
  if (p.get(K.type) !== MANIFEST_TYPE) return fail('firmware/not-manifest', 'payload is not a firmware manifest');
  for (const k of p.keys())
    if (typeof k !== 'number' || k < 0 || k > K.issued) return fail('firmware/unknown-field', `unknown field ${k}`);
  const model = p.get(K.model);
  const version = p.get(K.version);
  const minVersion = p.get(K.minVersion);
  const digest = p.get(K.digest);
  const size = p.get(K.size);
  const slot = p.get(K.slot);
  const issued = p.get(K.issued);
  if (!text(model) || !text(version) || !text(minVersion))
    return fail('firmware/bad-field', 'model, version and minimum version must be text');
  if (!Array.isArray(digest) || digest.length !== 2 || digest[0] !== ALG_SHA256 || !isBytes(digest[1]!))
    return fail('firmware/bad-digest', 'digest must be [-16, SHA-256 bytes]');
  if (size === undefined || !isUint(size) || slot === undefined || !isUint(slot) || !isUint(issued ?? -1))
    return fail('firmware/bad-field', 'size, slot and issued must be unsigned integers');
  const m: FirmwareManifest = {
    model,
    version,
    digest: digest[1] as Uint8Array,
    size,
    minVersion,
    slot,
    issued: issued as number,
  };
  const problem = check(m);
  if (problem) return fail('firmware/bad-field', problem);
  return ok({
    manifest: m,
    bytes,
    kid: s.value.kid,
    signed: sigStructure(s.value.protectedBytes, s.value.payload),
    signature: s.value.signature,
  });
}

/**
 * Decodes and checks a manifest against the release keys a verifier trusts: the kid must be
 * one of theirs and the signature must verify under that key (`verify`: Ed25519).
 */
export function verifyManifest(
  bytes: Uint8Array,
  releaseKeys: readonly Uint8Array[],
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean,
): Result<SignedManifest> {
  const d = decodeManifest(bytes);
  if (!d.ok) return d;
  const key = releaseKeys.find((k) => bytesEqual(releaseKeyId(k), d.value.kid));
  if (!key) return fail('firmware/unknown-key', 'not signed by a trusted release key');
  if (!verify(key, d.value.signed, d.value.signature))
    return fail('firmware/bad-signature', 'the release key signature does not verify');
  return d;
}

/** Why a device must refuse a verified manifest (undefined: it may take it). */
export function manifestRefusal(
  m: FirmwareManifest,
  device: { readonly model: string; readonly version: string; readonly slot: number },
): { code: string; message: string } | undefined {
  if (m.model !== device.model)
    return { code: 'wrong-model', message: `image is for model ${m.model}, not ${device.model}` };
  if (compareVersions(m.version, device.version) <= 0)
    return { code: 'downgrade', message: `version ${m.version} is not newer than ${device.version}` };
  if (compareVersions(device.version, m.minVersion) < 0)
    return { code: 'too-old', message: `${device.version} is older than the minimum ${m.minVersion}` };
  if (m.slot !== device.slot) return { code: 'wrong-slot', message: `slot ${m.slot} is not ${device.slot}` };
  return undefined;
}
