/** Small HTTP plumbing for the API: JSON replies, typed errors, bounded query parsing. */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request the API refuses: status, a stable code and a message for people. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Extra fields of the error object (a 403 names the policy and the missing permission). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const MAX_URL_BYTES = 2048;
const MAX_BODY_BYTES = 0;

/** A JSON body already encoded (a page of frames: frames-json.ts): sendJson sends its bytes as they are. */
export class JsonBytes {
  constructor(readonly bytes: Buffer) {}
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  // Encoded once: Buffer.byteLength and then res.end of the string would each walk it. A body
  // encoded already (JsonBytes) is sent as it is.
  const bytes = body instanceof JsonBytes ? body.bytes : Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': bytes.length,
    ...SECURITY_HEADERS,
    ...headers,
  });
  res.end(bytes);
}

export function sendError(res: ServerResponse, e: ApiError): void {
  sendJson(res, e.status, { error: { code: e.code, message: e.message, ...e.details } }, e.headers);
}

export function sendText(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    ...SECURITY_HEADERS,
    ...extra,
  });
  res.end(body);
}

/** Refuses requests this API cannot take: over-long URLs and any request body (every route is a GET). */
export function checkRequestShape(req: IncomingMessage): void {
  if ((req.url ?? '').length > MAX_URL_BYTES)
    throw new ApiError(414, 'uri-too-long', `request URLs are limited to ${MAX_URL_BYTES} bytes`);
  const len = Number(req.headers['content-length'] ?? 0);
  if (req.headers['transfer-encoding'] !== undefined || !(len <= MAX_BODY_BYTES)) {
    throw new ApiError(413, 'body-not-allowed', 'this API takes no request bodies');
  }
}

/** Query parameters, refusing unknown and repeated ones. */
export function queryParams(url: URL, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of url.searchParams) {
    if (!allowed.includes(k))
      throw new ApiError(400, 'bad-query', `unknown query parameter "${k}" (allowed: ${allowed.join(', ') || 'none'})`);
    if (out.has(k)) throw new ApiError(400, 'bad-query', `query parameter "${k}" given more than once`);
    out.set(k, v);
  }
  return out;
}

/** An epoch-ms integer or an ISO 8601 date. */
export function parseTimeParam(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = /^\d{1,16}$/.test(v) ? Number(v) : /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : NaN;
  if (!Number.isSafeInteger(t) || t < 0)
    throw new ApiError(
      400,
      'bad-query',
      `${name} must be epoch milliseconds or an ISO 8601 date, not "${v.slice(0, 40)}"`,
    );
  return t;
}

export function parseIntParam(name: string, v: string | undefined, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max))
    throw new ApiError(400, 'bad-query', `${name} must be an integer from ${min} to ${max}, not "${v.slice(0, 40)}"`);
  return n;
}
