/**
 * The self-signed certificate made at first start parses, whatever its random serial: a DER
 * integer with a needless leading zero byte is refused by OpenSSL ("illegal padding"), which a
 * random 16-byte serial used to hit once in 128 starts. 300 certificates (each its own key and
 * serial) would meet that case with probability 1 − (127/128)^300 ≈ 90 %.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadOrCreateTls } from '../../gateway/crypto/certificate.js';

describe('self-signed TLS certificate', () => {
  it('parses for every random serial, positive and minimally encoded', () => {
    const root = mkdtempSync(join(tmpdir(), 'outpost-cert-'));
    try {
      for (let i = 0; i < 300; i++) {
        const t = loadOrCreateTls(join(root, String(i)), { commonName: 'gw-test', names: ['gw.local'] });
        const cert = new X509Certificate(t.cert);
        expect(cert.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
        expect(cert.checkHost('gw.local')).toBe('gw.local');
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
