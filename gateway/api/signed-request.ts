/**
 * Signed requests to the query API: signing (for the CLI and app
 * clients) and verification (for the server) of RFC 9421 signatures by a
 * principal's Ed25519 key, named by its did:key.
 *
 * The server accepts a signature only if it covers @method, @path, @query and
 * content-digest, carries `created` within the freshness window (and not in
 * the future beyond a small clock skew), `alg="ed25519"`, and a `nonce` not
 * seen before from that key within the window (replay protection; nonces are
 * remembered only after the signature verifies, so forged requests cannot
 * fill the cache).
 */
import { randomBytes } from 'node:crypto';
import { fail, ok, parsePublicKey, publicKeyToDidKey, type Result } from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../crypto/ed25519.js';
import {
  contentDigest,
  parseSignature,
  parseSignatureInput,
  REQUIRED_COMPONENTS,
  type RequestParts,
  type SfParam,
  signatureBase,
  type SignatureParams,
  serializeSignatureParams,
} from './http-sig.js';

const SIGNATURE_LABEL = 'outpost';
/** A signature older than this is refused (and its nonce forgotten). */
export const DEFAULT_MAX_AGE_SECONDS = 300;
/** Clock skew tolerated for `created` in the future. */
const DEFAULT_MAX_SKEW_SECONDS = 30;
const MAX_NONCES = 100_000;

export type SignedHeaders = {
  readonly 'content-digest': string;
  readonly 'signature-input': string;
  readonly signature: string;
};

/** Headers that sign `method target` (no body) with an Ed25519 seed. */
export function signRequest(
  method: string,
  target: string,
  seed: Uint8Array,
  opts: { created?: number; nonce?: string; body?: Uint8Array | string } = {},
): SignedHeaders {
  const did = publicKeyToDidKey(publicKeyFromSeed(seed));
  const digest = contentDigest(opts.body ?? '');
  const params: SignatureParams = {
    components: [...REQUIRED_COMPONENTS],
    params: [
      ['created', opts.created ?? Math.floor(Date.now() / 1000)],
      ['keyid', did],
      ['alg', 'ed25519'],
      ['nonce', opts.nonce ?? randomBytes(16).toString('base64url')],
    ],
  };
  const headers: Record<string, string> = { 'content-digest': digest };
  const base = signatureBase({ method, target, header: (n) => headers[n] }, params);
  if (!base.ok) throw new Error(base.error.message); // cannot happen: every covered component is set above
  const sig = signEd25519(seed, new TextEncoder().encode(base.value));
  return {
    'content-digest': digest,
    'signature-input': `${SIGNATURE_LABEL}=${serializeSignatureParams(params)}`,
    signature: `${SIGNATURE_LABEL}=:${Buffer.from(sig).toString('base64')}:`,
  };
}

/** Nonces seen per key within the freshness window. */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  constructor(
    private readonly windowMs: number,
    private readonly max = MAX_NONCES,
  ) {}

  /** Records the nonce; false if it was already used (a replay) or the guard is full. */
  remember(keyid: string, nonce: string, now: number): 'fresh' | 'replayed' | 'full' {
    // Entries go in in time order, so the expired ones are at the front.
    for (const [k, t] of this.seen) {
      if (t > now - this.windowMs) break;
      this.seen.delete(k);
    }
    const k = `${keyid} ${nonce}`;
    if (this.seen.has(k)) return 'replayed';
    if (this.seen.size >= this.max) return 'full';
    this.seen.set(k, now);
    return 'fresh';
  }

  get size(): number {
    return this.seen.size;
  }
}

export interface VerifyOptions {
  readonly now: number;
  readonly replay: ReplayGuard;
  readonly maxAgeSeconds?: number;
  readonly maxSkewSeconds?: number;
  /** The request body (empty for the API's GETs). */
  readonly body?: Uint8Array;
}

export interface VerifiedRequest {
  readonly did: string;
  readonly publicKey: Uint8Array;
  readonly created: number;
}

const param = (p: SignatureParams, k: string): SfParam | undefined => p.params.find(([x]) => x === k)?.[1];

/**
 * Verifies a request's signature. Never throws; every refusal is a `signature/…`
 * code the API answers with 401 (`signature/replay-cache-full` with 503).
 */
export function verifyRequest(req: RequestParts, opts: VerifyOptions): Result<VerifiedRequest> {
  const inputHeader = req.header('signature-input');
  const sigHeader = req.header('signature');
  if (inputHeader === undefined || sigHeader === undefined)
    return fail('signature/missing', 'send Signature-Input and Signature (RFC 9421), or the operator token');
  const inputs = parseSignatureInput(inputHeader);
  if (!inputs.ok) return inputs;
  const sigs = parseSignature(sigHeader);
  if (!sigs.ok) return sigs;
  // The first label that has both an input and a signature.
  const label = [...inputs.value.keys()].find((l) => sigs.value.has(l));
  if (label === undefined) return fail('signature/malformed', 'no label appears in both Signature-Input and Signature');
  const p = inputs.value.get(label)!;
  const signature = sigs.value.get(label)!;
  for (const c of REQUIRED_COMPONENTS)
    if (!p.components.includes(c))
      return fail(
        'signature/missing-component',
        `the signature must cover ${REQUIRED_COMPONENTS.map((x) => `"${x}"`).join(' ')}; "${c}" is not covered`,
      );
  const keyid = param(p, 'keyid');
  if (typeof keyid !== 'string') return fail('signature/bad-keyid', "keyid must be the signer's did:key");
  const key = parsePublicKey(keyid);
  if (!key.ok || !keyid.startsWith('did:key:'))
    return fail(
      'signature/bad-keyid',
      `keyid is not an Ed25519 did:key (${key.ok ? 'not a did:key' : key.error.message})`,
    );
  const alg = param(p, 'alg');
  if (alg !== 'ed25519') return fail('signature/bad-alg', 'alg must be "ed25519"');
  const created = param(p, 'created');
  if (typeof created !== 'number') return fail('signature/malformed', 'created (integer seconds) is required');
  const nowS = opts.now / 1000;
  const maxAge = opts.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS;
  if (created < nowS - maxAge)
    return fail('signature/stale', `signature created ${Math.round(nowS - created)} s ago; the window is ${maxAge} s`);
  if (created > nowS + (opts.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS))
    return fail('signature/future', 'signature created in the future (check the client clock)');
  const expires = param(p, 'expires');
  if (expires !== undefined && (typeof expires !== 'number' || expires < nowS))
    return fail('signature/expired', 'signature expired');
  const nonce = param(p, 'nonce');
  if (typeof nonce !== 'string' || !/^[A-Za-z0-9_\-+/=]{16,128}$/.test(nonce))
    return fail('signature/bad-nonce', 'nonce (16..128 base64 characters) is required');
  const digest = req.header('content-digest');
  if (digest === undefined || digest.trim() !== contentDigest(opts.body ?? new Uint8Array()))
    return fail('signature/bad-digest', 'Content-Digest is not sha-256 of the request body');
  const base = signatureBase(req, p);
  if (!base.ok) return base;
  if (signature.length !== 64 || !verifyEd25519(key.value, new TextEncoder().encode(base.value), signature)) {
    return fail('signature/invalid', `the signature does not verify under ${keyid}`);
  }
  const seen = opts.replay.remember(keyid, nonce, opts.now);
  if (seen === 'replayed') return fail('signature/replayed', 'this nonce was already used: sign each request anew');
  if (seen === 'full')
    return fail('signature/replay-cache-full', 'too many signed requests in the freshness window; try again later');
  return ok({ did: keyid, publicKey: key.value, created });
}
