/**
 * Per-client broker state stays flat: many short-lived clients (real aedes over TCP, the
 * mqtt.js client) come and go, each with a fresh client id, subscribing to the retained
 * gateway status at QoS 1 (so each PUBACKs a delivery); aedes's in-memory persistence, the
 * connection guard and the token replay memory return to (near) their size before the run.
 */
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/gateway.js';
import { topics } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { privateSizes } from '../helpers/private-fields.js';

const STORES = ['outgoing', 'incoming', 'subscriptions', 'wills', 'retained'] as const;

describe('broker per-client state', () => {
  let tmp: ReturnType<typeof tempDir>;
  let gw: Gateway;
  const dev = testDevice('dev-a');
  beforeAll(async () => {
    tmp = tempDir();
    // Hundreds of clients from one address within a second: the flood limits (broker-flood's
    // concern) are raised so only the per-client state is under test.
    ({ gw } = await startTestGateway(join(tmp.dir, 'data'), [{ id: dev.id, publicKey: dev.publicKeyHex }], {
      mqtt: { host: '127.0.0.1', port: 0, limits: { connectsPerSecond: 100_000, pendingPerAddress: 10_000 } },
    }));
  });
  afterAll(async () => {
    await gw?.stop();
    tmp?.cleanup();
  });

  const session = async (i: number): Promise<void> => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, {
      clientId: `reader-${i}-${Math.random().toString(36).slice(2)}`,
      clean: true,
      reconnectPeriod: 0,
    });
    const got = new Promise<void>((resolve) => c.once('message', () => resolve()));
    await c.subscribeAsync('outpost/v1/gw/+/status', { qos: 1 });
    await got; // the retained status, QoS 1: the client PUBACKs it
    await c.endAsync();
  };

  it('600 short-lived QoS 1 subscribers: aedes persistence, guard and token memory return to their size before', async () => {
    const outer = (gw.broker!.aedes as unknown as { persistence: { asyncPersistence?: object } }).persistence;
    const persistence = outer.asyncPersistence ?? outer; // the memory store itself, under any callback wrapper
    await session(-1); // warm up: the first client's own entries, if any, are the baseline
    await waitFor(() => gw.broker!.clients === 0, 5000, 'warm-up client gone');
    const before = await privateSizes(persistence, STORES);
    for (let round = 0; round < 30; round++)
      await Promise.all(Array.from({ length: 20 }, (_, k) => session(round * 20 + k)));
    await waitFor(() => gw.broker!.clients === 0, 5000, 'clients gone');
    const after = await privateSizes(persistence, STORES);
    for (const s of STORES) expect(after[s], s).toBeLessThanOrEqual(before[s]! + 1);
    // The guard keeps one entry per source address at most (all came from 127.0.0.1), swept past 4096.
    expect(gw.broker!.guard.addresses).toBeLessThanOrEqual(1);
  }, 40_000);

  it('300 clients that publish a frame and drop at once: no connection stays recorded as a device’s after it is gone', async () => {
    const before = gw.activity.connections;
    for (let round = 0; round < 15; round++)
      await Promise.all(
        Array.from({ length: 20 }, async (_, k) => {
          const seq = round * 20 + k + 1;
          const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, {
            clientId: `drop-${seq}`,
            reconnectPeriod: 0,
          });
          c.publish(topics.up(dev.id), Buffer.from(dev.frame(1, seq)), { qos: 0 });
          await new Promise((r) => setImmediate(r));
          c.end(true); // gone while its frame may still be in ingest
        }),
      );
    await waitFor(() => [...gw.frames.query({ device: dev.id })].length === 300, 10_000, 'frames stored');
    await waitFor(() => gw.broker!.clients === 0, 5000, 'clients gone');
    await new Promise((r) => setTimeout(r, 200));
    expect(gw.activity.connections).toBeLessThanOrEqual(before);
  }, 40_000);
});
