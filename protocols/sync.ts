/**
 * Sync messages between sibling gateways (DESIGN.md, "Sync"), canonical CBOR
 * arrays whose first element is the type:
 *
 *   check   [5, digest]            "are we equal?" (one small message)
 *   equal   [0]                    answer to check or hello: nothing to do
 *   differ  [6]                    answer to check: start a sync with hello
 *   hello   [1, digest, vector]    opens a sync: the initiator's heads digest and version vector
 *   vector  [2, vector]            the responder's vector (it then streams what the initiator lacks)
 *   block   [3, envelope]          one signed block, in an order where prev and parents come first
 *   done    [4, count]             no more blocks from this side (count = blocks sent)
 *   want    [7, [[author, stream]…]]  send these streams whole: the peer's vector named a
 *                                  head we lack on a stream where we are ahead (a fork the
 *                                  peer cannot see); answered by blocks and another done
 *   mark    [8, envelope]          the signed retention block behind a low-water mark, sent
 *                                  before blocks whose `prev` lies below it (pruned), so the
 *                                  receiver knows the gap is a mark and not a missing block
 *
 * vector = [[author, stream, low, high, count, [head hashes], kept], …], one entry per
 * (author, stream): the lowest and highest seq held, how many blocks (more than
 * high − low + 1 after an equivocation) and the hashes at `high`. `low` is the
 * stream's low-water mark once it has one (retention): nothing below it is ever
 * offered to that peer, and blocks counted are those at or above it. `kept`: the first
 * 8 bytes of SHA-256 over the sorted hashes of the blocks held below the mark (registry
 * blocks a mark keeps), empty when none, so two sides that differ only there see it.
 */
import { decodeCbor } from './cbor.js';
import { encodeCanonical, HASH_BYTES, MAX_BLOCK_BYTES, MAX_NAME_LENGTH } from './block.js';
import { fail, ok, type Result } from './result.js';

const MAX_VECTOR_ENTRIES = 4096;

export interface VectorEntry {
  readonly author: Uint8Array;
  readonly stream: string;
  readonly low: number;
  readonly high: number;
  readonly count: number;
  readonly heads: readonly Uint8Array[];
  /** Digest of the blocks kept below the mark (empty: none). */
  readonly kept: Uint8Array;
}

export type SyncMessage =
  | { readonly type: 'equal' }
  | { readonly type: 'hello'; readonly digest: Uint8Array; readonly vector: readonly VectorEntry[] }
  | { readonly type: 'vector'; readonly vector: readonly VectorEntry[] }
  | { readonly type: 'block'; readonly envelope: Uint8Array }
  | { readonly type: 'done'; readonly count: number }
  | { readonly type: 'check'; readonly digest: Uint8Array }
  | { readonly type: 'differ' }
  | { readonly type: 'want'; readonly streams: readonly (readonly [Uint8Array, string])[] }
  | { readonly type: 'mark'; readonly envelope: Uint8Array };

const T = { equal: 0, hello: 1, vector: 2, block: 3, done: 4, check: 5, differ: 6, want: 7, mark: 8 } as const;

const vectorValue = (v: readonly VectorEntry[]): unknown[] =>
  v.map((e) => [e.author, e.stream, e.low, e.high, e.count, [...e.heads], e.kept]);

export function encodeSyncMessage(m: SyncMessage): Uint8Array {
  switch (m.type) {
    case 'equal':
      return encodeCanonical([T.equal]);
    case 'differ':
      return encodeCanonical([T.differ]);
    case 'check':
      return encodeCanonical([T.check, m.digest]);
    case 'hello':
      return encodeCanonical([T.hello, m.digest, vectorValue(m.vector)] as never);
    case 'vector':
      return encodeCanonical([T.vector, vectorValue(m.vector)] as never);
    case 'block':
      return encodeCanonical([T.block, m.envelope]);
    case 'done':
      return encodeCanonical([T.done, m.count]);
    case 'mark':
      return encodeCanonical([T.mark, m.envelope]);
    case 'want':
      return encodeCanonical([T.want, m.streams.map(([a, st]) => [a, st])]);
  }
}

