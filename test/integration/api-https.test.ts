/**
 * The API beyond loopback: refused at start without TLS (the admin token would cross the network
 * in clear); with `api.tls` it serves HTTPS with the gateway's certificate, which a client that
 * trusts that certificate reaches with the admin token, and plain HTTP on that port gets nothing.
 */
import { readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { running, startScopedGateway, testTempDir } from '../helpers/env.js';

const fetchStatus = (
  get: typeof httpsGet | typeof httpGet,
  url: string,
  opts: Record<string, unknown>,
): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const req = get(url, opts, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
  });

describe('API beyond loopback', () => {
  it('refuses to start plain HTTP on 0.0.0.0', async () => {
    await expect(startScopedGateway([], { api: { enabled: true, host: '0.0.0.0', port: 0 } })).rejects.toThrow(
      /beyond loopback without TLS/,
    );
  });

  it("serves HTTPS with the gateway's certificate; plain HTTP on that port gets no answer", async () => {
    const dir = testTempDir('outpost-https-');
    const { gw } = await startScopedGateway([], { api: { enabled: true, host: '0.0.0.0', port: 0, tls: true } }, dir);
    const port = running(gw, 'api').port;
    const ca = readFileSync(gw.tls!.certFile);
    const token = readFileSync(join(dir, 'api-token'), 'utf8').trim();
    const auth = { headers: { authorization: `Bearer ${token}` } };

    const ok = await fetchStatus(httpsGet, `https://127.0.0.1:${port}/api/status`, { ca, ...auth });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ gateway: gw.config.gateway.id });
    // Without the token: 401; without trusting the certificate: no connection.
    expect((await fetchStatus(httpsGet, `https://127.0.0.1:${port}/api/status`, { ca })).status).toBe(401);
    await expect(fetchStatus(httpsGet, `https://127.0.0.1:${port}/api/status`, auth)).rejects.toThrow(/certificate/i);
    await expect(fetchStatus(httpGet, `http://127.0.0.1:${port}/api/status`, auth)).rejects.toThrow();
  });
});
