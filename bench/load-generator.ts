/**
 * MQTT load generator for the ingest benchmark, run as a separate process so
 * the gateway keeps its own event loop. Pre-signs every frame (node:crypto,
 * off the clock), then keeps `--inflight` QoS 1 publishes open per device
 * and reports PUBACKs per second and publish→PUBACK latency as one JSON line.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { signBody, topics } from '../protocols/index.js';
import { privateKeyObject, publicKeyFromSeed, signEd25519 } from '../gateway/crypto/ed25519.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    devices: { type: 'string', default: '1000' },
    frames: { type: 'string', default: '60' },
    inflight: { type: 'string', default: '4' },
    'keys-only': { type: 'boolean' },
  },
});
const devices = Number(values.devices);
const framesPer = Number(values.frames);
const inflight = Number(values.inflight);

const fleet = Array.from({ length: devices }, (_, i) => {
  const seed = randomBytes(32);
  return { id: `bench-${String(i).padStart(5, '0')}`, seed, pub: Buffer.from(publicKeyFromSeed(seed)).toString('hex') };
});
// First line: the keys, so the benchmark can enrol them before the load starts.
process.stdout.write(JSON.stringify({ keys: fleet.map((d) => ({ id: d.id, publicKey: d.pub })) }) + '\n');
if (values['keys-only']) process.exit(0);

const frames = fleet.map((d) => {
  const key = privateKeyObject(d.seed);
  return Array.from({ length: framesPer }, (_, s) =>
    Buffer.from(signBody({ type: 'reading', boot: 1, seq: s + 1, time: Date.now(), records: [{ n: 'temp', u: 'Cel', v: 20 + (s % 10) / 10 }] }, d.id, (m) => signEd25519(key, m))),
  );
});

// Wait for "go" on stdin (the gateway has enrolled the keys).
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));

const clients = await Promise.all(fleet.map((d) => mqtt.connectAsync(values.url!, { clientId: d.id, reconnectPeriod: 0, keepalive: 60 })));
const latencies: number[] = [];
let acked = 0;
const t0 = performance.now();
const cpu0 = process.cpuUsage();
await Promise.all(
  clients.map(async (c, i) => {
    const topic = topics.up(fleet[i]!.id);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < framesPer) {
        const f = frames[i]![next++]!;
        const s = performance.now();
        await c.publishAsync(topic, f, { qos: 1 });
        latencies.push(performance.now() - s);
        acked++;
      }
    };
    await Promise.all(Array.from({ length: inflight }, lane));
  }),
);
const elapsed = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
await Promise.all(clients.map((c) => c.endAsync()));
latencies.sort((a, b) => a - b);
const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
process.stdout.write(JSON.stringify({ acked, seconds: elapsed, perSecond: acked / elapsed, pubackP50: q(0.5), pubackP99: q(0.99), cpuSeconds: (cpu.user + cpu.system) / 1e6 }) + '\n');
process.exit(0);
