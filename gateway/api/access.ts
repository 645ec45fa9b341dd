/**
 * Who is calling the API, and what it may see.
 *
 * Two kinds of caller:
 * - the operator, with `Authorization: Bearer <admin token>`: the whole
 *   operator surface (dashboard data, status, devices, metrics) and every frame;
 * - a principal (app, operator key, cloud peer, gateway), with a request signed
 *   under RFC 9421 by its Ed25519 key (signed-request.ts): the data routes only
 *   (`/api/frames`, `/api/log/frames`, `/api/feed`, `/api/whoami`), and only frames whose policy
 *   gives it `read`. A frame's policy is the stream of the log block holding it.
 */
import type { IncomingMessage } from 'node:http';
import type { ApiSource } from './source.js';
import type { CheckResult } from '../policy/permissions.js';
import { ApiError } from './http.js';
import { DEFAULT_MAX_AGE_SECONDS, ReplayGuard, verifyRequest } from './signed-request.js';
import { checkBearer } from './token.js';

export type Caller = { readonly kind: 'operator' } | { readonly kind: 'principal'; readonly did: string };

/** Routes a signed principal may use; everything else is the operator's. */
const PRINCIPAL_ROUTES: ReadonlySet<string> = new Set(['/api/frames', '/api/log/frames', '/api/feed', '/api/whoami']);

export class ApiAccess {
  private readonly replay = new ReplayGuard(DEFAULT_MAX_AGE_SECONDS * 1000);

  constructor(
    private readonly gw: ApiSource,
    private readonly token: string,
  ) {}

  /** The caller of a request; 401 (with the reason) when it is neither the operator nor a valid signer. */
  authenticate(req: IncomingMessage): Caller {
    if (req.headers.authorization !== undefined) {
      if (checkBearer(req.headers.authorization, this.token)) return { kind: 'operator' };
      throw unauthorized('bad-token', 'send Authorization: Bearer <token> (the admin token file is printed at start)');
    }
    const header = (n: string): string | undefined => {
      const v = req.headers[n];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    if (header('signature-input') === undefined && header('signature') === undefined) {
      throw unauthorized(
        'missing',
        'send Authorization: Bearer <admin token>, or sign the request (RFC 9421, ed25519, keyid = your did:key)',
      );
    }
    const r = verifyRequest(
      {
        method: req.method ?? 'GET',
        target: req.url ?? '/',
        ...(req.headers.host !== undefined && { authority: req.headers.host }),
        header,
      },
      { now: Date.now(), replay: this.replay },
    );
    if (!r.ok) {
      if (r.error.code === 'signature/replay-cache-full')
        throw new ApiError(503, r.error.code, r.error.message, { 'retry-after': '5' });
      throw unauthorized(r.error.code, r.error.message);
    }
    return { kind: 'principal', did: r.value.did };
  }

  /** 403 for a principal on an operator route. */
  route(caller: Caller, path: string): void {
    if (caller.kind === 'principal' && !PRINCIPAL_ROUTES.has(path)) {
      throw new ApiError(
        403,
        'operator-only',
        `${path} is part of the operator surface (admin token); signed principals may use ${[...PRINCIPAL_ROUTES].join(', ')}`,
      );
    }
  }

  /** May the caller read data of `policy`? The operator may read everything. */
  check(caller: Caller, policy: string): CheckResult {
    if (caller.kind === 'operator') return { allowed: true };
    return this.gw.policies.permissions.check(caller.did, 'read', policy);
  }

  /** A per-request (or per-feed) memo of `check`, forgotten when the permissions change. */
  checker(caller: Caller): (policy: string) => CheckResult {
    const memo = new Map<string, CheckResult>();
    let generation = this.generation;
    return (policy) => {
      if (generation !== this.generation) {
        memo.clear();
        generation = this.generation;
      }
      let r = memo.get(policy);
      if (!r) memo.set(policy, (r = this.check(caller, policy)));
      return r;
    };
  }

  private generation = 0;
  private sub?: { unsubscribe(): void };

  /** Starts following permission changes (grants, revocations), so live feeds re-check. */
  follow(): void {
    this.sub = this.gw.policies.permissions.changes$.subscribe(() => this.generation++);
  }

  close(): void {
    this.sub?.unsubscribe();
  }
}

/** Every 401 has the code `unauthorized`; `reason` says which check failed (`bad-token`, `signature/stale`, …). */
function unauthorized(reason: string, message: string): ApiError {
  return new ApiError(
    401,
    'unauthorized',
    message,
    { 'www-authenticate': 'Bearer realm="outpost", Signature realm="outpost"' },
    { reason },
  );
}

/** The 403 a principal gets for a policy it may not read: names the policy and the missing permission. */
export function forbidden(r: Extract<CheckResult, { allowed: false }>): ApiError {
  return new ApiError(
    403,
    'forbidden',
    `no read permission on policy ${r.policy}: missing ${r.missing} (${r.reason})`,
    {},
    { policy: r.policy, missing: r.missing },
  );
}
