/**
 * A LAN observer's view: a real tcpdump on the loopback interface of the test's network namespace
 * while a firmware-sim fleet (its own process) publishes to gw-a and gw-a syncs with gw-b over TCP.
 * Every device's SenML base name carries a marker unique to the run. With MQTT over TLS and the
 * Noise sibling link the marker's bytes appear nowhere in the capture; the same run in clear
 * (plain MQTT, `sync.encrypted: false`) finds them on both flows, so the test can fail (link
 * compression, `sync.compress`, is off in both runs: it would hide them too). Either
 * way the capture must hold the traffic of both flows, so an empty capture cannot pass.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { generateManifest, publicView, writeManifest } from '../../firmware-sim/manifest.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { toHex } from '../../protocols/index.js';
import { running, startScopedGateway, testTempDir, waitFor } from '../helpers/env.js';
import { readTcpSegments, startCapture } from '../helpers/pcap.js';
import { needs } from '../helpers/system-tools.js';

const firmwareSim = new URL('../../bin/firmware-sim.js', import.meta.url).pathname;
const DEVICES = 3;
const FRAMES = 6;

/** Stored frames of the run's devices at one gateway (its log view: ingested or synced). */
const framesOf = (gw: Awaited<ReturnType<typeof startScopedGateway>>['gw'], prefix: string): number =>
  [...gw.blockLog.frameView()].filter((f) => f.device.startsWith(prefix)).length;

async function observe(secure: boolean) {
  const dir = testTempDir('outpost-capture-');
  const marker = `cap${randomBytes(6).toString('hex')}`;
  const manifest = generateManifest({ devices: DEVICES, prefix: marker, site: 'plant' });
  const keys = join(dir, 'keys.json');
  writeManifest(keys, manifest);
  const devices = publicView(manifest).devices.map((d) => ({ id: d.id, publicKey: d.publicKey }));
  const dirs = { a: join(dir, 'gw-a'), b: join(dir, 'gw-b') };
  const key = (id: string, d: string) => toHex(GatewayIdentity.loadOrCreate(id, d).publicKey);
  const [ka, kb] = [key('gw-a', dirs.a), key('gw-b', dirs.b)];
  // Link compression off in both runs, so encryption alone is what hides the readings.
  const sync = { enabled: true, host: '127.0.0.1', port: 0, intervalSeconds: 3600, encrypted: secure, compress: false };

  const { gw: b } = await startScopedGateway(
    devices,
    { gateway: { id: 'gw-b', dataDir: dirs.b }, sync: { ...sync, peers: [{ id: 'gw-a', publicKey: ka }] } },
    dirs.b,
  );
  const syncPort = running(b, 'siblings').port;
  const { gw: a } = await startScopedGateway(
    devices,
    {
      gateway: { id: 'gw-a', dataDir: dirs.a },
      mqtt: { host: '127.0.0.1', port: 0, tls: { enabled: secure, host: '127.0.0.1', port: 0 } },
      sync: { ...sync, peers: [{ id: 'gw-b', publicKey: kb, url: `tcp://127.0.0.1:${syncPort}` }] },
    },
    dirs.a,
  );
  const broker = running(a, 'broker');
  const mqttPort = secure ? broker.portOf(1) : broker.port;

  const pcap = join(dir, 'lo.pcap');
  const capture = await startCapture(pcap);
  const fleet = spawn(
    process.execPath,
    [
      ...[firmwareSim, 'fleet', '--keys', keys, '--rate', '5', '--max-frames', String(FRAMES), '--gateway-id', 'gw-a'],
      ...(secure ? ['--broker', `mqtts://127.0.0.1:${mqttPort}`, '--ca', a.tls!.certFile] : []),
      ...(secure ? [] : ['--broker', `mqtt://127.0.0.1:${mqttPort}`]),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let fleetErr = '';
  fleet.stderr.on('data', (d: Buffer) => (fleetErr += d.toString()));
  const fleetExit = new Promise((r) => fleet.once('exit', r));
  onTestFinished(async () => {
    fleet.kill('SIGTERM');
    await fleetExit;
  });
  await waitFor(
    () => framesOf(a, marker) === DEVICES * FRAMES,
    60_000,
    () => `frames at gw-a; fleet: ${fleetErr}`,
  );
  await waitFor(
    async () => {
      await running(a, 'siblings').round(false);
      return framesOf(b, marker) === DEVICES * FRAMES;
    },
    30_000,
    'frames synced to gw-b',
  );
  fleet.kill('SIGTERM');
  await fleetExit;
  await capture.stop();

  const segments = readTcpSegments(pcap);
  const on = (port: number) => segments.filter((s) => s.srcPort === port || s.dstPort === port);
  const needle = Buffer.from(marker);
  const flow = (port: number) => {
    const seg = on(port);
    return {
      bytes: seg.reduce((n, s) => n + s.payload.length, 0),
      marked: seg.filter((s) => s.payload.includes(needle)).length,
      // A marker split across two segments of one direction is still found.
      joined: Buffer.concat(seg.map((s) => s.payload)).includes(needle),
    };
  };
  return { mqtt: flow(mqttPort), sync: flow(syncPort), anywhere: segments.some((s) => s.payload.includes(needle)) };
}

describe('passive capture on loopback', needs('tcpdump'), () => {
  it('sees no reading in the bytes of MQTT over TLS and of the Noise sibling link', async () => {
    const seen = await observe(true);
    // The capture holds both flows' traffic: the frames crossed, encrypted.
    expect(seen.mqtt.bytes).toBeGreaterThan(DEVICES * FRAMES * 100);
    expect(seen.sync.bytes).toBeGreaterThan(DEVICES * FRAMES * 100);
    expect(seen).toMatchObject({ mqtt: { marked: 0, joined: false }, sync: { marked: 0, joined: false } });
    expect(seen.anywhere).toBe(false);
  }, 120_000);

  it('finds the readings in the same run in clear (plain MQTT, unencrypted sync)', async () => {
    const seen = await observe(false);
    expect(seen.mqtt.marked).toBeGreaterThanOrEqual(DEVICES * FRAMES);
    expect(seen.sync.marked).toBeGreaterThan(0);
  }, 120_000);
});
