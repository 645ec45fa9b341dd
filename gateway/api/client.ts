/**
 * A small client for the query API as a signed principal: each
 * request is signed anew (RFC 9421, fresh `created` and `nonce`) with the
 * principal's Ed25519 seed. Used by `gateway log query --remote`; apps can
 * copy it (it needs only node:crypto and fetch).
 */
import { readFileSync } from 'node:fs';
import type { ApiFrame } from './decode.js';
import { signRequest } from './signed-request.js';

/** A refusal from the API: status, stable code, message (a 403 also names the policy and the missing permission). */
export class RemoteApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'RemoteApiError';
  }
}

/** Reads a principal key file: 64 hex digits, an Ed25519 seed (`gateway policy keygen --out FILE`). */
export function readPrincipalKey(file: string): Uint8Array {
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/i.test(text))
    throw new Error(`${file} must hold 64 hex digits (an Ed25519 seed, as written by \`gateway policy keygen\`)`);
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

/** GET `target` (path and query) from `base`, signed by `seed`. */
export async function signedGet(
  base: string,
  target: string,
  seed: Uint8Array,
  init: { signal?: AbortSignal } = {},
): Promise<Response> {
  const url = new URL(target, base);
  // Sign exactly the path and query that go on the wire.
  const headers = signRequest('GET', url.pathname + url.search, seed);
  return fetch(url, { headers: { ...headers }, ...(init.signal && { signal: init.signal }) });
}

async function failure(r: Response): Promise<RemoteApiError> {
  let body: { error?: { code?: string; message?: string } & Record<string, unknown> } = {};
  try {
    body = (await r.json()) as typeof body;
  } catch {
    // not JSON: keep the status only
  }
  const { code = `http-${r.status}`, message = r.statusText, ...details } = body.error ?? {};
  return new RemoteApiError(r.status, code, message, details);
}

export interface RemoteQuery {
  readonly device?: string;
  readonly since?: number;
  readonly until?: number;
  readonly policy?: string;
  /** A gateway id (of the remote's config), did:key or hex key: only the frames it heard. */
  readonly heardBy?: string;
  /** Only the frames the remote gateway heard itself. */
  readonly local?: boolean;
  /** Frames in all (pages of up to 1000 are fetched until then). */
  readonly limit?: number;
}

/** Every frame the principal may read that matches, page by page. Throws RemoteApiError on a refusal. */
export async function* remoteFrames(base: string, seed: Uint8Array, q: RemoteQuery): AsyncGenerator<ApiFrame> {
  let left = q.limit ?? Infinity;
  let after: string | null = null;
  for (;;) {
    const p = new URLSearchParams();
    if (q.device !== undefined) p.set('device', q.device);
    if (q.since !== undefined) p.set('since', String(q.since));
    if (q.until !== undefined) p.set('until', String(q.until));
    if (q.policy !== undefined) p.set('policy', q.policy);
    if (q.heardBy !== undefined) p.set('heardBy', q.heardBy);
    if (q.local) p.set('local', 'true');
    p.set('limit', String(Math.min(1000, left)));
    if (after !== null) p.set('after', after);
    const r = await signedGet(base, `/api/frames?${p}`, seed);
    if (!r.ok) throw await failure(r);
    const page = (await r.json()) as { frames: (ApiFrame & { policy?: string })[]; more: boolean; next: string | null };
    for (const f of page.frames) {
      yield f;
      if (--left <= 0) return;
    }
    if (!page.more || page.next === null) return;
    after = page.next;
  }
}
