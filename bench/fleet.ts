/**
 * `node --import tsx bench/fleet.ts [--quick] [--devices N] [--hz R]` (part of `npm run bench`):
 * firmware-sim devices per core (goal: ≥ 10 000 devices simulated, ≥ 20 000 frames/s
 * generated). One process runs firmware-sim's Fleet (firmware-sim/fleet.ts: a VirtualDevice
 * and its own MQTT client per device, sampling on timers, node:crypto signer) against a sink
 * that only counts: an aedes broker in a separate process (bench/lib/count-broker.ts) that
 * PUBACKs every frame. Frames per CPU-second of the fleet process is the per-core figure,
 * against a raw sign per CPU-second (the floor of a signed frame's cost); then the same devices
 * behind hubs (firmware-sim/hub.ts: 100 devices per MQTT connection, a tick's frames in one
 * socket write), measured the same way.
 * Baselines from the same run: VirtualDevice.nextFrame alone (sensors + CBOR + sign, no
 * MQTT) and a raw node:crypto Ed25519 sign of a frame-sized message, both per CPU-second.
 * `--quick`: 500 devices at 40 Hz for 2 s (says so in the rows). Writes bench/results/fleet.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSigner, randomSeed } from '../firmware-sim/crypto.js';
import { VirtualDevice } from '../firmware-sim/device.js';
import { Fleet } from '../firmware-sim/fleet.js';
import { HubFleet } from '../firmware-sim/hub.js';
import { generateManifest } from '../firmware-sim/manifest.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    devices: { type: 'string' },
    hz: { type: 'string' },
    seconds: { type: 'string' },
  },
});
const quick = values.quick === true;
const DEVICES = Number(values.devices ?? (quick ? 500 : 10_000));
const HZ = Number(values.hz ?? (quick ? 40 : 2));
const WINDOW_S = Number(values.seconds ?? (quick ? 2 : 10));
const HUB_DEVICES = 100;

const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

/** Runs `fn` in a loop for `seconds`; returns calls per CPU-second of this process. */
function perCpuSecond(seconds: number, fn: () => void): number {
  let n = 0;
  const c0 = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
  }
  return n / cpuSeconds(process.cpuUsage(c0));
}

function baselines(seconds: number): {
  nextFrame: number;
  nextFrameNoble: number;
  rawSign: number;
  frameBytes: number;
} {
  const mk = (signer: 'node' | 'noble', i: number): VirtualDevice =>
    new VirtualDevice({ id: `sign-${signer}-${i}`, seed: randomSeed(), model: 'env-1', signer, bufferCapacity: 1 });
  const node = Array.from({ length: 100 }, (_, i) => mk('node', i));
  let k = 0;
  const nextFrame = perCpuSecond(seconds, () => void node[k++ % node.length]!.nextFrame());
  const frameBytes = node[0]!.nextFrame().bytes.length;
  const noble = Array.from({ length: 10 }, (_, i) => mk('noble', i));
  const nextFrameNoble = perCpuSecond(Math.min(1, seconds), () => void noble[k++ % noble.length]!.nextFrame());
  const sign = createSigner(randomSeed(), 'node');
  const msg = new Uint8Array(frameBytes);
  const rawSign = perCpuSecond(seconds, () => void sign(msg));
  return { nextFrame, nextFrameNoble, rawSign, frameBytes };
}

