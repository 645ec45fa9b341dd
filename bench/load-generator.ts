/**
 * MQTT load generator for the ingest benchmark, run as a separate process so
 * the gateway keeps its own event loop. Pre-signs every frame (node:crypto,
 * off the clock) and then obeys commands on stdin, answering each with one
 * JSON line on stdout:
 *   (start)            → {"keys":[…]}            the identities to enrol
 *   connect            → {"connected":N}
 *   saturate           → closed loop: `--inflight` QoS 1 publishes open per device
 *   paced HZ SECONDS   → open loop: each device publishes at HZ, whatever the acks
 *   exit
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
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
  },
});
const devices = Number(values.devices);
const framesPer = Number(values.frames);
const inflight = Number(values.inflight);

const fleet = Array.from({ length: devices }, (_, i) => {
  const seed = randomBytes(32);
  const key = privateKeyObject(seed);
  let seq = 0;
  const id = `bench-${String(i).padStart(5, '0')}`;
  return {
    id,
    topic: topics.up(id),
    pub: Buffer.from(publicKeyFromSeed(seed)).toString('hex'),
    frames: [] as Buffer[],
    /** Signs `n` more frames, continuing the seq numbers. */
    presign(n: number): void {
      for (let k = 0; k < n; k++) {
        seq++;
        const body = {
          type: 'reading',
          boot: 1,
          seq,
          time: Date.now(),
          records: [{ n: 'temp', u: 'Cel', v: 20 + (seq % 10) / 10 }],
        } as const;
        this.frames.push(Buffer.from(signBody(body, id, (m) => signEd25519(key, m))));
      }
    },
  };
});
const out = (o: unknown): void => void process.stdout.write(JSON.stringify(o) + '\n');
out({ keys: fleet.map((d) => ({ id: d.id, publicKey: d.pub })) });
for (const d of fleet) d.presign(framesPer);

let clients: mqtt.MqttClient[] = [];

function summary(latencies: number[], acked: number, seconds: number, cpu: NodeJS.CpuUsage): Record<string, number> {
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return {
    acked,
    seconds,
    perSecond: acked / seconds,
    pubackP50: q(0.5),
    pubackP99: q(0.99),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

async function saturate(): Promise<Record<string, number>> {
  const latencies: number[] = [];
  let acked = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    clients.map(async (c, i) => {
      const d = fleet[i]!;
      const lane = async (): Promise<void> => {
        for (let f = d.frames.shift(); f; f = d.frames.shift()) {
          const s = performance.now();
          await c.publishAsync(d.topic, f, { qos: 1 });
          latencies.push(performance.now() - s);
          acked++;
        }
      };
      await Promise.all(Array.from({ length: inflight }, lane));
    }),
  );
  return summary(latencies, acked, (performance.now() - t0) / 1000, process.cpuUsage(cpu0));
}

async function paced(hz: number, seconds: number): Promise<Record<string, number>> {
  for (const d of fleet) d.presign(Math.ceil(hz * seconds));
  const latencies: number[] = [];
  let acked = 0;
  const period = 1000 / hz;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const sends: Promise<void>[] = [];
  await Promise.all(
    clients.map(
      (c, i) =>
        new Promise<void>((resolve) => {
          const d = fleet[i]!;
          const tick = (): void => {
            const f = d.frames.shift();
            if (!f) return resolve();
            const s = performance.now();
            sends.push(
              c.publishAsync(d.topic, f, { qos: 1 }).then(() => {
                latencies.push(performance.now() - s);
                acked++;
              }),
            );
            setTimeout(tick, period);
          };
          setTimeout(tick, Math.random() * period);
        }),
    ),
  );
  await Promise.all(sends);
  return summary(latencies, acked, (performance.now() - t0) / 1000, process.cpuUsage(cpu0));
}

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, a, b] = line.trim().split(/\s+/);
  if (cmd === 'connect') {
    clients = await Promise.all(
      fleet.map((d) => mqtt.connectAsync(values.url!, { clientId: d.id, reconnectPeriod: 0, keepalive: 60 })),
    );
    out({ connected: clients.length });
  } else if (cmd === 'saturate') out(await saturate());
  else if (cmd === 'paced') out(await paced(Number(a), Number(b)));
  else if (cmd === 'exit') break;
}
await Promise.all(clients.map((c) => c.endAsync()));
process.exit(0);
