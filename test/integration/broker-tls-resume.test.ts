/**
 * TLS session resumption at the gateway's MQTT TLS listener: a firmware-sim device that lost its
 * connection reconnects with the session ticket of the last one (no full handshake), still
 * proves its key at CONNECT, and its frames are stored. Real gateway (aedes over TLS, lmdb), real mqtt.js clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Fleet } from '../../firmware-sim/fleet.js';
import { toHex } from '../../protocols/index.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/env.js';

describe('MQTT TLS session resumption', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function tlsGateway() {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const { gw } = await startTestGateway(tmp.dir, [], {
      mqtt: { host: '127.0.0.1', port: 0, tls: { enabled: true, host: '127.0.0.1', port: 0 } },
    });
    cleanups.push(() => gw.stop());
    return gw;
  }

  it('a device reconnecting after a dropped connection resumes its TLS session and authenticates', async () => {
    const gw = await tlsGateway();
    const fleet = new Fleet({
      brokerUrl: `mqtts://127.0.0.1:${gw.broker!.portOf(1)}`,
      mqttOptions: { ca: gw.tls!.cert },
      gatewayId: 'gw-test',
      devices: 2,
      rateHz: 20,
      reconnectPeriodMs: 50,
    });
    for (const d of fleet.devices) await gw.registry.enroll({ id: d.id, publicKey: toHex(d.publicKey) });
    fleet.start();
    cleanups.push(() => fleet.stop());
    await waitFor(() => fleet.stats().acked >= 4, 10_000, 'first frames acked');
    expect(fleet.stats().resumed).toBe(0); // first connects: full handshakes

    const acked = fleet.stats().acked;
    for (const d of fleet.devices) fleet.link(d.id)!.dropConnection();
    await waitFor(
      () => fleet.stats().resumed === 2 && fleet.stats().connected === 2,
      10_000,
      () => JSON.stringify(fleet.stats()),
    );
    await waitFor(() => fleet.stats().acked >= acked + 4, 10_000, 'frames after the reconnect');
    for (const d of fleet.devices) expect([...gw.frames.query({ device: d.id })].length).toBeGreaterThan(2);
  });
});
