/**
 * RFC 9421 HTTP Message Signatures (gateway/api/http-sig.ts, signed-request.ts):
 * the Appendix B.2.6 ed25519 vector, our request profile (required components,
 * freshness window, nonce replay, content digest), and parsers that never throw.
 */
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicKeyToDidKey } from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import {
  parseSignature,
  parseSignatureInput,
  type RequestParts,
  serializeSignatureParams,
  signatureBase,
} from '../../gateway/api/http-sig.js';
import { ReplayGuard, signRequest, verifyRequest } from '../../gateway/api/signed-request.js';

const b64u = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'));

function parts(method: string, target: string, headers: Record<string, string>, authority?: string): RequestParts {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, target, ...(authority !== undefined && { authority }), header: (n) => h[n] };
}

describe('RFC 9421 Appendix B.2.6 (ed25519)', () => {
  // B.1.4 test-key-ed25519 (JWK d and x).
  const seed = b64u('n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU');
  const input =
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"';
  const req = parts(
    'POST',
    '/foo?param=Value&Pet=dog',
    {
      Host: 'example.com',
      Date: 'Tue, 20 Apr 2021 02:07:55 GMT',
      'Content-Type': 'application/json',
      'Content-Length': '18',
    },
    'example.com',
  );

  it('builds the signature base of §B.2.6 and signs it to the published signature', () => {
    expect(Buffer.from(publicKeyFromSeed(seed)).toString('base64url')).toBe(
      'JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs',
    );
    const p = parseSignatureInput(input);
    expect(p.ok).toBe(true);
    const params = p.ok ? p.value.get('sig-b26')! : undefined!;
    expect(`sig-b26=${serializeSignatureParams(params)}`).toBe(input);
    const base = signatureBase(req, params);
    expect(base.ok && base.value).toBe(
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@authority": example.com',
        '"content-type": application/json',
        '"content-length": 18',
        '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
      ].join('\n'),
    );
    const sig = signEd25519(seed, new TextEncoder().encode(base.ok ? base.value : ''));
    const expected = parseSignature(
      'sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:',
    );
    expect(expected.ok && Buffer.from(expected.value.get('sig-b26')!).equals(Buffer.from(sig))).toBe(true);
  });
});

