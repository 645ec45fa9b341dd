/**
 * The operator HTTP API over real TCP against an in-process gateway fed over
 * MQTT: every route with a valid and an invalid request, authentication, the
 * generated token file, bounded requests, the SSE feed and the OpenAPI file.
 */
import { request } from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ReadingBody, signBody, topics } from '../../protocols/index.js';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import type { Gateway } from '../../gateway/gateway.js';
import { testDevice } from '../helpers/devices.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { collectSse } from '../helpers/sse.js';

const alice = testDevice('alice');
const bob = testDevice('bob');

/** A reading from alice with battery and signal records as well as a temperature. */
function aliceFrame(seq: number, temp: number): Uint8Array {
  const body: ReadingBody = {
    type: 'reading',
    boot: 1,
    seq,
    time: Date.now(),
    records: [
      { bn: 'alice:', n: 'temp', u: 'Cel', v: temp },
      { n: 'bat', u: '%EL', v: 87 },
      { n: 'rssi', u: 'dBW', v: -97 },
    ],
  };
  return signBody(body, 'alice', (m) => signEd25519(alice.seed, m));
}

describe('HTTP API', () => {
  const tmp = tempDir();
  let gw: Gateway;
  let base: string;
  let token: string;
  let client: mqtt.MqttClient;
  const t0 = Date.now();

  const get = (path: string, auth: string | null = token, init: RequestInit = {}) =>
    fetch(base + path, { ...init, headers: { ...(auth !== null && { authorization: `Bearer ${auth}` }) } });
  const json = async (path: string, auth: string | null = token) => {
    const r = await get(path, auth);
    return { status: r.status, body: (await r.json()) as Record<string, any> };
  };

  beforeAll(async () => {
    ({ gw } = await startTestGateway(
      tmp.dir,
      [
        { id: alice.id, publicKey: alice.publicKeyHex, model: 'env-1', site: 'lab' } as {
          id: string;
          publicKey: string;
        },
        { id: bob.id, publicKey: bob.publicKeyHex },
      ],
      { api: { port: 0 } },
    ));
    base = `http://127.0.0.1:${running(gw, 'api').port}`;
    token = readFileSync(join(tmp.dir, 'api-token'), 'utf8').trim();
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
      clientId: 'alice',
      reconnectPeriod: 0,
    });
    for (let seq = 1; seq <= 5; seq++)
      await client.publishAsync(topics.up('alice'), Buffer.from(aliceFrame(seq, 20 + seq)), { qos: 1 });
    await client.publishAsync(topics.up('alice'), Buffer.from(testDevice('alice').frame(1, 99)), { qos: 1 }); // forged: wrong key
    await client.publishAsync(topics.up('mallory'), Buffer.from(testDevice('mallory').frame(1, 1)), { qos: 1 }); // not enrolled
  });
  afterAll(async () => {
    await client?.endAsync();
    await gw?.stop();
    tmp.cleanup();
  });

  it('[token] generates the admin token into the data dir with mode 0600 and accepts only it', async () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(join(tmp.dir, 'api-token')).mode & 0o777).toBe(0o600);
    expect(running(gw, 'api').token.file).toBe(join(tmp.dir, 'api-token'));
  });

  it('[auth] every route except /healthz refuses missing, wrong and malformed tokens with 401 JSON', async () => {
    for (const path of [
      '/api/status',
      '/api/devices',
      '/api/devices/alice',
      '/api/siblings',
      '/api/firmware',
      '/api/frames',
      '/api/feed',
      '/metrics',
      '/openapi.json',
      '/api/nope',
    ]) {
      for (const auth of [null, 'x'.repeat(43), token.slice(0, -1), `${token}x`]) {
        const r = await get(path, auth);
        expect(r.status, `${path} with ${auth === null ? 'no' : 'a bad'} token`).toBe(401);
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      }
    }
    const basic = await fetch(base + '/api/status', {
      headers: { authorization: `Basic ${Buffer.from(`u:${token}`).toString('base64')}` },
    });
    expect(basic.status).toBe(401);
  });

  it('[healthz] answers without a token; other methods are refused with 405', async () => {
    expect(await json('/healthz', null)).toEqual({ status: 200, body: { ok: true, gateway: 'gw-test' } });
    const post = await fetch(base + '/healthz', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('[status] valid: counters; invalid: unknown query parameter', async () => {
    const ok = await json('/api/status');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      gateway: 'gw-test',
      devicesEnrolled: 2,
      framesStored: 5,
      ingest: { stored: 5, rejected: { 'bad-signature': 1, 'unknown-device': 1 } },
    });
    const bad = await json('/api/status?verbose=1');
    expect(bad).toMatchObject({
      status: 400,
      body: { error: { code: 'bad-query', message: expect.stringContaining('"verbose"') } },
    });
  });

  it('[devices] lists online state, last frame, readings with history, battery, signal and rejections by reason', async () => {
    await waitFor(() => running(gw, 'api').view.lastFrame('alice')?.seq === 5, 5000, 'device view');
    const { status, body } = await json('/api/devices');
    expect(status).toBe(200);
    const a = body.devices.find((d: { id: string }) => d.id === 'alice');
    expect(a).toMatchObject({
      id: 'alice',
      model: 'env-1',
      site: 'lab',
      online: true,
      revoked: false,
      lastFrame: { boot: 1, seq: 5, transport: 'mqtt' },
      battery: { name: 'bat', value: 87, unit: '%EL' },
      signal: { name: 'rssi', value: -97, unit: 'dBW' },
      rejections: { total: 1, byReason: { 'bad-signature': 1 }, last: { reason: 'bad-signature', transport: 'mqtt' } },
    });
    expect(a.readings.find((r: { name: string }) => r.name === 'temp')).toMatchObject({
      value: 25,
      unit: 'Cel',
      history: [21, 22, 23, 24, 25],
    });
    const b = body.devices.find((d: { id: string }) => d.id === 'bob');
    expect(b).toMatchObject({ online: false, lastFrame: null, readings: [], rejections: { total: 0 } });
    expect(body.unknown).toEqual([
      { id: 'mallory', rejections: expect.objectContaining({ total: 1, byReason: { 'unknown-device': 1 } }) },
    ]);
    expect((await json('/api/devices?all=1')).status).toBe(400);
    // Paged and filtered on the server: a page of one, the rest counted.
    expect(body).toMatchObject({ total: 2, offset: 0, limit: 100 });
    expect(a).toMatchObject({ enrolledHere: true, heardBy: 'gw-test' });
    const second = await json('/api/devices?limit=1&offset=1');
    expect(second.body).toMatchObject({ total: 2, devices: [{ id: 'bob', heardBy: null }] });
    expect((await json('/api/devices?q=ALI')).body.devices.map((d: { id: string }) => d.id)).toEqual(['alice']);
    expect((await json('/api/devices?heardBy=gw-test')).body.total).toBe(1);
  });

  it('[siblings] without sync: no siblings, no forked own streams, no audit yet', async () => {
    expect(await json('/api/siblings')).toMatchObject({
      status: 200,
      body: { sync: false, siblings: [], ownForks: [], audit: null },
    });
  });

  it('[device] one device; 404 for a device not enrolled, 400 for an id that cannot be one', async () => {
    expect(await json('/api/devices/alice')).toMatchObject({ status: 200, body: { id: 'alice', online: true } });
    expect(await json('/api/devices/mallory')).toMatchObject({
      status: 404,
      body: { error: { code: 'unknown-device' } },
    });
    expect(await json('/api/devices/%2Fetc%2Fpasswd')).toMatchObject({
      status: 400,
      body: { error: { code: 'bad-device-id' } },
    });
    expect(await json('/api/devices/%E0%A4%A')).toMatchObject({
      status: 400,
      body: { error: { code: 'bad-request' } },
    });
  });

  it('[frames] query by device, time range and limit returns decoded SenML records', async () => {
    const all = await json('/api/frames?device=alice');
    expect(all.status).toBe(200);
    expect(all.body.more).toBe(false);
    expect(all.body.frames.map((f: { seq: number }) => f.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(all.body.frames[0]).toMatchObject({
      device: 'alice',
      boot: 1,
      type: 'reading',
      transport: 'mqtt',
      records: [
        { name: 'alice:temp', unit: 'Cel', value: 21 },
        { name: 'alice:bat', value: 87 },
        { name: 'alice:rssi', value: -97 },
      ],
    });
    // Paging with the cursor visits every frame once, in order.
    const seqs: number[] = [];
    let after = '';
    for (let pages = 0; pages < 10; pages++) {
      const page = await json(`/api/frames?device=alice&limit=2${after}`);
      expect(page.status).toBe(200);
      seqs.push(...page.body.frames.map((f: { seq: number }) => f.seq));
      if (!page.body.more) {
        expect(page.body.next).toBeNull();
        break;
      }
      expect(page.body.frames).toHaveLength(2);
      after = `&after=${page.body.next}`;
    }
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
    // Across all devices (the time index), one frame per page, frames that share a millisecond included.
    const ids: string[] = [];
    const id = (f: { device: string; boot: number; seq: number }): string => `${f.device}/${f.boot}/${f.seq}`;
    let cursor = '';
    for (let i = 0; i < 20; i++) {
      const page = await json(`/api/frames?limit=1${cursor}`);
      ids.push(...page.body.frames.map(id));
      if (!page.body.more) break;
      cursor = `&after=${page.body.next}`;
    }
    expect(ids).toEqual([...gw.frames.query({})].map(id));
    expect(ids).toHaveLength(5);
    const iso = encodeURIComponent(new Date(t0 - 1000).toISOString());
    expect((await json(`/api/frames?since=${iso}&until=${Date.now() + 1000}`)).body.frames).toHaveLength(5);
    expect((await json(`/api/frames?since=${Date.now() + 60_000}`)).body.frames).toEqual([]);
    expect((await json('/api/frames?device=bob')).body).toEqual({ frames: [], more: false, next: null });
  });

  it('[frames] refuses bad parameters with a message naming the parameter and what is allowed', async () => {
    const cases: [string, string][] = [
      ['limit=0', 'limit must be an integer from 1 to 1000'],
      ['limit=5000', 'limit must be an integer from 1 to 1000'],
      ['limit=1e3', 'limit must be an integer from 1 to 1000'],
      ['since=yesterday', 'since must be epoch milliseconds or an ISO 8601 date'],
      ['until=2026-13-45T00:00:00Z', 'until must be epoch milliseconds or an ISO 8601 date'],
      ['since=2000&until=1000', 'until must not be before since'],
      ['device=a%20b', 'device must match'],
      ['device=alice&device=bob', '"device" given more than once'],
      [
        'order=desc',
        'unknown query parameter "order" (allowed: device, since, until, limit, after, policy, heardBy, local)',
      ],
      ['after=12', 'after must be the "next" cursor of a previous page'],
    ];
    for (const [q, msg] of cases) {
      const r = await json(`/api/frames?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toBe('bad-query');
      expect(r.body.error.message, q).toContain(msg);
    }
  });

  it('[bounds] refuses request bodies (413), over-long URLs (414) and unknown routes (404), all as JSON', async () => {
    const withBody = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        base + '/api/status',
        { method: 'GET', headers: { authorization: `Bearer ${token}`, 'content-length': '5' } },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      req.end('hello');
    });
    expect(withBody.status).toBe(413);
    expect(JSON.parse(withBody.body)).toMatchObject({ error: { code: 'body-not-allowed' } });
    const long = await json(`/api/frames?device=${'a'.repeat(3000)}`);
    expect(long).toMatchObject({ status: 414, body: { error: { code: 'uri-too-long' } } });
    expect(await json('/api/rules')).toMatchObject({ status: 404, body: { error: { code: 'not-found' } } });
  });

  it('[feed] streams durable frames (decoded) and rejections as server-sent events; unauthenticated is 401', async () => {
    expect((await get('/api/feed', null)).status).toBe(401);
    const ctl = new AbortController();
    const res = await fetch(base + '/api/feed', { headers: { authorization: `Bearer ${token}` }, signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { events, reading } = collectSse(res);
    await waitFor(() => events.some((e) => e.event === 'status'), 5000, 'status event');
    await client.publishAsync(topics.up('alice'), Buffer.from(aliceFrame(6, 30)), { qos: 1 });
    await client.publishAsync(topics.up('alice'), Buffer.from(bob.frame(1, 1)), { qos: 1 }); // bob's frame on alice's topic
    await waitFor(() => events.some((e) => e.event === 'rejected'), 5000, 'rejected event');
    const frame = events.find((e) => e.event === 'frame')!;
    expect(frame.data).toMatchObject({
      device: 'alice',
      seq: 6,
      deviceTime: expect.stringMatching(/^\d{4}-/),
      records: [{ name: 'alice:temp', value: 30 }, { name: 'alice:bat' }, { name: 'alice:rssi' }],
    });
    expect(events.find((e) => e.event === 'rejected')!.data).toMatchObject({
      device: 'bob',
      reason: 'device-mismatch',
      transport: 'mqtt',
    }); // the signer (kid), not the topic
    expect(events.filter((e) => e.event === 'frame')).toHaveLength(1); // the rejected frame is never on the feed
    ctl.abort();
    await reading;
    await waitFor(() => running(gw, 'api').feed.size === 0, 2000, 'feed client gone');
  });

  it('[feed-limit] refuses a feed client beyond the limit with 503 and Retry-After, and takes one again when a slot frees', async () => {
    const { MAX_FEED_CLIENTS } = await import('../../gateway/api/feed.js');
    const ctls = Array.from({ length: MAX_FEED_CLIENTS }, () => new AbortController());
    try {
      const open = await Promise.all(ctls.map((c) => get('/api/feed', token, { signal: c.signal })));
      expect(open.every((r) => r.status === 200)).toBe(true);
      const extra = await get('/api/feed');
      expect(extra.status).toBe(503);
      expect(extra.headers.get('retry-after')).toBe('5');
      expect(await extra.json()).toMatchObject({ error: { code: 'too-many-feeds' } });
      ctls[0]!.abort();
      await waitFor(() => running(gw, 'api').feed.size < MAX_FEED_CLIENTS, 2000, 'a feed slot');
      const again = new AbortController();
      expect((await get('/api/feed', token, { signal: again.signal })).status).toBe(200);
      again.abort();
    } finally {
      for (const c of ctls) c.abort();
    }
    await waitFor(() => running(gw, 'api').feed.size === 0, 2000, 'feeds closed');
  });

  it('[openapi] serves the repo file, which describes every route the server answers', async () => {
    const r = await json('/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body).toEqual(
      JSON.parse(readFileSync(new URL('../../gateway/api/openapi.json', import.meta.url), 'utf8')),
    );
    expect(r.body.openapi).toBe('3.1.0');
    expect(Object.keys(r.body.paths).sort()).toEqual([
      '/api/decisions',
      '/api/devices',
      '/api/devices/{id}',
      '/api/feed',
      '/api/firmware',
      '/api/frames',
      '/api/log/frames',
      '/api/series',
      '/api/siblings',
      '/api/status',
      '/api/whoami',
      '/healthz',
      '/metrics',
      '/openapi.json',
    ]);
    // Every $ref resolves.
    const text = JSON.stringify(r.body);
    for (const m of text.matchAll(/"\$ref":"#\/components\/(\w+)\/(\w+)"/g))
      expect(r.body.components[m[1]!][m[2]!], m[0]).toBeDefined();
  });

  it('[openapi-conformance] real responses of the JSON routes, and feed events, match the documented schemas', async () => {
    const doc = JSON.parse(readFileSync(new URL('../../gateway/api/openapi.json', import.meta.url), 'utf8'));
    // zod reads local $defs refs: point the components' refs there.
    const local = (s: unknown) => JSON.parse(JSON.stringify(s).replaceAll('#/components/schemas/', '#/$defs/'));
    const defs = local(doc.components.schemas);
    const schemaFor = (path: string, status: number) => {
      const resp = doc.paths[path].get.responses[String(status)];
      expect(resp, `${path} documents ${status}`).toBeDefined();
      const r = resp.$ref ? doc.components.responses[resp.$ref.split('/').pop()] : resp;
      return z.fromJSONSchema({
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        ...local(r.content['application/json'].schema),
        $defs: defs,
      });
    };
    const cases: [string, string, string | null][] = [
      ['/healthz', '/healthz', null],
      ['/api/status', '/api/status', token],
      ['/api/status', '/api/status?x=1', token],
      ['/api/status', '/api/status', null],
      ['/api/devices', '/api/devices', token],
      ['/api/devices', '/api/devices?limit=1&offset=1&q=b', token],
      ['/api/devices', '/api/devices?limit=0', token],
      ['/api/siblings', '/api/siblings', token],
      ['/api/siblings', '/api/siblings', null],
      ['/api/firmware', '/api/firmware', token],
      ['/api/firmware', '/api/firmware?x=1', token],
      ['/api/devices/{id}', '/api/devices/alice', token],
      ['/api/devices/{id}', '/api/devices/bob', token],
      ['/api/devices/{id}', '/api/devices/nobody', token],
      ['/api/frames', '/api/frames?limit=3', token],
      ['/api/frames', '/api/frames?limit=0', token],
    ];
    for (const [doced, url, auth] of cases) {
      const { status, body } = await json(url, auth);
      const r = schemaFor(doced, status).safeParse(body);
      expect(r.success, `${url} → ${status}: ${r.success ? '' : r.error.message}`).toBe(true);
    }
    // The schemas are not vacuous: a wrong type is refused.
    expect(
      schemaFor('/api/devices/{id}', 200).safeParse({ ...(await json('/api/devices/alice')).body, online: 'yes' })
        .success,
    ).toBe(false);
    // Feed events: a frame is a Frame, a status a Status.
    const frameSchema = z.fromJSONSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $ref: '#/$defs/Frame',
      $defs: defs,
    });
    const statusSchema = z.fromJSONSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $ref: '#/$defs/Status',
      $defs: defs,
    });
    const { apiFrame } = await import('../../gateway/api/decode.js');
    const stored = [...gw.frames.query({ limit: 1 })][0]!;
    expect(frameSchema.safeParse(apiFrame(stored, 'gw-api')).success).toBe(true);
    expect(statusSchema.safeParse(gw.status()).success).toBe(true);
  });

  it('[dashboard] the static files need no token, carry no data, and are served with a restrictive CSP', async () => {
    const html = await get('/', null);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html.headers.get('content-security-policy')).toContain("default-src 'self'");
    const text = await html.text();
    expect(text).toContain('<script type="module" src="/app.js">');
    expect(text).not.toMatch(/https?:\/\/(?!www\.w3\.org)/); // no CDN
    for (const f of ['/app.js', '/feed.js', '/sparkline.js', '/style.css'])
      expect((await get(f, null)).status, f).toBe(200);
    expect((await get('/../package.json', null)).status).toBe(401); // not a dashboard file: treated as an API path
  });
});
