/**
 * HTTP Message Signatures (RFC 9421) with `ed25519` (§3.3.6), as the query API
 * and its clients use them (issue 6: requests signed by a principal).
 *
 * A request covers `("@method" "@path" "@query" "content-digest")` with the
 * parameters `created`, `keyid` (the principal's did:key), `alg="ed25519"` and
 * a random `nonce`; `Content-Digest` is RFC 9530 `sha-256=:…:` of the body
 * (empty for a GET). Only what that needs of RFC 8941 structured fields is
 * parsed: a dictionary of inner lists of strings with string, token and
 * integer parameters (Signature-Input), and of byte sequences (Signature).
 */
import { createHash } from 'node:crypto';
import { fail, ok, type Result } from '../../protocols/index.js';

export type SfParam = string | number | { readonly token: string };

export interface SignatureParams {
  /** Covered components in order: `@method`, `@path`, … or lowercase header names. */
  readonly components: readonly string[];
  /** Parameters in the order they appear (the signature base repeats them verbatim). */
  readonly params: readonly (readonly [string, SfParam])[];
}

/** What the signature base reads from a request. */
export interface RequestParts {
  readonly method: string;
  /** The request target as sent (`/api/frames?device=x`). */
  readonly target: string;
  /** Host header (for `@authority`). */
  readonly authority?: string;
  /** A header's value (lowercase name), or undefined. */
  header(name: string): string | undefined;
}

export const REQUIRED_COMPONENTS = ['@method', '@path', '@query', 'content-digest'] as const;

const KEY = /^[a-z*][a-z0-9_\-.*]{0,63}$/;
const TOKEN = /^[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*$/;

function serializeParam(v: SfParam): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `"${v.replace(/[\\"]/g, (c) => '\\' + c)}"`;
  return v.token;
}

/** The inner-list serialization (RFC 8941 §4.1.1.1) that Signature-Input carries and `@signature-params` repeats. */
export function serializeSignatureParams(p: SignatureParams): string {
  return `(${p.components.map((c) => `"${c}"`).join(' ')})${p.params.map(([k, v]) => `;${k}=${serializeParam(v)}`).join('')}`;
}

/** Base64 of the SHA-256 of the body, as an RFC 9530 Content-Digest value. */
export function contentDigest(body: Uint8Array | string = ''): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

/** One component's value; undefined when the request does not have it. */
function componentValue(req: RequestParts, name: string): string | undefined {
  const q = req.target.indexOf('?');
  switch (name) {
    case '@method':
      return req.method.toUpperCase();
    case '@path':
      return q < 0 ? req.target : req.target.slice(0, q);
    case '@query':
      return q < 0 ? '?' : req.target.slice(q); // §2.2.7: "?" alone when there is none
    case '@authority':
      return req.authority?.toLowerCase();
    case '@request-target':
      return req.target;
    default: {
      if (name.startsWith('@')) return undefined;
      const v = req.header(name);
      // §2.1: leading and trailing whitespace removed.
      return v === undefined ? undefined : v.trim();
    }
  }
}

/** The signature base (§2.5); a wire error when a covered component is absent or repeated. */
export function signatureBase(req: RequestParts, p: SignatureParams): Result<string> {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const c of p.components) {
    if (seen.has(c)) return fail('signature/malformed', `component "${c}" covered twice`);
    seen.add(c);
    const v = componentValue(req, c);
    if (v === undefined) return fail('signature/missing-component', `covered component "${c}" is not in the request`);
    if (/[\r\n]/.test(v)) return fail('signature/malformed', `component "${c}" holds a line break`);
    lines.push(`"${c}": ${v}`);
  }
  lines.push(`"@signature-params": ${serializeSignatureParams(p)}`);
  return ok(lines.join('\n'));
}

// ---------------------------------------------------------------------------
// RFC 8941 dictionary parsing (only the shapes above)