describe('signed query requests', () => {
  const seed = new Uint8Array(32).fill(9);
  const did = publicKeyToDidKey(publicKeyFromSeed(seed));
  const now = 1_760_000_000_000;
  const signed = (target = '/api/frames?device=press-01', o: { created?: number; nonce?: string } = {}) => ({
    target,
    h: signRequest('GET', target, seed, { created: Math.floor(now / 1000), ...o }),
  });
  const verify = (target: string, h: Record<string, string>, guard = new ReplayGuard(300_000), at = now) =>
    verifyRequest(parts('GET', target, h), { now: at, replay: guard });
  const code = (r: ReturnType<typeof verify>): string => (r.ok ? 'ok' : r.error.code);

  it('verifies a request signed by the principal and names it by did:key', () => {
    const { target, h } = signed();
    const r = verify(target, { ...h });
    expect(r.ok && r.value.did).toBe(did);
    expect(h['signature-input']).toMatch(
      /^outpost=\("@method" "@path" "@query" "content-digest"\);created=\d+;keyid="did:key:z6Mk[^"]+";alg="ed25519";nonce="[^"]+"$/,
    );
  });

  it('refuses changed requests, stale, future, replayed and unsigned ones with distinct codes (401)', () => {
    const { target, h } = signed();
    expect(code(verify('/api/frames?device=press-02', h))).toBe('signature/invalid'); // @query changed
    expect(code(verify('/api/devices?device=press-01', h))).toBe('signature/invalid'); // @path changed
    expect(code(verifyRequest(parts('HEAD', target, h), { now, replay: new ReplayGuard(300_000) }))).toBe(
      'signature/invalid',
    ); // @method
    expect(code(verify(target, { ...h, 'content-digest': 'sha-256=:AAAA:' }))).toBe('signature/bad-digest');
    expect(code(verify(target, {}))).toBe('signature/missing');
    expect(code(verify(target, { ...h, signature: 'outpost=:' + Buffer.alloc(64).toString('base64') + ':' }))).toBe(
      'signature/invalid',
    );
    expect(code(verify(target, h, new ReplayGuard(300_000), now + 301_000))).toBe('signature/stale');
    expect(code(verify(target, h, new ReplayGuard(300_000), now - 60_000))).toBe('signature/future');
    const guard = new ReplayGuard(300_000);
    expect(code(verify(target, h, guard))).toBe('ok');
    expect(code(verify(target, h, guard))).toBe('signature/replayed');
    // The same nonce is usable again only once the window has passed (and then the signature is stale anyway).
    expect(code(verify(target, h, guard, now + 1000))).toBe('signature/replayed');
  });

  it('refuses signatures that do not cover the required components, or use another alg or key form', () => {
    const { target, h } = signed();
    const fewer = h['signature-input'].replace('"@query" ', '');
    expect(code(verify(target, { ...h, 'signature-input': fewer }))).toBe('signature/missing-component');
    expect(
      code(
        verify(target, {
          ...h,
          'signature-input': h['signature-input'].replace('alg="ed25519"', 'alg="rsa-pss-sha512"'),
        }),
      ),
    ).toBe('signature/bad-alg');
    expect(
      code(
        verify(target, {
          ...h,
          'signature-input': h['signature-input'].replace(/keyid="[^"]+"/, 'keyid="test-key-ed25519"'),
        }),
      ),
    ).toBe('signature/bad-keyid');
    expect(code(verify(target, { ...h, 'signature-input': h['signature-input'].replace(/;nonce="[^"]+"/, '') }))).toBe(
      'signature/bad-nonce',
    );
  });

  it('a forged request does not burn the nonce (the guard remembers only verified ones)', () => {
    const { target, h } = signed();
    const guard = new ReplayGuard(300_000);
    expect(code(verify('/api/frames?device=x', h, guard))).toBe('signature/invalid');
    expect(code(verify(target, h, guard))).toBe('ok');
  });

  it('the worked example and the dependency-free Node snippet of gateway/api/README.md hold', () => {
    const one = new Uint8Array(32).fill(1);
    expect(
      signRequest('GET', '/api/frames?device=press-01&limit=10', one, {
        created: 1764050000,
        nonce: 'q8Jd0Vt1mX0yYw5kP3rZgA',
      }),
    ).toEqual({
      'content-digest': 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:',
      'signature-input':
        'outpost=("@method" "@path" "@query" "content-digest");created=1764050000;keyid="did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX";alg="ed25519";nonce="q8Jd0Vt1mX0yYw5kP3rZgA"',
      signature: 'outpost=:H+NEKeHkCsVZdGvHOokXpZj8WKUbnZDbARSWiFroszCj0lFAmjsqdWVbFHcHXlbqeHX1m/PXt5MEzS5QfhbSBQ==:',
    });
    // The README's snippet, as an app would write it (node:crypto only).
    const key = createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seed)]),
      format: 'der',
      type: 'pkcs8',
    });
    for (const target of ['/api/frames?device=press-01', '/api/whoami']) {
      const [path, query = ''] = target.split('?');
      const digest = `sha-256=:${createHash('sha256').update('').digest('base64')}:`;
      const params = `("@method" "@path" "@query" "content-digest");created=${Math.floor(now / 1000)};keyid="${did}";alg="ed25519";nonce="${randomBytes(16).toString('base64url')}"`;
      const base = [
        `"@method": GET`,
        `"@path": ${path}`,
        `"@query": ?${query}`,
        `"content-digest": ${digest}`,
        `"@signature-params": ${params}`,
      ].join('\n');
      const headers = {
        'content-digest': digest,
        'signature-input': `outpost=${params}`,
        signature: `outpost=:${sign(null, Buffer.from(base), key).toString('base64')}:`,
      };
      expect(code(verify(target, headers))).toBe('ok');
    }
  });

  it('the structured-field parsers never throw and refuse what is not a dictionary (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        expect(() => parseSignatureInput(s)).not.toThrow();
        expect(() => parseSignature(s)).not.toThrow();
        expect(() => verify('/api/frames', { 'signature-input': s, signature: s, 'content-digest': s })).not.toThrow();
      }),
    );
    expect(parseSignatureInput('a=("x" "y");created=1, b=("z")').ok).toBe(true);
    for (const bad of ['a=(x)', 'a=("x"', 'a=("x");k=', 'A=("x")', 'a=("x"),', 'a=("x");k=1;k=2'])
      expect(parseSignatureInput(bad).ok).toBe(false);
  });
});
