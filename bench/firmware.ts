/**
 * Firmware transfer, one device, over MQTT, then serial and BLE (bench/lib/firmware-links.ts).
 * MQTT: a gateway (in process, real aedes over TCP, lmdb
 * log) serves a release's image from its image blocks to a firmware-sim updatable device
 * (16 KiB chunks, window 8, firmware-sim's MQTT default; the device writes each chunk as it
 * comes and saves the slot and its offset with each report, every 6 chunks), from the
 * offer to `confirmed`. The device's flash: files in a temp directory on the host's disk,
 * written in the device's order without fsync (FW_FLASH_SYNC=none, the default: a real
 * device's flash write does not wait for a host disk; a power loss of the simulated device is
 * its process dying, which keeps what was written). FW_FLASH_SYNC=fsync flushes at every save
 * (two fsyncs per report), as firmware-sim does by default.
 *
 * Baseline (same run, same broker): the same bytes published QoS 1 in 16 KiB messages by an
 * MQTT client to a subscriber, 8 in flight: what the broker and TCP carry without the update
 * protocol, the log reads and the device's flash writes.
 *   [FW_MIB=N] node --import tsx bench/firmware.ts [--quick] [--mqtt-only | --ble-only]
 * FW_MIB: the MQTT image in MiB (default 4, 1 in `--quick`; at most 16, the manifest's limit).
 * `--ble-only`: the BLE rows alone (FW_BLE_MTUS=247 for one MTU), written to
 * results/firmware-ble.json, not the full file: for profiling and alternated runs of BLE.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { UpdateLink } from '../firmware-sim/update-mqtt.js';
import { validateConfig } from '../gateway/config.js';
import { publicKeyFromSeed, signEd25519 } from '../gateway/crypto/ed25519.js';
import { queueRelease, queueRollout } from '../gateway/firmware/inbox.js';
import { rolloutStatus } from '../gateway/firmware/rollout.js';
import { Gateway } from '../gateway/gateway.js';
import { createLogger } from '../gateway/logger.js';
import { firmwareBody } from '../protocols/firmware-block.js';
import { encodeManifest } from '../protocols/firmware-manifest.js';
import { encodeCanonical, publicKeyToDidKey } from '../protocols/index.js';
import { haveTool, installHint } from '../test/helpers/system-tools.js';
import { bleRows, flashSync, serialRows } from './lib/firmware-links.js';
import type { Row } from './lib/row.js';

const quick = process.argv.includes('--quick');
/** Only the MQTT rows (profiling the MQTT transfer): serial and BLE are skipped. */
const mqttOnly = process.argv.includes('--mqtt-only');
const bleOnly = process.argv.includes('--ble-only');
const SIZE = (Number(process.env.FW_MIB) || (quick ? 1 : 4)) * 1024 * 1024;
const CHUNK = 16 * 1024;
const WINDOW = 8;

/** Writes the rows to results/<name>.json and prints them. */
function report(name: string, rows: Row[]): void {
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(
    join(import.meta.dirname, 'results', `${name}.json`),
    JSON.stringify({ at: new Date().toISOString(), quick, rows }, null, 2),
  );
  for (const r of rows)
    console.log(
      `${r.figure}: ${r.value} ${r.unit}${r.baselineValue !== undefined ? ` (baseline ${r.baselineValue}, ratio ${r.ratio}${r.pass === undefined ? '' : r.pass ? ', pass' : ', FAIL'})` : ''}`,
    );
}

