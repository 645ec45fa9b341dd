/**
 * MQTT load generator for the ingest benchmark, run as a separate process so
 * the gateway keeps its own event loop. Pre-signs every frame (node:crypto,
 * off the clock) and then obeys commands on stdin, answering each with one
 * JSON line on stdout:
 *   (start)            → {"keys":[…]}            the identities to enrol
 *   connect [resume]   → {"connected":N,"ms":…,"resumed":N}
 *   saturate [N]       → closed loop: `--inflight` QoS 1 publishes open per device (N frames each, default all)
 *   paced HZ SECONDS   → open loop: each device publishes at HZ, whatever the acks
 *   drop               → every client disconnects → {"dropped":N}
 *   exit
 * `--ca FILE`: the URL is mqtts:// and this certificate is trusted; `--gateway-id ID`: each device
 * authenticates at CONNECT with a connect token for that gateway, signed before the connects are
 * timed (a token is good within the gateway's window, 5 min by default, and only if newer than the
 * last one it accepted from that device, so each `connect` signs a new set); `--spread`: each device
 * connects from its own loopback address (127.1.x.y from `--first`; TLS only), as a fleet of
 * separate devices would. Each device keeps the TLS session ticket its last connection received;
 * `connect resume` offers it (TLS 1.3 PSK resumption, RFC 8446 §2.2), as mbedTLS devices do with a
 * saved session.
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { readFileSync } from 'node:fs';
import { TLSSocket } from 'node:tls';
import { encodeConnectToken, signBody, topics } from '../protocols/index.js';
import { privateKeyObject, publicKeyFromSeed, signEd25519 } from '../gateway/crypto/ed25519.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    devices: { type: 'string', default: '1000' },
    frames: { type: 'string', default: '60' },
    inflight: { type: 'string', default: '4' },
    prefix: { type: 'string', default: 'bench' },
    ca: { type: 'string' },
    'gateway-id': { type: 'string' },
    spread: { type: 'boolean' },
    first: { type: 'string', default: '0' },
  },
});
const ca = values.ca ? readFileSync(values.ca) : undefined;
const gatewayId = values['gateway-id'];
const devices = Number(values.devices);
const framesPer = Number(values.frames);
const inflight = Number(values.inflight);
const first = Number(values.first);

const fleet = Array.from({ length: devices }, (_, i) => {
  const seed = randomBytes(32);
  const key = privateKeyObject(seed);
  let seq = 0;
  const id = `${values.prefix}-${String(i).padStart(5, '0')}`;
  const a = first + i;
  return {
    id,
    key,
    address: `127.1.${(a >> 8) & 0xff}.${a & 0xff}`,
    /** The newest TLS session ticket this device received (offered by `connect resume`). */
    session: undefined as Buffer | undefined,
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

async function saturate(limit = Number.POSITIVE_INFINITY): Promise<Record<string, number>> {
  const latencies: number[] = [];
  let acked = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    clients.map(async (c, i) => {
      const d = fleet[i]!;
      let taken = 0;
      const lane = async (): Promise<void> => {
        for (
          let f = taken < limit ? d.frames.shift() : undefined;
          f;
          f = taken < limit ? d.frames.shift() : undefined
        ) {
          taken++;
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
    // Signed off the clock: a device's token is ready before it dials.
    const now = Date.now();
    const passwords = fleet.map((d) =>
      gatewayId === undefined
        ? undefined
        : encodeConnectToken({ subject: d.id, audience: gatewayId, time: now }, (m) => signEd25519(d.key, m)),
    );
    const resume = a === 'resume';
    let resumed = 0;
    const t0 = performance.now();
    clients = await Promise.all(
      fleet.map(
        (d, i) =>
          new Promise<mqtt.MqttClient>((resolve, reject) => {
            const c = mqtt.connect(values.url!, {
              clientId: d.id,
              reconnectPeriod: 0,
              keepalive: 60,
              connectTimeout: 30_000,
              ...(ca && { ca }),
              ...(values.spread && { localAddress: d.address }),
              ...(resume && d.session && { session: d.session }),
              ...(passwords[i] !== undefined && { username: d.id, password: passwords[i] }),
            });
            const s = c.stream as TLSSocket | undefined;
            // TLS 1.3 tickets arrive after the handshake (RFC 8446 §4.6.1), before or after CONNACK.
            if (s instanceof TLSSocket) {
              s.on('session', (t: Buffer) => (d.session = t));
              s.once('secureConnect', () => s.isSessionReused() && resumed++);
            }
            c.once('connect', () => resolve(c));
            c.once('error', reject);
          }),
      ),
    );
    out({ connected: clients.length, ms: performance.now() - t0, resumed });
  } else if (cmd === 'drop') {
    await Promise.all(clients.map((c) => c.endAsync()));
    out({ dropped: clients.length });
  } else if (cmd === 'saturate') out(await saturate(a === undefined ? undefined : Number(a)));
  else if (cmd === 'paced') out(await paced(Number(a), Number(b)));
  else if (cmd === 'exit') break;
}
await Promise.all(clients.map((c) => c.endAsync()));
process.exit(0);
