/**
 * One gateway restart, for bench/store.ts: started as a fresh process on an existing data
 * dir (`--data`, devices in `--devices` JSON), it runs Gateway.start (MQTT on a free port),
 * publishes one new signed frame over MQTT at QoS 1 and waits for its PUBACK (the frame is
 * durable: the gateway accepts frames), then measures RSS after start, after queries and
 * after a sync check (heads digest + version vector), and prints one JSON line.
 * Times are from process start (performance.timeOrigin), so node and module loading count.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { validateConfig } from '../../gateway/config.js';
import { Gateway } from '../../gateway/gateway.js';
import { localVector } from '../../gateway/sync/engine.js';
import { topics } from '../../protocols/index.js';
import { memoryLogger, running } from '../../test/helpers/env.js';
import { benchDevice } from './devices.js';

const { values } = parseArgs({
  options: { data: { type: 'string' }, devices: { type: 'string' }, scan: { type: 'boolean' } },
});
const imported = performance.now();
// Public keys for the config (as a gateway.yaml would list them); one seed, for the frame this process sends.
const list = JSON.parse(readFileSync(values.devices!, 'utf8')) as { id: string; publicKey: string; seed?: string }[];
const mb = (): number => Math.round(process.memoryUsage().rss / 1e5) / 10;
/** RSS split (Linux): anonymous (the process's own memory) and file-backed (lmdb's mapped pages, which the kernel can drop). */
function rssSplit(): { anonMB?: number; fileMB?: number } {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (k: string): number | undefined => {
      const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Math.round(Number(m[1]) / 102.4) / 10 : undefined;
    };
    return { anonMB: kb('RssAnon'), fileMB: kb('RssFile') };
  } catch {
    return {};
  }
}

const config = validateConfig({
  gateway: { id: 'gw-bench', dataDir: values.data! },
  mqtt: { port: 0, host: '127.0.0.1' },
  devices: list.map((d) => ({ id: d.id, publicKey: d.publicKey })),
  simulate: { devices: 0 },
  api: { enabled: false },
});
const t0 = performance.now();
const gw = await Gateway.start(config, { logger: memoryLogger().log, simulate: false });
const started = performance.now();
const frames = gw.frames.count();

// A frame no boot has carried before: boot = now in seconds (unique per run).
const dev = benchDevice(list[0]!.id, Buffer.from(list[0]!.seed!, 'hex'));
const frame = dev.frame(Math.floor(Date.now() / 1000), 0);
const signed = performance.now();
const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
  clientId: dev.id,
  reconnectPeriod: 0,
});
const connected = performance.now();
await client.publishAsync(topics.up(dev.id), Buffer.from(frame), { qos: 1 });
const accepting = performance.now();
if (gw.frames.count() !== frames + 1)
  throw new Error(`the frame was acked but not stored (${gw.frames.count()} of ${frames + 1})`);
await client.endAsync();
const rssStart = mb();

// Queries an operator or the API would run: the latest frames of every device, a page by time.
let seen = 0;
for (const d of list) for (const _ of gw.frames.latest(d.id, 10)) seen++;
for (const _ of gw.frames.query({ limit: 1000 })) seen++;
const rssQuery = mb();
// The sync check a sibling's "are we equal?" and its hello cost.
const digest = gw.blockLog.headsDigest();
const vector = localVector(gw.blockLog);
const rssSync = mb();
const splitSync = rssSplit();
let rssScan: number | undefined;
let scanMs: number | undefined;
if (values.scan) {
  const s0 = performance.now();
  for (const _ of gw.frames.query({})) seen++;
  scanMs = performance.now() - s0;
  rssScan = mb();
}
const mem = process.memoryUsage();
await gw.stop();
console.log(
  JSON.stringify({
    frames,
    importedMs: imported,
    startCalledMs: t0,
    gatewayStartMs: started - t0,
    signedMs: signed,
    connectedMs: connected,
    acceptingMs: accepting,
    rssStart,
    rssQuery,
    rssSync,
    rssSyncAnon: splitSync.anonMB,
    rssSyncFile: splitSync.fileMB,
    rssScan,
    scanMs,
    seen,
    heapMB: Math.round(mem.heapUsed / 1e6),
    externalMB: Math.round(mem.external / 1e6),
    digest: digest.slice(0, 16),
    streams: vector.length,
  }),
);
process.exit(0);
