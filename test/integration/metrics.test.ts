/**
 * /metrics read through a strict Prometheus text-format parser: the families
 * are well-formed, and counters, gauges and the latency histogram move with
 * real MQTT traffic (stored, duplicate and rejected frames by reason and
 * transport). Also: the token rule and metrics.public.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../protocols/index.js';
import type { Gateway } from '../../gateway/gateway.js';
import { testDevice } from '../helpers/devices.js';
import { running, startTestGateway, tempDir } from '../helpers/env.js';
import { type Family, parsePrometheusText, sampleValue } from '../helpers/prom-text.js';

const TOKEN = 'metrics-test-token-0123456789';
const dev = testDevice('meter-1');

describe('/metrics', () => {
  const tmp = tempDir();
  let gw: Gateway;
  let base: string;
  let client: mqtt.MqttClient;

  const scrape = async (auth = true): Promise<Map<string, Family>> => {
    const r = await fetch(base + '/metrics', { headers: auth ? { authorization: `Bearer ${TOKEN}` } : {} });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(await r.text());
  };
  const publish = (payload: Uint8Array, device = dev.id) =>
    client.publishAsync(topics.up(device), Buffer.from(payload), { qos: 1 });

  beforeAll(async () => {
    ({ gw } = await startTestGateway(tmp.dir, [{ id: dev.id, publicKey: dev.publicKeyHex }], {
      api: { port: 0, token: TOKEN },
    }));
    base = `http://127.0.0.1:${running(gw, 'api').port}`;
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
      clientId: dev.id,
      reconnectPeriod: 0,
    });
  });
  afterAll(async () => {
    await client?.endAsync();
    await gw?.stop();
    tmp.cleanup();
  });

  it('[parser] the parser itself refuses malformed expositions', () => {
    const bad = [
      'x_total 1\n', // no TYPE
      '# TYPE x counter\nx -1\n', // negative counter
      '# TYPE x gauge\nx{a="1} 2\n', // unterminated label
      '# TYPE x gauge\nx{a="\\q"} 2\n', // bad escape
      '# TYPE x gauge\nx 1 2 3\n',
      '# TYPE x gauge\nx one\n',
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // not cumulative
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
      '# TYPE x gauge\nx 1', // no final newline
    ];
    for (const t of bad) expect(() => parsePrometheusText(t), t).toThrow();
    const ok = parsePrometheusText(
      '# HELP x_total a "thing"\n# TYPE x_total counter\nx_total{a="q\\"\\\\\\n"} 3 1700000000000\n',
    );
    expect(ok.get('x_total')!.samples[0]).toEqual({ name: 'x_total', labels: { a: 'q"\\\n' }, value: 3 });
  });

  it('[auth] needs the token unless metrics.public', async () => {
    expect((await fetch(base + '/metrics')).status).toBe(401);
    const other = tempDir();
    const pub = await startTestGateway(other.dir, [], { api: { port: 0 }, metrics: { public: true } });
    try {
      const r = await fetch(`http://127.0.0.1:${running(pub.gw, 'api').port}/metrics`);
      expect(r.status).toBe(200);
      expect(sampleValue(parsePrometheusText(await r.text()), 'outpost_devices_enrolled')).toBe(0);
      // Public metrics do not open the API.
      expect((await fetch(`http://127.0.0.1:${running(pub.gw, 'api').port}/api/status`)).status).toBe(401);
    } finally {
      await pub.gw.stop();
      other.cleanup();
    }
  });

  it('[families] every family the issue asks for is present with its type, plus process metrics', async () => {
    const m = await scrape();
    const types: Record<string, string> = {
      outpost_frames_received_total: 'counter',
      outpost_frames_accepted_total: 'counter',
      outpost_frames_rejected_total: 'counter',
      outpost_frames_duplicate_total: 'counter',
      outpost_frames_failed_total: 'counter',
      outpost_verify_queue_depth: 'gauge',
      outpost_ingest_pending: 'gauge',
      outpost_store_bytes: 'gauge',
      outpost_store_frames: 'gauge',
      outpost_store_free_bytes: 'gauge',
      outpost_store_min_free_bytes: 'gauge',
      outpost_disk_low_refusals_total: 'counter',
      outpost_devices_online: 'gauge',
      outpost_devices_enrolled: 'gauge',
      outpost_ingest_latency_seconds: 'histogram',
      outpost_export_lag_blocks: 'gauge',
      outpost_export_lag_seconds: 'gauge',
      outpost_export_failing: 'gauge',
      outpost_export_frames_total: 'counter',
      outpost_process_resident_memory_bytes: 'gauge',
      outpost_process_cpu_seconds_total: 'counter',
      outpost_nodejs_eventloop_lag_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(types)) expect(m.get(name)?.type, name).toBe(type);
    expect(sampleValue(m, 'outpost_devices_enrolled', { gateway: 'gw-test' })).toBe(1);
    expect(sampleValue(m, 'outpost_store_bytes')).toBeGreaterThan(0);
    // The free-space guard (ingest.minFreeBytes, default 64 MiB) has read statfs by the time frames were committed.
    expect(sampleValue(m, 'outpost_store_min_free_bytes')).toBe(64 * 1024 * 1024);
    expect(sampleValue(m, 'outpost_disk_low_refusals_total')).toBe(0);
  });

  it('[counters] move with traffic: accepted, duplicates and rejections by reason and transport, latency observed', async () => {
    const before = await scrape();
    const v = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
      sampleValue(m, name, labels) ?? 0;
    const frames = [1, 2, 3, 4, 5, 6, 7].map((s) => dev.frame(1, s));
    for (const f of frames) await publish(f);
    await publish(frames[2]!); // resend: duplicate
    await publish(testDevice(dev.id).frame(1, 50)); // wrong key: bad-signature
    await publish(testDevice('stranger').frame(1, 1), 'stranger'); // unknown-device
    await publish(new Uint8Array([0xd2, 0x84, 0xff])); // malformed
    const after = await scrape();
    const mqttL = { transport: 'mqtt' };
    expect(v(after, 'outpost_frames_received_total', mqttL) - v(before, 'outpost_frames_received_total', mqttL)).toBe(
      11,
    );
    expect(v(after, 'outpost_frames_accepted_total', mqttL) - v(before, 'outpost_frames_accepted_total', mqttL)).toBe(
      7,
    );
    expect(v(after, 'outpost_frames_duplicate_total', mqttL) - v(before, 'outpost_frames_duplicate_total', mqttL)).toBe(
      1,
    );
    for (const reason of ['bad-signature', 'unknown-device', 'malformed']) {
      const l = { reason, transport: 'mqtt' };
      expect(v(after, 'outpost_frames_rejected_total', l) - v(before, 'outpost_frames_rejected_total', l), reason).toBe(
        1,
      );
    }
    expect(v(after, 'outpost_ingest_latency_seconds_count') - v(before, 'outpost_ingest_latency_seconds_count')).toBe(
      7,
    );
    expect(v(after, 'outpost_ingest_latency_seconds_sum')).toBeGreaterThan(0);
    expect(v(after, 'outpost_store_frames')).toBe(7);
    expect(v(after, 'outpost_devices_online')).toBe(1);
    // Counters agree with the gateway's own status counters.
    expect(v(after, 'outpost_frames_accepted_total', mqttL)).toBe(gw.ingest.stats.stored);
  });

  it('[export] lag per sink: the local rollups ("$rollups") catch up with the stored frames', async () => {
    const rollups = { sink: '$rollups' };
    // The rollups read sealed blocks; frames still in the journal (at most a seal window old) are not lag yet.
    await gw.blockLog.sealOpen();
    let m = await scrape();
    for (let i = 0; i < 100 && sampleValue(m, 'outpost_export_lag_blocks', rollups) !== 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      m = await scrape();
    }
    expect(sampleValue(m, 'outpost_export_lag_blocks', rollups)).toBe(0);
    expect(sampleValue(m, 'outpost_export_lag_seconds', rollups)).toBe(0);
    expect(sampleValue(m, 'outpost_export_failing', rollups)).toBe(0);
    expect(sampleValue(m, 'outpost_export_frames_total', rollups)).toBe(sampleValue(m, 'outpost_store_frames'));
    expect(sampleValue(m, 'outpost_store_frames')).toBeGreaterThan(0);
  });
});
