/**
 * `gateway start` as a process with the API on: the start log names the
 * generated token file, the API answers with that token, and SIGTERM stops
 * the gateway promptly even while a live-feed client is connected.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startGatewayProcess, stopGatewayProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/env.js';

describe('gateway start with the API', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('[start] logs the token file, serves the API with it, and stops on SIGTERM with a feed open', async () => {
    const data = join(tmp.dir, 'data');
    const config = join(tmp.dir, 'outpost.yaml');
    writeFileSync(
      config,
      `gateway: { id: gw-proc, dataDir: ${JSON.stringify(data)} }\nmqtt: { port: 0 }\napi: { port: 0 }\n`,
    );
    const g = await startGatewayProcess(config);
    try {
      const ready = g.logs.find((l) => l.event === 'ready') as { apiPort: number };
      const announce = g.logs.find((l) => typeof l.tokenFile === 'string') as {
        tokenFile: string;
        tokenCreated: boolean;
        msg: string;
      };
      expect(announce.tokenFile).toBe(join(data, 'api-token'));
      expect(announce.tokenCreated).toBe(true);
      expect(announce.msg).toContain(join(data, 'api-token'));
      expect(statSync(announce.tokenFile).mode & 0o777).toBe(0o600);
      const token = readFileSync(announce.tokenFile, 'utf8').trim();
      const base = `http://127.0.0.1:${ready.apiPort}`;
      expect((await fetch(base + '/api/status')).status).toBe(401);
      const status = await fetch(base + '/api/status', { headers: { authorization: `Bearer ${token}` } });
      expect(await status.json()).toMatchObject({ gateway: 'gw-proc', devicesEnrolled: 0 });
      const feed = await fetch(base + '/api/feed', { headers: { authorization: `Bearer ${token}` } });
      expect(feed.status).toBe(200);
      // With the feed held open, a server that waits for its connections never stops: 'hung' is a
      // generous bound for that, not a timing claim (a normal stop takes well under a second).
      const stopped = await Promise.race([
        stopGatewayProcess(g),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000)),
      ]);
      expect(stopped).toBe(0);
    } finally {
      await stopGatewayProcess(g);
    }
  });
});