class Cursor {
  i = 0;
  constructor(readonly s: string) {}
  peek(): string | undefined {
    return this.s[this.i];
  }
  ws(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }
  sp(): void {
    while (this.s[this.i] === ' ') this.i++;
  }
  match(re: RegExp): string | undefined {
    const m = re.exec(this.s.slice(this.i));
    if (m?.index !== 0) return undefined;
    this.i += m[0].length;
    return m[0];
  }
}

function parseKey(c: Cursor): string | undefined {
  return c.match(/^[a-z*][a-z0-9_\-.*]*/);
}

function parseString(c: Cursor): string | undefined {
  if (c.peek() !== '"') return undefined;
  c.i++;
  let out = '';
  for (;;) {
    const ch = c.s[c.i++];
    if (ch === undefined) return undefined;
    if (ch === '"') return out;
    if (ch === '\\') {
      const n = c.s[c.i++];
      if (n !== '"' && n !== '\\') return undefined;
      out += n;
    } else if (ch < ' ' || ch > '~') return undefined;
    else out += ch;
  }
}

function parseBareItem(c: Cursor): SfParam | undefined {
  const ch = c.peek();
  if (ch === '"') return parseString(c);
  if (ch !== undefined && /[-0-9]/.test(ch)) {
    const n = c.match(/^-?\d{1,15}/);
    return n === undefined ? undefined : Number(n);
  }
  const t = c.match(/^[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*/);
  return t === undefined ? undefined : { token: t };
}

function parseParams(c: Cursor): [string, SfParam][] | undefined {
  const out: [string, SfParam][] = [];
  while (c.peek() === ';') {
    c.i++;
    c.sp();
    const k = parseKey(c);
    if (k === undefined) return undefined;
    let v: SfParam = { token: '?1' };
    if (c.peek() === '=') {
      c.i++;
      const b = parseBareItem(c);
      if (b === undefined) return undefined;
      v = b;
    }
    if (out.some(([x]) => x === k)) return undefined;
    out.push([k, v]);
  }
  return out;
}

/** Parses a dictionary whose members are `parse`d; a wire error for anything else. */
function parseDictionary<T>(value: string, member: (c: Cursor) => T | undefined, what: string): Result<Map<string, T>> {
  if (value.length > 4096) return fail('signature/malformed', `${what} is too long`);
  const c = new Cursor(value);
  const out = new Map<string, T>();
  c.sp();
  while (c.i < value.length) {
    const k = parseKey(c);
    if (k === undefined || c.peek() !== '=') return fail('signature/malformed', `${what}: expected label=… at ${c.i}`);
    c.i++;
    const v = member(c);
    if (v === undefined) return fail('signature/malformed', `${what}: bad value for "${k}"`);
    out.set(k, v);
    c.ws();
    if (c.i >= value.length) break;
    if (c.peek() !== ',') return fail('signature/malformed', `${what}: expected "," at ${c.i}`);
    c.i++;
    c.ws();
    if (c.i >= value.length) return fail('signature/malformed', `${what}: trailing comma`);
  }
  return ok(out);
}

/** Signature-Input: label → covered components and parameters. */
export function parseSignatureInput(value: string): Result<Map<string, SignatureParams>> {
  return parseDictionary(
    value,
    (c) => {
      if (c.peek() !== '(') return undefined;
      c.i++;
      const components: string[] = [];
      for (;;) {
        c.sp();
        if (c.peek() === ')') {
          c.i++;
          break;
        }
        const s = parseString(c);
        if (s === undefined || (c.peek() !== ' ' && c.peek() !== ')')) return undefined;
        components.push(s);
      }
      const params = parseParams(c);
      return params && { components, params };
    },
    'Signature-Input',
  );
}

/** Signature: label → signature bytes. */
export function parseSignature(value: string): Result<Map<string, Uint8Array>> {
  return parseDictionary(
    value,
    (c) => {
      const b = c.match(/^:[A-Za-z0-9+/=]*:/);
      if (b === undefined) return undefined;
      const params = parseParams(c);
      return params && new Uint8Array(Buffer.from(b.slice(1, -1), 'base64'));
    },
    'Signature',
  );
}

export const isToken = (s: string): boolean => TOKEN.test(s);
export const isKey = (s: string): boolean => KEY.test(s);