const limits = {
  maxBytes: MAX_BLOCK_BYTES + 256,
  maxDepth: 5,
  maxItems: MAX_VECTOR_ENTRIES * 16 + 16,
  maxContainerLength: MAX_VECTOR_ENTRIES,
};

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isHash = (v: unknown): v is Uint8Array => v instanceof Uint8Array && v.length === HASH_BYTES;

function decodeVector(v: unknown): VectorEntry[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: VectorEntry[] = [];
  for (const e of v) {
    if (!Array.isArray(e) || e.length !== 7) return undefined;
    const [author, stream, low, high, count, heads, kept] = e as unknown[];
    if (!(kept instanceof Uint8Array) || (kept.length !== 0 && kept.length !== 8)) return undefined;
    if (!(author instanceof Uint8Array) || author.length !== 32) return undefined;
    if (typeof stream !== 'string' || stream.length === 0 || stream.length > MAX_NAME_LENGTH) return undefined;
    if (!isUint(low) || !isUint(high) || !isUint(count) || low > high) return undefined;
    if (!Array.isArray(heads) || heads.length === 0 || heads.length > 64 || !heads.every(isHash)) return undefined;
    out.push({ author, stream, low, high, count, heads, kept });
  }
  return out;
}

/** Decodes one sync message. Never throws. */
export function decodeSyncMessage(bytes: Uint8Array): Result<SyncMessage> {
  const r = decodeCbor(bytes, limits);
  if (!r.ok) return r;
  const v = r.value;
  if (!Array.isArray(v) || v.length === 0 || typeof v[0] !== 'number')
    return fail('sync/bad-message', 'a sync message is [type, …]');
  const bad = (what: string): Result<SyncMessage> => fail('sync/bad-message', what);
  switch (v[0]) {
    case T.equal:
      return v.length === 1 ? ok({ type: 'equal' }) : bad('equal takes no fields');
    case T.differ:
      return v.length === 1 ? ok({ type: 'differ' }) : bad('differ takes no fields');
    case T.check:
      return v.length === 2 && isHash(v[1]) ? ok({ type: 'check', digest: v[1] }) : bad('check is [5, digest]');
    case T.hello: {
      const vector = v.length === 3 && isHash(v[1]) ? decodeVector(v[2]) : undefined;
      return vector ? ok({ type: 'hello', digest: v[1] as Uint8Array, vector }) : bad('hello is [1, digest, vector]');
    }
    case T.vector: {
      const vector = v.length === 2 ? decodeVector(v[1]) : undefined;
      return vector ? ok({ type: 'vector', vector }) : bad('vector is [2, vector]');
    }
    case T.block:
      return v.length === 2 && v[1] instanceof Uint8Array
        ? ok({ type: 'block', envelope: v[1] })
        : bad('block is [3, envelope]');
    case T.done:
      return v.length === 2 && isUint(v[1]) ? ok({ type: 'done', count: v[1] }) : bad('done is [4, count]');
    case T.mark:
      return v.length === 2 && v[1] instanceof Uint8Array
        ? ok({ type: 'mark', envelope: v[1] })
        : bad('mark is [8, envelope]');
    case T.want: {
      const list = v.length === 2 && Array.isArray(v[1]) ? v[1] : undefined;
      const streams: [Uint8Array, string][] = [];
      for (const e of list ?? []) {
        if (
          !Array.isArray(e) ||
          e.length !== 2 ||
          !(e[0] instanceof Uint8Array) ||
          e[0].length !== 32 ||
          typeof e[1] !== 'string' ||
          e[1].length === 0 ||
          e[1].length > MAX_NAME_LENGTH
        )
          return bad('want is [7, [[author, stream]…]]');
        streams.push([e[0], e[1]]);
      }
      return list ? ok({ type: 'want', streams }) : bad('want is [7, [[author, stream]…]]');
    }
    default:
      return fail('sync/unknown-type', `unknown sync message type ${String(v[0])}`);
  }
}