if (bleOnly) {
  report('firmware-ble', await bleRows(quick));
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-fw-'));
const releaseSeed = randomBytes(32);
const releasePub = publicKeyFromSeed(releaseSeed);
const deviceSeed = randomBytes(32);
writeFileSync(join(dir, 'policy.yaml'), `releaseKeys:\n  r: "${publicKeyToDidKey(releasePub)}"\n`);
const config = validateConfig({
  gateway: { id: 'gw-bench', dataDir: join(dir, 'data') },
  mqtt: { port: 0 },
  api: { enabled: false },
  simulate: { devices: 0 },
  policy: { file: join(dir, 'policy.yaml') },
  devices: [{ id: 'dev-1', publicKey: publicKeyToDidKey(publicKeyFromSeed(deviceSeed)) }],
});
const gw = await Gateway.start(config, { logger: createLogger('error'), simulate: false, firmware: { tickMs: 100 } });
const url = `mqtt://127.0.0.1:${gw.broker!.port}`;

// Baseline: 16 KiB QoS 1 messages, 8 in flight, through the same broker.
async function baseline(): Promise<number> {
  const sub = await mqtt.connectAsync(url, { clientId: 'bench-sub' });
  const pub = await mqtt.connectAsync(url, { clientId: 'bench-pub' });
  await sub.subscribeAsync('bench/x', { qos: 1 });
  const payload = randomBytes(CHUNK);
  const n = Math.ceil(SIZE / CHUNK);
  let got = 0;
  const done = new Promise<void>((r) => sub.on('message', () => ++got === n && r()));
  const t0 = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (sent < n) {
        sent++;
        await pub.publishAsync('bench/x', payload, { qos: 1 });
      }
    }),
  );
  await done;
  const s = (performance.now() - t0) / 1000;
  await Promise.all([sub.endAsync(), pub.endAsync()]);
  return SIZE / s / 1e6;
}

const image = randomBytes(SIZE);
writeFileSync(join(dir, 'image.bin'), image);
const digest = new Uint8Array(createHash('sha256').update(image).digest());
const manifest = encodeManifest(
  { model: 'env-1', version: '1.1.0', digest, size: SIZE, minVersion: '0.0.0', slot: 1, issued: Date.now() },
  releasePub,
  (m) => signEd25519(releaseSeed, m),
);
queueRelease(join(dir, 'data'), manifest, join(dir, 'image.bin'));
const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (const end = Date.now() + 120_000; !cond(); await new Promise((r) => setTimeout(r, 20)))
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
};
await until(() => gw.firmware.store.releases.size === 1, 'release logged');

const base = await baseline();
mkdirSync(join(dir, 'flash'));
const link = new UpdateLink({
  id: 'dev-1',
  seed: deviceSeed,
  model: 'env-1',
  version: '1.0.0',
  releaseKey: releasePub,
  dir: join(dir, 'flash', 'dev-1'),
  brokerUrl: url,
  gatewayId: 'gw-bench',
  chunkSize: CHUNK,
  window: WINDOW,
  selfTestMs: 0,
  flashSync,
}).start();
await until(() => link.device.history.length > 0, 'device connected');
const t0 = performance.now();
let firstChunk = 0;
queueRollout(
  join(dir, 'data'),
  encodeCanonical(
    firmwareBody({
      type: 'rollout',
      id: 'b',
      digest,
      devices: ['dev-1'],
      canary: 0,
      steps: [100],
      haltPercent: 100,
      at: Date.now(),
    }),
  ),
);
await until(() => {
  if (!firstChunk && link.device.offset > 0) firstChunk = performance.now();
  return link.device.running.version === '1.1.0';
}, 'confirmed');
const total = (performance.now() - t0) / 1000;
const transfer = SIZE / ((performance.now() - (firstChunk || t0)) / 1000) / 1e6;
// Stopped once the runner logged the last step (a block still being committed at stop can throw).
await until(() => rolloutStatus(gw.firmware.store, 'b')?.done === true, 'rollout done');
await link.stop();
await gw.stop();
rmSync(dir, { recursive: true, force: true });

const tag = quick ? 'quick: ' : '';
const rows: Row[] = [
  {
    figure: `${tag}MQTT firmware transfer, one device (${SIZE / 1048576} MiB, 16 KiB chunks, window 8, device flash ${flashSync === 'none' ? 'unflushed' : 'fsync per report'})`,
    value: Number(transfer.toFixed(2)),
    unit: 'MB/s',
    baseline: 'QoS 1 16 KiB publishes, 8 in flight, same broker',
    baselineValue: Number(base.toFixed(2)),
    ratio: Number((transfer / base).toFixed(3)),
    goal: '>= 5 MB/s',
    pass: transfer >= 5,
  },
  {
    figure: `${tag}rollout logged → confirmed, one device (${SIZE / 1048576} MiB)`,
    value: Number(total.toFixed(2)),
    unit: 's',
  },
];
if (!mqttOnly) {
  if (haveTool('socat')) rows.push(...(await serialRows(quick)));
  else console.log(`serial rows skipped: no socat (${installHint('socat')})`);
  rows.push(...(await bleRows(quick)));
}
report('firmware', rows);
process.exit(0);
