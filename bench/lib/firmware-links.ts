/**
 * Firmware transfer over serial and BLE (bench/firmware.ts runs these after its MQTT rows),
 * one device each, from the first chunk to `confirmed`; the device's flash is files on the
 * host written without fsync (`flashSync` FW_FLASH_SYNC, default `none`: see bench/firmware.ts):
 *
 * - serial: a socat pty at 921 600 baud whose device end reads no faster than the line
 *   (update-serial.ts `pace`: a pty does not enforce the baud rate). Baseline (same run):
 *   the same bytes in 2 KiB frames written raw down another pty to the same paced reader.
 *   Also shown ÷ the line's nominal capacity (92 160 B/s, 8N1).
 * - BLE: the gateway's real noble code through firmware-sim's simulated radio, at MTU 23 and
 *   247. Baseline (same run): the radio's notify rate, as bytes: a peripheral notifying raw
 *   bytes in MTU − 3 payloads to the same gateway, as fast as the radio takes them. The radio,
 *   the device and the gateway share this one process, so the device's own work is kept to
 *   what a device's is: its flash on tmpfs and its reports signed with node:crypto (the raw
 *   peripheral of the baseline signs with node:crypto too).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { BleRadio } from '../../firmware-sim/transports/ble-radio.js';
import { UpdatePeripheral } from '../../firmware-sim/update-ble.js';
import { UpdateSerialLink } from '../../firmware-sim/update-serial.js';
import { rolloutStatus } from '../../gateway/firmware/rollout.js';
import { encodeSerialFrame } from '../../protocols/index.js';
import { tempDir, waitFor } from '../../test/helpers/env.js';
import { type FirmwareGateway, startFirmwareGateway } from '../../test/helpers/firmware-gateway.js';
import { PtyPair } from '../../test/helpers/pty.js';
import type { Row } from './row.js';

/** The simulated devices' flash (firmware-sim/update-store.ts FlashSync): FW_FLASH_SYNC=fsync|none, default none. */
export const flashSync = process.env.FW_FLASH_SYNC === 'fsync' ? 'fsync' : 'none';

const BAUD = 921_600;
const LINE_BYTES_PER_S = BAUD / 10;

/** CPU time of this process (every thread: the radio, the device, the gateway and lmdb's), in s. */
const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * Rolls `size` random bytes out to one device; MB/s from its first chunk to `confirmed`, and
 * the CPU time this process spent over the same span.
 */
async function transferCpu(
  fw: FirmwareGateway,
  size: number,
  device: { offset: number; running: { version: string } },
  version = '1.1.0',
  rollout = 'bench',
): Promise<{ mbps: number; cpuS: number; span: [number, number] }> {
  const { digest } = await fw.release(size, version);
  fw.rollout(rollout, digest, ['dev-1']);
  let first = 0;
  let cpu0 = 0;
  let hr0 = 0n;
  await waitFor(
    () => {
      if (!first && device.offset > 0) {
        first = performance.now();
        cpu0 = cpuNow();
        hr0 = process.hrtime.bigint();
      }
      return device.running.version === version;
    },
    600_000,
    'confirmed',
  );
  const mbps = size / ((performance.now() - first) / 1000) / 1e6;
  const cpuS = cpuNow() - cpu0;
  // The span on the monotonic clock in µs, as a CPU profile's sample times are.
  const span: [number, number] = [Number(hr0 / 1000n), Number(process.hrtime.bigint() / 1000n)];
  // The runner logs the outcome and the last step: the gateway is stopped only after (a block
  // still being committed at stop can throw in the log's durable callback).
  await waitFor(() => rolloutStatus(fw.gw.firmware.store, rollout)?.done === true, 30_000, 'rollout done');
  return { mbps, cpuS, span };
}

async function transfer(
  fw: FirmwareGateway,
  size: number,
  device: { offset: number; running: { version: string } },
): Promise<number> {
  return (await transferCpu(fw, size, device)).mbps;
}

