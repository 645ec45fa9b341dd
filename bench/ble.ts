/**
 * `npm run bench:ble [-- --quick]`: the BLE path through firmware-sim's
 * simulated radio (noble's websocket protocol) into the gateway running the
 * real noble code, measured in one run, each figure next to a baseline from
 * the same run:
 *
 * 1. Frames/s, aggregate and per peripheral, with 10 peripherals and with 1,
 *    at MTU 23 and 247: every device holds a burst of signed frames, t0 is
 *    the first notification, the end is the last ack arriving at the device
 *    (frames durable in lmdb). Baselines: the same wire bytes, cut into the
 *    same MTU − 3 notifications, through the Deframer alone; and the same
 *    number of fresh frames submitted straight to ingest (no transport).
 *    The simulated devices skip the Ed25519 check of acks here (pure JS, in
 *    this process) except in one row that shows what it costs.
 * 2. Reconnect time: a subscribed peripheral goes out of range and comes
 *    back; time from back-in-range to subscribed again, and to its pending
 *    frame stored. Baseline: one GATT round trip through noble and the radio
 *    (updateRssi), and the floor set by the advertising interval + backoff.
 *
 * Both ends run in this one process on a shared machine: the figures are the
 * cost of the gateway's BLE code and noble, not of a 1 Mbit/s LE PHY (a real
 * link carries ~ 50–100 notifications per connection interval at best).
 * Prints a table and writes bench/results/ble.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chunkForMtu, Deframer, encodeSerialFrame } from '../protocols/index.js';
import { type BleRig, startBleRig } from '../test/helpers/ble.js';
import { waitFor } from '../test/helpers/env.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const quick = values.quick === true;
const rows: Array<{
  figure: string;
  value: number;
  unit: string;
  baseline: string;
  baselineValue: number;
  ratio: number;
}> = [];
const row = (figure: string, value: number, unit: string, baseline: string, baselineValue: number): void => {
  rows.push({
    figure,
    value: round(value),
    unit,
    baseline,
    baselineValue: round(baselineValue),
    ratio: round(value / baselineValue),
  });
};
const round = (x: number): number => Number(x.toPrecision(4));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))]!;
const BLE = { connectTimeoutMs: 2000, backoffMinMs: 20, backoffMaxMs: 200, maxConnecting: 4 };

async function throughput(peripherals: number, mtu: number, perDevice: number, verifyAcks = false): Promise<void> {
  // The simulated devices verify acks with pure-JS @noble/ed25519 (~1.5 ms each) in this same
  // process; that is device work, so it is off except in one row that shows its cost.
  const trust = verifyAcks ? {} : { gatewayPublicKey: undefined };
  const rig = await startBleRig(peripherals, {
    ble: BLE,
    radio: { advertiseIntervalMs: 20 },
    peripheral: () => ({ mtu, resendAfterMs: 60_000, ...trust }),
  });
  try {
    await waitFor(() => rig.peripherals.every((p) => p.subscribed), 20_000, 'all subscribed');
    await new Promise((r) => setTimeout(r, 200));
    const bursts = rig.devices.map((d) => Array.from({ length: perDevice }, () => d.nextFrame()));
    const total = peripherals * perDevice;
    const t0 = performance.now();
    for (const [i, frames] of bursts.entries()) for (const f of frames) rig.peripherals[i]!.send(f);
    const ok = await Promise.all(rig.peripherals.map((p) => p.drain(120_000)));
    const secs = (performance.now() - t0) / 1000;
    if (!ok.every(Boolean)) throw new Error('not every frame was acked');
    const stored = rig.devices.reduce((n, d) => n + rig.stored(d.id).length, 0);
    if (stored !== total) throw new Error(`stored ${stored} of ${total}`);
    const aggregate = total / secs;

    // Baseline 1: the same wire bytes in the same notifications through the Deframer alone.
    const notes = bursts.flat().flatMap((f) => chunkForMtu(encodeSerialFrame(f.bytes), mtu));
    const deframer = new Deframer();
    const d0 = performance.now();
    let n = 0;
    for (let rep = 0; rep < 5; rep++) for (const c of notes) n += deframer.push(c).length;
    const deframeRate = n / ((performance.now() - d0) / 1000);

    // Baseline 2: as many fresh frames straight into ingest (verify, replay window, lmdb), no transport.
    const fresh = rig.devices.flatMap((d) => Array.from({ length: perDevice }, () => d.nextFrame().bytes));
    const i0 = performance.now();
    await Promise.all(fresh.map((f) => rig.gw.ingest.submit(f, { transport: 'bench', source: 'bench' })));
    const ingestRate = fresh.length / ((performance.now() - i0) / 1000);

    const tag = `${peripherals} peripheral${peripherals > 1 ? 's' : ''}, MTU ${mtu}${verifyAcks ? ', devices verify acks' : ''}`;
    row(`BLE frames/s aggregate (${tag})`, aggregate, 'frames/s', 'same frames straight into ingest', ingestRate);
    row(
      `BLE frames/s per peripheral (${tag})`,
      aggregate / peripherals,
      'frames/s',
      'same notifications through the Deframer alone',
      deframeRate,
    );
  } finally {
    await rig.close();
  }
}

async function reconnect(rounds: number): Promise<void> {
  const advertiseIntervalMs = 20;
  const rig: BleRig = await startBleRig(1, {
    ble: { ...BLE, jitter: 0.5 },
    radio: { advertiseIntervalMs },
    peripheral: () => ({ mtu: 247, resendAfterMs: 60_000 }),
  });
  try {
    const [dev, p] = [rig.devices[0]!, rig.peripherals[0]!];
    const link = () => rig.gw.ble!.links.get(dev.id);
    await waitFor(() => link()?.state === 'subscribed', 10_000, 'subscribed');
    const toSubscribed: number[] = [];
    const toStored: number[] = [];
    for (let r = 0; r < rounds; r++) {
      rig.radio.setInRange(p, false);
      await waitFor(() => link()!.state === 'lost', 5000, 'lost');
      const f = dev.nextFrame(); // taken while away: pending until the link is back
      p.send(f);
      await new Promise((res) => setTimeout(res, 250)); // past any backoff
      const t0 = performance.now();
      rig.radio.setInRange(p, true);
      await waitFor(() => link()!.state === 'subscribed', 5000, 'subscribed');
      toSubscribed.push(performance.now() - t0);
      await p.drain(5000);
      toStored.push(performance.now() - t0);
    }
    // One GATT round trip through noble's websocket binding and the radio.
    const peripheral = link()!.peripheral as unknown as { updateRssi(cb: () => void): void };
    const rtts: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      await new Promise<void>((res) => peripheral.updateRssi(() => res()));
      rtts.push(performance.now() - t);
    }
    row(
      'BLE reconnect, back in range → subscribed (median)',
      median(toSubscribed),
      'ms',
      'one GATT round trip via noble (median)',
      median(rtts),
    );
    row(
      'BLE reconnect, back in range → subscribed (p95)',
      p95(toSubscribed),
      'ms',
      `advertising interval ${advertiseIntervalMs} ms (floor: wait for an advert)`,
      advertiseIntervalMs,
    );
    row(
      'BLE reconnect, back in range → pending frame stored (median)',
      median(toStored),
      'ms',
      'one GATT round trip via noble (median)',
      median(rtts),
    );
  } finally {
    await rig.close();
  }
}

const per = quick ? 50 : 400;
for (const mtu of [23, 247]) {
  await throughput(10, mtu, per);
  await throughput(1, mtu, per * 2);
}
await throughput(10, 247, per, true);
await reconnect(quick ? 5 : 25);

const w = Math.max(...rows.map((r) => r.figure.length));
for (const r of rows)
  console.log(
    `${r.figure.padEnd(w)}  ${String(r.value).padStart(9)} ${r.unit.padEnd(8)}  vs ${r.baseline}: ${r.baselineValue} (ratio ${r.ratio})`,
  );
mkdirSync(join('bench', 'results'), { recursive: true });
writeFileSync(
  join('bench', 'results', 'ble.json'),
  JSON.stringify({ date: new Date().toISOString(), quick, node: process.version, rows }, null, 2) + '\n',
);
process.exit(0);
