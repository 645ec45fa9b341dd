/**
 * GET /api/series over real HTTP against an in-process gateway: frames through the real
 * ingest (one arriving late, its record time in an earlier minute), the rollups fed from
 * the log, and the answer per minute and per hour as the frames say; bad queries are 400;
 * every answer matches the schema openapi.json documents for the route.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import { type ReadingBody, signBody } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { running, startScopedGateway, waitFor } from '../helpers/env.js';

const TOKEN = 'series-test-token-0123456789abcdef';
const HOUR = 3_600_000;

describe('/api/series', () => {
  it('answers count/min/mean/max per step from the rollups, matching openapi.json', async () => {
    const dev = testDevice('kiln-1');
    const { gw } = await startScopedGateway([{ id: dev.id, publicKey: dev.publicKeyHex }], {
      api: { port: 0, token: TOKEN },
    });
    // Record times: two readings in one minute, one in the next, one an hour later; the late one last.
    const h0 = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    const readings: [number, number][] = [
      [h0 + 60_000 + 5_000, 20],
      [h0 + 120_000 + 1_000, 30],
      [h0 + HOUR + 10_000, 50],
      [h0 + 60_000 + 40_000, 22], // late: received after the others
    ];
    for (const [seq, [t, v]] of readings.entries()) {
      const body: ReadingBody = {
        type: 'reading',
        boot: 1,
        seq,
        time: Date.now(),
        records: [{ bn: `${dev.id}:`, bt: t / 1000, n: 'temp', u: 'Cel', v }],
      };
      const frame = signBody(body, dev.id, (m) => signEd25519(dev.seed, m));
      expect((await gw.ingest.submit(frame, { transport: 'test', claimedDevice: dev.id })).status).toBe('stored');
    }
    // The rollups read blocks: seal the journal's open block (about a second later by itself).
    await gw.blockLog.sealOpen();
    await waitFor(() => gw.exports!.status().rollups!.lagBlocks === 0, 10_000, 'rollups caught up');

    const base = `http://127.0.0.1:${running(gw, 'api').port}`;
    const get = async (query: string) => {
      const r = await fetch(`${base}/api/series?${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: r.status, body: (await r.json()) as Record<string, any> };
    };
    const doc = JSON.parse(readFileSync(new URL('../../gateway/api/openapi.json', import.meta.url), 'utf8'));
    const schema = (status: number) => {
      const resp = doc.paths['/api/series'].get.responses[String(status)];
      const r = resp.$ref ? doc.components.responses[resp.$ref.split('/').pop()] : resp;
      return z.fromJSONSchema({
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        ...JSON.parse(
          JSON.stringify(r.content['application/json'].schema).replaceAll('#/components/schemas/', '#/$defs/'),
        ),
        $defs: JSON.parse(JSON.stringify(doc.components.schemas)),
      });
    };
    const conforms = <R extends { status: number; body: unknown }>(r: R): R => {
      const p = schema(r.status).safeParse(r.body);
      expect(p.success, p.success ? '' : p.error.message).toBe(true);
      return r;
    };
    const span = `device=${dev.id}&name=${dev.id}:temp&from=${h0}&to=${h0 + 2 * HOUR}`;
    const iso = (t: number) => new Date(t).toISOString();

    const minutes = conforms(await get(`${span}&step=1m`));
    expect(minutes.status).toBe(200);
    expect(minutes.body).toMatchObject({ device: dev.id, name: `${dev.id}:temp`, stepSeconds: 60 });
    expect(minutes.body.points).toEqual([
      { t: iso(h0 + 60_000), count: 2, min: 20, mean: 21, max: 22 },
      { t: iso(h0 + 120_000), count: 1, min: 30, mean: 30, max: 30 },
      { t: iso(h0 + HOUR), count: 1, min: 50, mean: 50, max: 50 },
    ]);
    // The schema is not vacuous.
    expect(schema(200).safeParse({ ...minutes.body, points: [{ t: 'x', count: 0 }] }).success).toBe(false);
    const hours = conforms(await get(`${span}&step=1h`));
    expect(hours.body.points).toEqual([
      { t: iso(h0), count: 3, min: 20, mean: 24, max: 30 },
      { t: iso(h0 + HOUR), count: 1, min: 50, mean: 50, max: 50 },
    ]);
    // 2 minutes, merged from the minute rollups.
    expect(conforms(await get(`${span}&step=120`)).body.points).toEqual([
      { t: iso(h0), count: 2, min: 20, mean: 21, max: 22 },
      { t: iso(h0 + 120_000), count: 1, min: 30, mean: 30, max: 30 },
      { t: iso(h0 + HOUR), count: 1, min: 50, mean: 50, max: 50 },
    ]);
    expect(conforms(await get(`device=${dev.id}&name=${dev.id}:hum&step=1m`)).body.points).toEqual([]);

    for (const bad of [`${span}&step=90s`, `device=${dev.id}`, `${span}&from=yesterday`, `${span}&to=${h0 - 1}`]) {
      const r = conforms(await get(bad));
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe('bad-query');
    }
  });
});