export async function serialRows(quick: boolean): Promise<Row[]> {
  const size = quick ? 256 * 1024 : 1024 * 1024;
  const tmp = tempDir('outpost-bench-fw-serial-');
  const seed = randomBytes(32);
  const opts = {
    id: 'dev-1',
    seed,
    model: 'env-1',
    version: '1.0.0',
    baudRate: BAUD,
    pace: true,
    selfTestMs: 0,
    flashSync,
  } as const;
  // Baseline: raw frames down a pty to the same paced reader.
  const raw = await PtyPair.open(tmp.dir, 'raw-a', 'raw-b');
  const reader = new UpdateSerialLink({
    ...opts,
    releaseKey: new Uint8Array(32),
    dir: join(tmp.dir, 'raw'),
    path: raw.b,
  });
  reader.start();
  const writer = new SerialPort({ path: raw.a, baudRate: BAUD });
  await new Promise((r) => writer.once('open', r));
  const frames = Math.ceil(size / 2048);
  const t0 = performance.now();
  for (let i = 0; i < frames; i++) writer.write(Buffer.from(encodeSerialFrame(randomBytes(2048))));
  await waitFor(() => reader.stream.stats.other >= frames, 600_000, 'raw frames');
  const base = size / ((performance.now() - t0) / 1000) / 1e6;
  await new Promise((r) => writer.close(r));
  await reader.stop();
  await raw.unplug();

  const pty = await PtyPair.open(tmp.dir);
  const fw = await startFirmwareGateway(tmp.dir, [{ id: 'dev-1', seed }], {
    serial: { ports: [{ path: pty.a, baudRate: BAUD }] },
  });
  const link = new UpdateSerialLink({ ...opts, releaseKey: fw.releasePub, dir: join(tmp.dir, 'flash'), path: pty.b });
  link.start();
  await waitFor(() => fw.gw.firmware.transfer?.linkOf('dev-1')?.transport === 'serial', 10_000, 'device heard');
  const mbps = await transfer(fw, size, link.device);
  await link.stop();
  await fw.gw.stop();
  await pty.unplug();
  tmp.cleanup();
  const tag = quick ? 'quick: ' : '';
  return [
    {
      figure: `${tag}serial firmware transfer, one device, pty paced at 921 600 baud (${size / 1024} KiB, 2 KiB chunks, window 12)`,
      value: Number(mbps.toFixed(4)),
      unit: 'MB/s',
      baseline: 'raw 2 KiB frames down the same paced line',
      baselineValue: Number(base.toFixed(4)),
      ratio: Number((mbps / base).toFixed(3)),
    },
    {
      figure: `${tag}serial firmware transfer ÷ line capacity (921 600 baud 8N1 = 92 160 B/s)`,
      value: Number(((mbps * 1e6) / LINE_BYTES_PER_S).toFixed(3)),
      unit: 'x',
    },
  ];
}

