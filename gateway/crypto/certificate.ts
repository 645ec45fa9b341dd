/**
 * The gateway's TLS certificate: one the user supplies (PEM files), or a
 * self-signed one created at first start in `<dataDir>/tls/` (key 0600).
 *
 * Node has no X.509 writer, so this writes the few DER structures a
 * self-signed certificate needs (RFC 5280 §4.1, DER per X.690) and signs the
 * TBSCertificate with node:crypto: ECDSA P-256 with SHA-256 (RFC 5758 §3.2),
 * the key every TLS stack on a microcontroller (mbedTLS, wolfSSL, BearSSL)
 * can verify. Subject alternative names: localhost, the host name, the
 * loopback and interface addresses at creation, and any names given.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writeFileWhole } from '../store/whole-file.js';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 of the DER certificate, colon-separated hex (as `openssl x509 -fingerprint -sha256` prints it). */
  readonly fingerprint: string;
  readonly certFile: string;
  /** Whether it was created just now. */
  readonly created: boolean;
}

// --- DER (X.690 §8, §10) ---
const der = (tag: number, ...parts: Uint8Array[]): Buffer => {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
};
const seq = (...p: Uint8Array[]): Buffer => der(0x30, ...p);
const set = (...p: Uint8Array[]): Buffer => der(0x31, ...p);
const oid = (dotted: string): Buffer => {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const v of rest) {
    const bytes = [v & 0x7f];
    for (let x = v >>> 7; x > 0; x >>>= 7) bytes.unshift((x & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return der(0x06, Buffer.from(out));
};
const utf8 = (s: string): Buffer => der(0x0c, Buffer.from(s, 'utf8'));
const bool = (v: boolean): Buffer => der(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Uint8Array): Buffer => der(0x04, b);
const bits = (b: Uint8Array): Buffer => der(0x03, Buffer.from([0]), b);
/** A positive INTEGER from big-endian bytes (a leading 0 when the top bit is set). */
const uint = (b: Uint8Array): Buffer => der(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
const time = (d: Date): Buffer => {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2))) : der(0x18, Buffer.from(iso));
};

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

/** GeneralName for a subjectAltName: dNSName [2] or iPAddress [7]. */
function altName(name: string): Buffer {
  const v = isIP(name);
  if (v === 4) return der(0x87, Buffer.from(name.split('.').map(Number)));
  if (v === 6) {
    const [head = '', tail = ''] = name.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = name.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    return der(0x87, Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff])));
  }
  return der(0x82, Buffer.from(name, 'ascii'));
}

/** Names for the certificate: localhost, the host name, loopback and interface addresses, and `extra`. */
function defaultNames(extra: readonly string[] = []): string[] {
  const names = new Set(['localhost', hostname(), '127.0.0.1', '::1', ...extra]);
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (!a.address.startsWith('fe80')) names.add(a.address.split('%')[0]!);
  return [...names].filter((n) => n.length > 0 && /^[A-Za-z0-9.:*-]+$/.test(n));
}

/** A self-signed ECDSA P-256 certificate (PEM) valid from now for `days`. */
function createSelfSigned(commonName: string, names: readonly string[], days = 3650): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const subject = seq(set(seq(oid('2.5.4.3'), utf8(commonName.slice(0, 64)))));
  const now = Date.now();
  const keyId = createHash('sha1').update(spki).digest();
  const serial = randomBytes(16);
  // Positive, and a non-zero first byte: DER integers are minimal (X.690 §8.3.2), so a leading
  // 0x00 before a byte under 0x80 is "illegal padding" and the certificate does not parse (1 in 128).
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const ext = (id: string, critical: boolean, value: Buffer): Buffer =>
    seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
  const extensions = der(
    0xa3,
    seq(
      ext('2.5.29.19', true, seq(bool(true))), // basicConstraints cA: it is its own trust anchor
      ext('2.5.29.15', true, bits(Buffer.from([0x84]))), // keyUsage digitalSignature, keyCertSign
      ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage serverAuth
      ext('2.5.29.14', false, octets(keyId)), // subjectKeyIdentifier
      ext('2.5.29.17', false, seq(...names.map(altName))),
    ),
  );
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))), // v3
    uint(serial),
    ECDSA_SHA256,
    subject,
    seq(time(new Date(now - 3600_000)), time(new Date(now + days * 86_400_000))),
    subject,
    spki,
    extensions,
  );
  const signature = sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const cert = seq(tbs, ECDSA_SHA256, bits(signature));
  const pem = (label: string, body: Buffer): string =>
    `-----BEGIN ${label}-----\n${body.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;
  return { cert: pem('CERTIFICATE', cert), key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

const fingerprintOf = (certPem: string): string => new X509Certificate(certPem).fingerprint256;

/**
 * The certificate to serve: the user's `cert`/`key` files when given, else
 * `<dataDir>/tls/cert.pem` and `key.pem`, created on first use.
 */
export function loadOrCreateTls(
  dataDir: string,
  opts: {
    readonly cert?: string;
    readonly key?: string;
    readonly names?: readonly string[];
    readonly commonName: string;
  },
): TlsMaterial {
  if (opts.cert !== undefined || opts.key !== undefined) {
    if (opts.cert === undefined || opts.key === undefined) throw new Error('tls.cert and tls.key go together');
    const cert = readFileSync(opts.cert, 'utf8');
    return {
      cert,
      key: readFileSync(opts.key, 'utf8'),
      fingerprint: fingerprintOf(cert),
      certFile: opts.cert,
      created: false,
    };
  }
  const dir = join(dataDir, 'tls');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  let created = false;
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true });
    const { cert, key } = createSelfSigned(opts.commonName, defaultNames(opts.names));
    // Each whole or not at all: a disk filling midway leaves no torn PEM to fail the next start.
    writeFileWhole(keyFile, key, { mode: 0o600 });
    writeFileWhole(certFile, cert, { mode: 0o644 });
    created = true;
  }
  chmodSync(keyFile, 0o600);
  const cert = readFileSync(certFile, 'utf8');
  return { cert, key: readFileSync(keyFile, 'utf8'), fingerprint: fingerprintOf(cert), certFile, created };
}
