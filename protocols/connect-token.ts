/**
 * The MQTT CONNECT token: how a device (or a principal) proves at CONNECT that
 * it holds its enrolled Ed25519 key. Username = the subject (device id, or the
 * principal's name or did:key); password = this token as base64url text
 * (RFC 4648 §5, no padding), so `mosquitto_pub -P` can carry it.
 *
 * The token is a COSE_Sign1 (RFC 9052 §4.2, EdDSA) with kid = the subject
 * (UTF-8) and the CBOR payload `{0: 5, 3: time_ms, 17: audience}`: message type
 * 5 ("connect", so no frame or command can pass for a token, nor a token for a
 * frame), the signer's clock in ms since the epoch, and the id of the gateway
 * it is meant for (so a token shown to one gateway is useless at another).
 * The kid sits in the unprotected header, as in frames: it is not signed, it
 * only selects the key the signature must verify under (the subject's own).
 * Freshness (a window around the gateway's clock, and newer than the last one
 * accepted for that subject) is the verifier's; this module only encodes and
 * decodes, bounded, and builds the bytes the signature covers.
 */
import { decodeUtf8 } from './bytes.js';
import { decodeCbor, encodeCbor, isMap, isUint } from './cbor.js';
import { decodeSign1, encodeSign1, type SignFn, sigStructure } from './cose.js';
import { isValidId } from './ids.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

/** Body key 0 value of a connect token (frame.ts numbers 1–4). */
const CONNECT_TOKEN_TYPE = 5;
const KEY_TYPE = 0;
const KEY_TIME = 3;
const KEY_AUDIENCE = 17;

/** Largest token accepted, binary (a 64-character subject and audience need about 190 bytes). */
const MAX_CONNECT_TOKEN_BYTES = 256;
/** The same as base64url text. */
export const MAX_CONNECT_TOKEN_CHARS = Math.ceil((MAX_CONNECT_TOKEN_BYTES * 4) / 3);
/** Subjects are ids or did:keys: printable ASCII, 1..64 characters. */
const SUBJECT = /^[\x21-\x7e]{1,64}$/;

export interface ConnectTokenClaims {
  /** Device id, principal name or did:key (the MQTT username). */
  readonly subject: string;
  /** The gateway id the token is for. */
  readonly audience: string;
  /** Signer's clock, ms since the Unix epoch. */
  readonly time: number;
}

export interface ConnectToken extends ConnectTokenClaims {
  /** What the signature covers (RFC 9052 §4.4 Sig_structure) and the signature. */
  readonly signed: Uint8Array;
  readonly signature: Uint8Array;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64URL.length; i++) B64URL_INDEX[B64URL.charCodeAt(i)] = i;

/** base64url without padding (RFC 4648 §5). */
export function base64urlEncode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 4) / 3));
    for (let j = 0; j < chars; j++) out += B64URL[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/** Strict base64url without padding: undefined for any other character, a dangling sextet or non-zero spare bits. */
export function base64urlDecode(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64URL_INDEX[c]! : -1;
    if (v < 0) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined; // canonical: one text per byte string
  return out;
}

/** Signs a connect token; throws ProtocolUsageError for a bad subject, audience or time. */
export function encodeConnectToken(claims: ConnectTokenClaims, sign: SignFn): string {
  if (!SUBJECT.test(claims.subject))
    throw new ProtocolUsageError('token/bad-subject', 'subject must be 1..64 printable ASCII characters');
  if (!isValidId(claims.audience)) throw new ProtocolUsageError('token/bad-audience', 'audience must be a gateway id');
  if (!Number.isSafeInteger(claims.time) || claims.time < 0)
    throw new ProtocolUsageError('token/bad-time', 'time must be ms since the epoch');
  const payload = encodeCbor(
    new Map<number, unknown>([
      [KEY_TYPE, CONNECT_TOKEN_TYPE],
      [KEY_TIME, claims.time],
      [KEY_AUDIENCE, claims.audience],
    ]),
  );
  return base64urlEncode(encodeSign1({ kid: new TextEncoder().encode(claims.subject), payload }, sign));
}

/** Decodes a token (the MQTT password, text or bytes) without checking its signature. */
export function decodeConnectToken(password: string | Uint8Array): Result<ConnectToken> {
  const text = typeof password === 'string' ? password : decodeUtf8(password);
  if (text === undefined) return fail('token/not-text', 'token is not UTF-8 text');
  if (text.length === 0) return fail('token/empty', 'no token');
  if (text.length > MAX_CONNECT_TOKEN_CHARS)
    return fail('token/too-large', `token over ${MAX_CONNECT_TOKEN_CHARS} characters`);
  const bytes = base64urlDecode(text);
  if (!bytes) return fail('token/not-base64url', 'token is not base64url');
  const s = decodeSign1(bytes, { maxBytes: MAX_CONNECT_TOKEN_BYTES });
  if (!s.ok) return s;
  const subject = decodeUtf8(s.value.kid);
  if (subject === undefined || !SUBJECT.test(subject))
    return fail('token/bad-subject', 'kid must be 1..64 printable ASCII characters');
  const body = decodeCbor(s.value.payload, { maxBytes: 128, maxDepth: 1, maxItems: 8, maxContainerLength: 4 });
  if (!body.ok) return fail('token/bad-body', `payload: ${body.error.message}`);
  const m = body.value;
  if (!isMap(m) || m.size !== 3) return fail('token/bad-body', 'payload must be a map of 3 entries');
  if (m.get(KEY_TYPE) !== CONNECT_TOKEN_TYPE) return fail('token/bad-type', 'not a connect token (type 5)');
  const time = m.get(KEY_TIME);
  if (time === undefined || !isUint(time) || !Number.isSafeInteger(time))
    return fail('token/bad-time', 'time must be an unsigned integer (ms)');
  const audience = m.get(KEY_AUDIENCE);
  if (typeof audience !== 'string' || !isValidId(audience))
    return fail('token/bad-audience', 'audience must be a gateway id');
  return ok({
    subject,
    audience,
    time,
    signed: sigStructure(s.value.protectedBytes, s.value.payload),
    signature: s.value.signature,
  });
}
