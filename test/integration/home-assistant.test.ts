/**
 * Home Assistant MQTT discovery through the embedded broker, seen by an
 * mqtt.js client as Home Assistant would: retained discovery configs for the
 * enrolled devices' profiled readings, retained states that follow durable
 * frames, binary sensors for boolean records, unit conversion, and discovery
 * topics that other clients cannot overwrite.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReadingBody, signBody, topics } from '../../protocols/index.js';
import { Fleet } from '../../firmware-sim/fleet.js';
import { generateManifest, publicView } from '../../firmware-sim/manifest.js';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import type { Gateway } from '../../gateway/gateway.js';
import { testDevice } from '../helpers/devices.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';

describe('Home Assistant MQTT discovery', () => {
  const tmp = tempDir();
  const manifest = generateManifest({ devices: 2, prefix: 'ha', site: 'barn', model: ['env-1', 'door-1'] });
  const [env, door] = manifest.devices as [(typeof manifest.devices)[0], (typeof manifest.devices)[0]];
  const radio = testDevice('radio-1'); // enrolled without a model: announced when first heard
  let gw: Gateway;
  let ha: mqtt.MqttClient;
  const seen = new Map<string, { payload: string; retain: boolean }>();

  beforeAll(async () => {
    ({ gw } = await startTestGateway(
      tmp.dir,
      [
        ...publicView(manifest).devices.map((d) => ({
          id: d.id,
          publicKey: d.publicKey,
          model: d.model,
          site: d.site,
        })),
        { id: radio.id, publicKey: radio.publicKeyHex },
      ],
      { homeAssistant: { enabled: true, prefix: 'homeassistant' }, status: { onlineTimeoutSeconds: 45 } },
    ));
    ha = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
      clientId: 'home-assistant',
      reconnectPeriod: 0,
    });
    ha.on('message', (topic, payload, packet) =>
      seen.set(topic, { payload: payload.toString(), retain: packet.retain }),
    );
    await ha.subscribeAsync(['homeassistant/#', 'outpost/v1/gw/gw-test/ha/#', topics.gatewayStatus('gw-test')], {
      qos: 1,
    });
  });
  afterAll(async () => {
    await ha?.endAsync();
    await gw?.stop();
    tmp.cleanup();
  });

  const config = (topic: string) => JSON.parse(seen.get(topic)!.payload) as Record<string, any>;

  it('[discovery] announces the profiled readings of enrolled devices as retained configs before any frame', async () => {
    const temp = `homeassistant/sensor/outpost_gw-test/${env.id}_temp/config`;
    const hum = `homeassistant/sensor/outpost_gw-test/${env.id}_hum/config`;
    const doorCfg = `homeassistant/binary_sensor/outpost_gw-test/${door.id}_door/config`;
    await waitFor(() => seen.has(temp) && seen.has(hum) && seen.has(doorCfg), 5000, 'retained discovery configs');
    expect(seen.get(temp)!.retain).toBe(true); // delivered from the retained store to a late subscriber
    expect(config(temp)).toMatchObject({
      name: 'temp',
      unique_id: `outpost_${env.id}_temp`,
      default_entity_id: `sensor.outpost_${env.id.replaceAll('-', '_')}_temp`,
      state_topic: `outpost/v1/gw/gw-test/ha/${env.id}/temp`,
      unit_of_measurement: '°C',
      device_class: 'temperature',
      state_class: 'measurement',
      availability_topic: topics.gatewayStatus('gw-test'),
      payload_available: 'online',
      expire_after: 45,
      device: { identifiers: [`outpost_${env.id}`], model: 'env-1', manufacturer: 'Outpost', suggested_area: 'barn' },
    });
    expect(config(hum)).toMatchObject({ unit_of_measurement: '%', device_class: 'humidity' });
    expect(config(doorCfg)).toMatchObject({
      device_class: 'door',
      payload_on: 'ON',
      payload_off: 'OFF',
      default_entity_id: `binary_sensor.outpost_${door.id.replaceAll('-', '_')}_door`,
    });
    expect(config(temp).object_id).toBeUndefined();
    expect(config(doorCfg).unit_of_measurement).toBeUndefined();
    // Availability: the gateway's retained status says online.
    await waitFor(() => seen.has(topics.gatewayStatus('gw-test')), 2000, 'gateway status');
    expect(JSON.parse(seen.get(topics.gatewayStatus('gw-test'))!.payload)).toMatchObject({ state: 'online' });
  });

  it("[states] each durable frame updates retained state topics with the frame's values", async () => {
    const fleet = new Fleet({
      brokerUrl: `mqtt://127.0.0.1:${running(gw, 'broker').port}`,
      manifest,
      rateHz: 20,
      maxFrames: 3,
    });
    fleet.start();
    try {
      expect(await fleet.settled(10_000)).toBe(true);
    } finally {
      await fleet.stop();
    }
    const last = [...gw.frames.latest(env.id, 1)][0]!;
    expect(last.seq).toBe(2);
    const frames = await fetchStates([
      `outpost/v1/gw/gw-test/ha/${env.id}/temp`,
      `outpost/v1/gw/gw-test/ha/${door.id}/door`,
    ]);
    const temp = frames.get(`outpost/v1/gw/gw-test/ha/${env.id}/temp`);
    expect(temp).toMatch(/^-?\d+(\.\d+)?$/);
    // The state is the last stored frame's value (decode it independently from the store).
    const { decodeFrameBody, apiRecords } = await import('../../gateway/api/decode.js');
    const recs = apiRecords(decodeFrameBody(last.frame), last.rxTime);
    expect(Number(temp)).toBe(recs.find((r) => r.name.endsWith(':temp'))!.value);
    expect(frames.get(`outpost/v1/gw/gw-test/ha/${door.id}/door`)).toMatch(/^(ON|OFF)$/);
  });

  it('[dynamic] a device without a profile is announced when first heard; dBW is converted to dBm', async () => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
      clientId: radio.id,
      reconnectPeriod: 0,
    });
    const body: ReadingBody = {
      type: 'reading',
      boot: 1,
      seq: 1,
      records: [
        { bn: `${radio.id}:`, n: 'rssi', u: 'dBW', v: -97 },
        { n: 'bat', u: '%EL', v: 64 },
      ],
    };
    await c.publishAsync(
      topics.up(radio.id),
      Buffer.from(signBody(body, radio.id, (m) => signEd25519(radio.seed, m))),
      { qos: 1 },
    );
    await c.endAsync();
    const rssiCfg = `homeassistant/sensor/outpost_gw-test/${radio.id}_rssi/config`;
    await waitFor(
      () => seen.has(rssiCfg) && seen.has(`outpost/v1/gw/gw-test/ha/${radio.id}/rssi`),
      5000,
      'dynamic discovery',
    );
    expect(config(rssiCfg)).toMatchObject({ unit_of_measurement: 'dBm', device_class: 'signal_strength' });
    expect(seen.get(`outpost/v1/gw/gw-test/ha/${radio.id}/rssi`)!.payload).toBe('-67');
    expect(config(`homeassistant/sensor/outpost_gw-test/${radio.id}_bat/config`)).toMatchObject({
      unit_of_measurement: '%',
      device_class: 'battery',
    });
    expect(seen.get(`outpost/v1/gw/gw-test/ha/${radio.id}/bat`)!.payload).toBe('64');
  });

  it('[reserved] other MQTT clients cannot overwrite discovery configs or states', async () => {
    const topic = `homeassistant/sensor/outpost_gw-test/${env.id}_temp/config`;
    const stateTopic = `outpost/v1/gw/gw-test/ha/${env.id}/temp`;
    const before = seen.get(topic)!.payload;
    const beforeState = seen.get(stateTopic)!.payload;
    const evil = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
      clientId: 'evil',
      reconnectPeriod: 0,
    });
    await evil.publishAsync(topic, '{"name":"pwned"}', { qos: 1, retain: true });
    await evil.publishAsync(stateTopic, '999', { qos: 1, retain: true });
    expect(evil.connected).toBe(true); // dropped, not disconnected
    await evil.endAsync();
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.get(topic)!.payload).toBe(before);
    expect(seen.get(stateTopic)!.payload).toBe(beforeState);
    const retained = await fetchStates([stateTopic]);
    expect(retained.get(stateTopic)).toBe(beforeState);
  });

  /** Retained state topics as a fresh subscriber gets them (once `expected` have all arrived). */
  async function fetchStates(expected: string[]): Promise<Map<string, string>> {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
      clientId: `ha-probe-${Math.random()}`,
      reconnectPeriod: 0,
    });
    const out = new Map<string, string>();
    c.on('message', (t, p) => out.set(t, p.toString()));
    await c.subscribeAsync('outpost/v1/gw/gw-test/ha/#', { qos: 1 });
    // Retained messages follow the SUBACK: waited for, not a fixed pause a loaded box can outlast.
    await waitFor(() => expected.every((t) => out.has(t)), 10_000, `retained ${expected.join(', ')}`);
    await c.endAsync();
    return out;
  }
});