async function main(): Promise<void> {
  console.log(
    `outpost fleet bench (${quick ? 'quick' : 'full'}): ${DEVICES} firmware-sim devices at ${HZ} Hz over MQTT to a counting aedes, ${WINDOW_S} s`,
  );
  const base = baselines(quick ? 0.5 : 3);

  const broker = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./lib/count-broker.ts', import.meta.url))],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: broker.stdout! })[Symbol.asyncIterator]();
  const next = async <T>(cmd?: string): Promise<T> => {
    if (cmd) broker.stdin!.write(cmd + '\n');
    return JSON.parse((await lines.next()).value as string) as T;
  };
  try {
    const { port } = await next<{ port: number }>();
    const t0 = performance.now();
    const manifest = generateManifest({ devices: DEVICES, prefix: 'fleet', model: 'env-1' });
    const fleet = new Fleet({
      brokerUrl: `mqtt://127.0.0.1:${port}`,
      manifest,
      rateHz: HZ,
      signer: 'node',
      seed: 1,
      reconnectPeriodMs: 1000,
      // 10 000 devices sampling in one process keep its event loop busy: a CONNACK can wait
      // longer than a device's 5 s, and each timeout dials again (4 785 of them in one run, and
      // once 1 063 devices still unconnected after 120 s). 30 s is mqtt.js's own default.
      connectTimeoutMs: 30_000,
    });
    const setupS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    fleet.start();
    if (!(await fleet.waitFor((s) => s.connected === DEVICES, 120_000, 100)))
      throw new Error(`only ${fleet.stats().connected} of ${DEVICES} devices connected`);
    const connectS = (performance.now() - t1) / 1000;
    await new Promise((r) => setTimeout(r, 1000)); // past the start jitter: every device is sampling
    const s0 = fleet.stats();
    const before = fleet.devices.map((d) => d.generated);
    const b0 = await next<{ publishes: number }>('stats');
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const cpu = cpuSeconds(process.cpuUsage(c0));
    const wall = (performance.now() - w0) / 1000;
    const s1 = fleet.stats();
    // Simulated = connected and produced frames during the window (each device on its own timer).
    const sampling = fleet.devices.filter((d, i) => d.generated > before[i]!).length;
    const b1 = await next<{ publishes: number; clients: number }>('stats');
    const stats = await fleet.stop(5000);

    // The same devices behind hubs (firmware-sim/hub.ts): 100 devices per connection, sampled
    // every 20 ms, so a tick's frames leave in one socket write.
    const hubs = new HubFleet({
      brokerUrl: `mqtt://127.0.0.1:${port}`,
      manifest,
      rateHz: HZ,
      perConnection: HUB_DEVICES,
      signer: 'node',
      seed: 1,
    });
    hubs.start();
    if (!(await hubs.waitFor((s) => s.connected === DEVICES, 60_000, 100)))
      throw new Error(`only ${hubs.stats().connected} of ${DEVICES} hub devices connected`);
    await new Promise((r) => setTimeout(r, 1000));
    const h0 = hubs.stats().generated;
    const hc0 = process.cpuUsage();
    const hw0 = performance.now();
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const hubCpu = cpuSeconds(process.cpuUsage(hc0));
    const hubWall = (performance.now() - hw0) / 1000;
    const hubGenerated = hubs.stats().generated - h0;
    const hubStats = await hubs.stop(5000);
    const hubPerCpu = hubGenerated / hubCpu;
    const generated = s1.generated - s0.generated;
    const perCpu = generated / cpu;
    const offered = DEVICES * HZ;
    const q = quick ? ` [quick: ${DEVICES} devices, ${HZ} Hz]` : '';
    const rows = [
      {
        figure: `devices simulated in one process, connected and sampling${q}`,
        value: Math.min(s1.connected, sampling),
        unit: 'devices',
        goal: '>= 10000',
        pass: Math.min(s1.connected, sampling) >= 10_000,
      },
      {
        figure: `frames generated per CPU-second of the fleet process${q}`,
        value: Math.round(perCpu),
        unit: 'frames/s',
        baseline: 'raw node:crypto sign',
        baselineValue: Math.round(base.rawSign),
        ratio: round(perCpu / base.rawSign),
        goal: '>= 20000',
        pass: perCpu >= 20_000,
      },
      {
        figure: `frames generated per CPU-second, devices behind hubs (${HUB_DEVICES} per MQTT connection)${q}`,
        value: Math.round(hubPerCpu),
        unit: 'frames/s',
        baseline: 'raw node:crypto sign',
        baselineValue: Math.round(base.rawSign),
        ratio: round(hubPerCpu / base.rawSign),
        goal: '>= 20000',
        pass: hubPerCpu >= 20_000,
      },
      {
        figure: `frames generated per second (wall), devices behind hubs${q}`,
        value: Math.round(hubGenerated / hubWall),
        unit: 'frames/s',
        baseline: 'offered (devices × Hz)',
        baselineValue: offered,
        ratio: round(hubGenerated / hubWall / offered),
      },
      {
        figure: `frames generated per second (wall)${q}`,
        value: Math.round(generated / wall),
        unit: 'frames/s',
        baseline: 'offered (devices × Hz)',
        baselineValue: offered,
        ratio: round(generated / wall / offered),
      },
      {
        figure: `frames PUBACKed by the counting aedes per second${q}`,
        value: Math.round((b1.publishes - b0.publishes) / wall),
        unit: 'frames/s',
        baseline: 'generated',
        baselineValue: Math.round(generated / wall),
        ratio: round((b1.publishes - b0.publishes) / generated),
      },
      { figure: `fleet process CPU${q}`, value: round(cpu / wall), unit: 'cores' },
      {
        figure: 'VirtualDevice.nextFrame alone (sensors, CBOR, node:crypto sign)',
        value: Math.round(base.nextFrame),
        unit: 'frames/s',
        baseline: 'raw node:crypto sign',
        baselineValue: Math.round(base.rawSign),
        ratio: round(base.nextFrame / base.rawSign),
      },
      {
        figure: 'VirtualDevice.nextFrame, default pure-JS @noble signer',
        value: Math.round(base.nextFrameNoble),
        unit: 'frames/s',
        baseline: 'node:crypto signer',
        baselineValue: Math.round(base.nextFrame),
        ratio: round(base.nextFrameNoble / base.nextFrame),
      },
      {
        figure: `fleet setup (keys, devices) + connect ${DEVICES} MQTT clients`,
        value: round(setupS + connectS),
        unit: 's',
      },
    ];
    for (const r of rows)
      console.log(
        `${r.figure.padEnd(80)} ${String(r.value).padStart(8)} ${r.unit}${r.baselineValue !== undefined ? `  (${r.baseline}: ${r.baselineValue})` : ''}${r.goal ? `  goal ${r.goal} ${r.pass ? 'pass' : 'FAIL'}` : ''}`,
      );
    console.log(`(fleet after stop: ${JSON.stringify(stats)}; frame ${base.frameBytes} bytes)`);
    console.log(`(hubs after stop: ${JSON.stringify(hubStats)})`);
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(
      new URL('./results/fleet.json', import.meta.url),
      JSON.stringify(
        {
          at: new Date().toISOString(),
          quick,
          devices: DEVICES,
          hz: HZ,
          windowSeconds: WINDOW_S,
          setupSeconds: setupS,
          connectSeconds: connectS,
          rows,
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    broker.stdin!.write('exit\n');
  }
}

const round = (x: number): number => Number(x.toPrecision(4));

await main();
process.exit(0);