async function bleRow(quick: boolean, mtu: number): Promise<Row[]> {
  const size = mtu < 100 ? (quick ? 32 : 128) * 1024 : (quick ? 256 : 1024) * 1024;
  const tmp = tempDir('outpost-bench-fw-ble-');
  // The device's flash on tmpfs, as bench/firmware-rollout.ts has it: at MTU 247 the device saves
  // its state (a file written and renamed) with every report, every 7.6 KB, and on this shared
  // box's disk each rename waited on other jobs' journal commits (bench/README.md).
  // FW_BLE_DEVICE=disk: the device as these rows had it before (flash beside the gateway's data
  // on the disk, reports signed by @noble/ed25519), to compare.
  const onDisk = process.env.FW_BLE_DEVICE === 'disk';
  const flash = mkdtempSync(
    join(existsSync('/dev/shm') && !onDisk ? '/dev/shm' : tmpdir(), 'outpost-bench-fw-ble-flash-'),
  );
  const radio = await BleRadio.start({ advertiseIntervalMs: 50 });
  const seed = randomBytes(32);
  const rawSeed = randomBytes(32);
  const fw = await startFirmwareGateway(
    tmp.dir,
    [
      { id: 'dev-1', seed },
      { id: 'raw-1', seed: rawSeed },
    ],
    { ble: { enabled: true, radio: radio.url, backoffMinMs: 50 } },
  );
  // Baseline: raw notifications of the same size through the same radio into the same gateway.
  const rawDevice = new VirtualDevice({ id: 'raw-1', seed: rawSeed, model: 'env-1', signer: 'node' });
  const rawP = radio.add(rawDevice, { mtu });
  await waitFor(() => fw.gw.ble?.links.get('raw-1')?.state === 'subscribed', 10_000, 'raw peripheral subscribed');
  const rawLink = fw.gw.ble!.links.get('raw-1')!;
  const bytes = randomBytes(size).map((b) => b | 1); // no delimiter: one oversize frame, dropped, counted
  /** Raw notifications of `size` bytes: MB/s and CPU s. */
  const notify = async (): Promise<{ mbps: number; cpuS: number }> => {
    const before = rawLink.stats.bytesIn;
    const t0 = performance.now();
    const cpu0 = cpuNow();
    rawP.sendRaw(bytes);
    await waitFor(() => rawLink.stats.bytesIn - before >= size, 600_000, 'raw notifications');
    return { mbps: size / ((performance.now() - t0) / 1000) / 1e6, cpuS: cpuNow() - cpu0 };
  };
  // Measured before and after the transfer, the mean taken: the box's load moves the rate
  // between minutes, and a baseline on one side only paired the transfer with another moment.
  // Once untimed first: the first run, cold (code not yet optimised), read 2–3× below the
  // next one in every run, which flattered the ratio.
  await notify();
  const base0 = await notify();

  const p = radio
    .attach(
      (i) =>
        new UpdatePeripheral(i, {
          id: 'dev-1',
          seed,
          model: 'env-1',
          version: '1.0.0',
          releaseKey: fw.releasePub,
          dir: join(flash, 'dev-1'),
          mtu,
          selfTestMs: 0,
          flashSync,
          signer: onDisk ? 'noble' : 'node',
        }),
    )
    .start();
  await waitFor(() => fw.gw.firmware.transfer?.linkOf('dev-1')?.transport === 'ble', 10_000, 'device heard');
  // A warm-up update first (a quarter of the size, untimed), as the baseline has its untimed run.
  await transferCpu(fw, size / 4, p.device, '1.1.0', 'warm-up');
  // FW_BLE_REPEAT=N: N timed transfers, each between two notify runs (the box's load moves
  // both within seconds); each figure is then the median over the N (one by default).
  const repeat = Math.max(1, Number(process.env.FW_BLE_REPEAT) || 1);
  const pairs: { mbps: number; cpuS: number; base: number; baseCpuS: number }[] = [];
  let before = base0;
  for (let i = 0; i < repeat; i++) {
    const prof = process.env.FW_BLE_CPU_PROF ? await startProfile() : undefined;
    const heap = process.env.FW_BLE_HEAP_PROF ? await startHeapProfile() : undefined;
    const t = await transferCpu(fw, size, p.device, `1.${2 + i}.0`, `bench-${i}`);
    const suffix = `-${mtu}${repeat > 1 ? `-${i}` : ''}`;
    if (prof) await prof.stop(`${process.env.FW_BLE_CPU_PROF}${suffix}.cpuprofile`, t.span);
    if (heap) await heap.stop(`${process.env.FW_BLE_HEAP_PROF}${suffix}.heapprofile`);
    const after = await notify();
    const pair = {
      mbps: t.mbps,
      cpuS: t.cpuS,
      base: (before.mbps + after.mbps) / 2,
      baseCpuS: (before.cpuS + after.cpuS) / 2,
    };
    pairs.push(pair);
    console.log(
      `BLE MTU ${mtu}: notify rate before / after the transfer ${before.mbps.toFixed(3)} / ${after.mbps.toFixed(3)} MB/s; transfer ${t.mbps.toFixed(3)} MB/s (ratio ${(pair.mbps / pair.base).toFixed(3)}); CPU ms transfer ${(t.cpuS * 1000).toFixed(0)}, notify ${(before.cpuS * 1000).toFixed(0)} / ${(after.cpuS * 1000).toFixed(0)} (ratio ${(pair.baseCpuS / pair.cpuS).toFixed(3)})`,
    );
    before = after;
  }
  const median = (f: (x: (typeof pairs)[number]) => number): number => {
    const v = pairs.map(f).sort((a, b) => a - b);
    return v.length % 2 ? v[v.length >> 1]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  const mbps = median((x) => x.mbps);
  const base = median((x) => x.base);
  const ratio = median((x) => x.mbps / x.base);
  const cpuS = median((x) => x.cpuS);
  const baseCpuS = median((x) => x.baseCpuS);
  const cpuRatio = median((x) => x.baseCpuS / x.cpuS);
  p.stop();
  await fw.gw.stop();
  await radio.close();
  tmp.cleanup();
  rmSync(flash, { recursive: true, force: true });
  const what = `BLE firmware transfer, one device, MTU ${mtu}, simulated radio (${size / 1024} KiB, device flash ${flashSync === 'none' ? 'unflushed' : 'fsync per report'})`;
  return [
    {
      figure: `${quick ? 'quick: ' : ''}${what}`,
      value: Number(mbps.toFixed(4)),
      unit: 'MB/s',
      baseline: `the radio's notify rate: raw MTU ${mtu} notifications, same gateway (mean of before and after${repeat > 1 ? `; medians of ${repeat} transfers` : ''})`,
      baselineValue: Number(base.toFixed(4)),
      ratio: Number(ratio.toFixed(3)),
      // The device-lifecycle goal: at MTU 247, at least half of what the radio carries.
      ...(mtu === 247 && { goal: '>= 0.5x', pass: ratio >= 0.5 }),
    },
    {
      // The load's share taken out: bytes per CPU second of this process (radio, device and
      // gateway all in it), which waits on the box's other jobs do not change.
      figure: `${quick ? 'quick: ' : ''}${what}, per CPU second of the bench process`,
      value: Number((size / cpuS / 1e6).toFixed(4)),
      unit: 'MB/CPU s',
      baseline: `raw MTU ${mtu} notifications per CPU second, same run`,
      baselineValue: Number((size / baseCpuS / 1e6).toFixed(4)),
      ratio: Number(cpuRatio.toFixed(3)),
    },
  ];
}

/**
 * A CPU profile of this process over the timed transfer only (FW_BLE_CPU_PROF=path: written to
 * path-MTU.cpuprofile), not the baselines and the warm-up a `node --cpu-prof` of the run holds.
 */
async function startProfile(): Promise<{ stop(file: string, span: [number, number]): Promise<void> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return {
    async stop(file, span) {
      const { profile } = await session.post('Profiler.stop');
      // The transfer's span (first chunk → confirmed), for picking its samples out.
      writeFileSync(file, JSON.stringify({ ...profile, transferSpan: span }));
      session.disconnect();
    },
  };
}

/**
 * A sampling heap profile of the timed transfer (FW_BLE_HEAP_PROF=path: path-MTU.heapprofile),
 * objects the young generation's scavenges collected included: what the transfer allocates,
 * not what is left.
 */
async function startHeapProfile(): Promise<{ stop(file: string): Promise<void> }> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return {
    async stop(file) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** The BLE rows, MTU 23 and 247 (FW_BLE_MTUS=247 for one of them). */
export async function bleRows(quick: boolean): Promise<Row[]> {
  const mtus = (process.env.FW_BLE_MTUS ?? '23,247').split(',').map(Number);
  const rows: Row[] = [];
  for (const mtu of mtus) rows.push(...(await bleRow(quick, mtu)));
  return rows;
}