// ---------------------------------------------------------------------------
// Peer authentication (direct links): each side sends `[10, its key, nonce]`,
// then `[11, signature]` over syncAuthInput(signer, verifier, verifier's nonce,
// signer's nonce); `[12, reason]` refuses. Binding both keys and both nonces
// keeps a proof from being replayed on another link or reflected back.

const SYNC_AUTH_DOMAIN = new TextEncoder().encode('outpost/sync-auth/v1\0');
export const NONCE_BYTES = 32;

export type AuthMessage =
  | { readonly type: 'auth-hello'; readonly publicKey: Uint8Array; readonly nonce: Uint8Array }
  | { readonly type: 'auth-proof'; readonly signature: Uint8Array }
  | { readonly type: 'auth-refused'; readonly reason: string };

export function encodeAuthMessage(m: AuthMessage): Uint8Array {
  switch (m.type) {
    case 'auth-hello':
      return encodeCanonical([10, m.publicKey, m.nonce]);
    case 'auth-proof':
      return encodeCanonical([11, m.signature]);
    case 'auth-refused':
      return encodeCanonical([12, m.reason.slice(0, 200)]);
  }
}

export function decodeAuthMessage(bytes: Uint8Array): Result<AuthMessage> {
  const r = decodeCbor(bytes, { maxBytes: 512, maxDepth: 2, maxItems: 8, maxContainerLength: 4 });
  if (!r.ok) return r;
  const v = r.value;
  if (!Array.isArray(v)) return fail('sync/bad-auth', 'an auth message is an array');
  const [t, a, b] = v;
  if (
    t === 10 &&
    v.length === 3 &&
    a instanceof Uint8Array &&
    a.length === 32 &&
    b instanceof Uint8Array &&
    b.length === NONCE_BYTES
  ) {
    return ok({ type: 'auth-hello', publicKey: a, nonce: b });
  }
  if (t === 11 && v.length === 2 && a instanceof Uint8Array && a.length === 64)
    return ok({ type: 'auth-proof', signature: a });
  if (t === 12 && v.length === 2 && typeof a === 'string') return ok({ type: 'auth-refused', reason: a });
  return fail('sync/bad-auth', 'not an auth message');
}

/** What `signer` signs to prove its key to `verifier` on one link. */
export function syncAuthInput(
  signer: Uint8Array,
  verifier: Uint8Array,
  verifierNonce: Uint8Array,
  signerNonce: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(SYNC_AUTH_DOMAIN.length + 32 + 32 + NONCE_BYTES + NONCE_BYTES);
  let o = 0;
  for (const part of [SYNC_AUTH_DOMAIN, signer, verifier, verifierNonce, signerNonce]) {
    out.set(part, o);
    o += part.length;
  }
  return out;
}

// Sync over MQTT (gateway/sync/mqtt.ts): the same messages, one per MQTT
// message, on `outpost/v1/sync/{responder key hex}/{session}/i` (initiator →
// responder) and `…/r` (responder → initiator). A gateway connecting to a
// sibling's embedded broker for sync logs in with username
// `outpost-sync:{key hex}` and as password its signature over
// syncBrokerAuthInput(client id); only such clients may use the sync topics there.

export const SYNC_TOPIC_ROOT = 'outpost/v1/sync/';
export const SYNC_BROKER_USER_PREFIX = 'outpost-sync:';
const SYNC_BROKER_AUTH_DOMAIN = new TextEncoder().encode('outpost/sync-broker/v1\0');

export function syncTopic(responder: string, session: string, dir: 'i' | 'r'): string {
  return `${SYNC_TOPIC_ROOT}${responder}/${session}/${dir}`;
}

export function syncBrokerAuthInput(clientId: string): Uint8Array {
  const id = new TextEncoder().encode(clientId);
  const out = new Uint8Array(SYNC_BROKER_AUTH_DOMAIN.length + id.length);
  out.set(SYNC_BROKER_AUTH_DOMAIN);
  out.set(id, SYNC_BROKER_AUTH_DOMAIN.length);
  return out;
}
